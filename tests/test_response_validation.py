"""Every malformed response becomes a typed error or a warning, never a crash."""

from __future__ import annotations

from typing import Any

import pytest

from claude_force.errors import EmptyResponse, MalformedResponse
from claude_force.transports.base import parse_message

GOOD: dict[str, Any] = {
    "id": "msg_1",
    "model": "m",
    "content": [
        {"type": "text", "text": "Hel"},
        {"type": "tool_use", "id": "t"},
        {"type": "text", "text": "lo"},
    ],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 2, "cache_read_input_tokens": 1},
}


def test_good_response_joins_text_blocks() -> None:
    r = parse_message(
        GOOD, request_id="req_1", headers={"anthropic-ratelimit-requests-remaining": "5", "x": "y"}
    )
    assert r.text == "Hello" and r.request_id == "req_1" and r.stop_reason == "end_turn"
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cache_read_input_tokens) == (3, 2, 1)
    assert r.headers == {"anthropic-ratelimit-requests-remaining": "5"}


@pytest.mark.parametrize(
    ("patch", "exc"),
    [
        ({"content": None}, EmptyResponse),
        ({"content": []}, EmptyResponse),
        ({"content": [{"type": "tool_use"}]}, EmptyResponse),
        ({"content": [{"type": "text", "text": ""}]}, EmptyResponse),
        ({"content": "text"}, MalformedResponse),
        ({"content": [{"type": "text", "text": 5}]}, MalformedResponse),
        ({"usage": {"input_tokens": "3"}}, MalformedResponse),
        ({"usage": {"input_tokens": 3, "output_tokens": -50}}, MalformedResponse),
    ],
)
def test_malformed_shapes(patch: dict[str, Any], exc: type[Exception]) -> None:
    body = {**GOOD, **patch}
    with pytest.raises(exc):
        parse_message(body)


def test_missing_content_key_and_non_object() -> None:
    body = dict(GOOD)
    del body["content"]
    with pytest.raises(EmptyResponse):
        parse_message(body)
    with pytest.raises(MalformedResponse):
        parse_message([1, 2])
    with pytest.raises(MalformedResponse):
        parse_message(None)


def test_missing_usage_is_a_warning_not_an_error() -> None:
    body = dict(GOOD)
    del body["usage"]
    r = parse_message(body)
    assert r.usage.input_tokens == 0 and r.headers["x-claude-force-warning"] == "missing_usage"


@pytest.mark.parametrize(
    "content", [None, [], [{"type": "tool_use"}], [{"type": "text", "text": ""}], "text"]
)
def test_a_failed_200_carries_its_usage_for_the_budget(content: Any) -> None:
    # The API bills a 200 whatever its content: the error keeps the counts so the budget can charge them.
    with pytest.raises(MalformedResponse) as info:
        parse_message({**GOOD, "content": content})
    assert info.value.usage is not None
    assert (info.value.usage.input_tokens, info.value.usage.output_tokens) == (3, 2)


def test_a_failed_200_with_unreadable_usage_carries_none() -> None:
    # Bad usage on an empty reply: still the content's error (as before), with no usage to charge.
    for usage in ({"input_tokens": -1}, "3 tokens", None):
        with pytest.raises(EmptyResponse) as info:
            parse_message({**GOOD, "content": None, "usage": usage})
        assert info.value.usage is None


@pytest.mark.parametrize("usage", [{}, {"input_tokens": 3}, {"output_tokens": 2, "input_tokens": None}])
def test_usage_without_its_required_counts_is_missing_not_zero(usage: dict[str, Any]) -> None:
    # Zeros would bill nothing: the budget charges the reservation for a response whose usage is missing.
    r = parse_message({**GOOD, "usage": usage})
    assert r.usage_missing and r.usage.input_tokens == 0
    with pytest.raises(EmptyResponse) as info:
        parse_message({**GOOD, "content": None, "usage": usage})
    assert info.value.usage is None
    assert not parse_message(GOOD).usage_missing
