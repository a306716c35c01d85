"""cache_key: equal requests share a key; anything that shapes the response changes it; the canary does not."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from claude_force.cache import cache_key
from claude_force.cache.keys import KEY_VERSION
from claude_force.models import CallContext, Request


def make(**overrides: Any) -> Request:
    base: dict[str, Any] = {
        "agent_name": "code-reviewer",
        "model": "claude-sonnet-5-5",
        "system": "You review code.\n\nContract: be brief.",
        "messages": [{"role": "user", "content": "Review this diff"}],
        "max_tokens": 1024,
        "params": {"temperature": 0.2, "top_p": 0.9},
        "prompt_cache_ttl": "5m",
    }
    base.update(overrides)
    return Request(**base)


def test_equal_requests_have_equal_keys_and_the_key_is_sha256_hex() -> None:
    a, b = make(), make()
    assert cache_key(a) == cache_key(b)
    key = cache_key(a)
    assert len(key) == 64
    int(key, 16)


def test_param_order_does_not_matter() -> None:
    a = make(params={"temperature": 0.2, "top_p": 0.9, "metadata": {"b": 1, "a": 2}})
    b = make(params={"metadata": {"a": 2, "b": 1}, "top_p": 0.9, "temperature": 0.2})
    assert cache_key(a) == cache_key(b)


@pytest.mark.parametrize(
    "change",
    [
        {"agent_name": "bug-investigator"},
        {"system": "You review code.\n\nContract: be thorough."},  # the agent file changed
        {"model": "claude-opus-5"},
        {"messages": [{"role": "user", "content": "Review this other diff"}]},
        {"max_tokens": 2048},
        {"params": {"temperature": 0.3, "top_p": 0.9}},
        {"params": {"temperature": 0.2, "top_p": 0.9, "stop_sequences": ["END"]}},
        {"prompt_cache_ttl": "1h"},
        {"prompt_cache_ttl": None},
    ],
)
def test_everything_that_shapes_the_response_changes_the_key(change: dict[str, Any]) -> None:
    assert cache_key(make(**change)) != cache_key(make())


def test_the_per_request_canary_and_other_context_are_excluded() -> None:
    a = make(context=CallContext(canary="CANARY-1111", attempts=3, deadline=10.0))
    b = make(context=CallContext(canary="CANARY-2222", cache_key="whatever"))
    assert cache_key(a) == cache_key(b) == cache_key(make())
    # The canary is sent to the API, but after the system block the key hashes.
    assert "CANARY-1111" in str(a.body()["system"])


def test_task_field_is_not_part_of_the_key_but_messages_are() -> None:
    assert cache_key(make(task="x")) == cache_key(make(task="y"))


def test_version_tag_is_part_of_the_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    before = cache_key(make())
    monkeypatch.setattr("claude_force.cache.keys.KEY_VERSION", KEY_VERSION + "-next")
    assert cache_key(make()) != before


def test_non_json_request_raises_type_error() -> None:
    with pytest.raises(TypeError, match="JSON"):
        cache_key(make(params={"temperature": {1, 2}}))


def test_key_does_not_depend_on_a_precomputed_system_hash_field() -> None:
    r = make()
    first = cache_key(r)
    assert dataclasses.replace(r, _system_hash=None).system_hash == r.system_hash
    assert cache_key(r) == first
