"""Unit tests of the emulator's pure parts: tokens, validation, buckets, faults, prompt cache."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from claude_force.emulator import EmulatorConfig, estimate_tokens
from claude_force.emulator.buckets import RateLimiter, TokenBucket, retry_after_header, rfc3339
from claude_force.emulator.config import min_cacheable_tokens
from claude_force.emulator.faults import BodyLedger, Fault, draw
from claude_force.emulator.promptcache import NO_CACHE, PromptCache, breakpoints_for
from claude_force.emulator.reply import error_body, message_body, reply_text
from claude_force.emulator.state import EmulatorState
from claude_force.emulator.tokens import content_chars
from claude_force.emulator.validation import ParsedRequest, RequestError, parse_request


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def digest_of(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# -- tokens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("chars", "tokens"), [(0, 1), (1, 1), (4, 1), (5, 2), (8, 2), (4096, 1024)])
def test_estimate_tokens_is_ceil_chars_over_four(chars: int, tokens: int) -> None:
    assert estimate_tokens(chars) == tokens


def test_content_chars_counts_text_blocks_and_tool_results() -> None:
    assert content_chars("abcd") == 4
    blocks: list[dict[str, Any]] = [
        {"type": "text", "text": "hello"},
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "abc"}]},
        {"type": "tool_result", "tool_use_id": "t", "content": "xy"},
        "not a block",
    ]
    assert content_chars(blocks) == 5 + 3 + 2
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    assert content_chars([image]) > 4


# -- validation -----------------------------------------------------------------------------------


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi there"}],
    }
    base.update(overrides)
    return base


def test_parse_valid_request() -> None:
    parsed = parse_request(
        body(
            system=[
                {"type": "text", "text": "abcd"},
                {"type": "text", "text": "efgh", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            ],
            messages=[
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                {"role": "user", "content": [{"type": "text", "text": "last"}]},
            ],
            metadata={"user_id": "u"},
            stop_sequences=["x"],
            stream=False,
            temperature=0.5,
            top_k=3,
            top_p=0.9,
            tools=[],
            tool_choice={"type": "auto"},
            thinking={"type": "disabled"},
            cache_control={"type": "ephemeral"},
            service_tier="auto",
        )
    )
    assert parsed == ParsedRequest(
        model="claude-sonnet-4-5",
        max_tokens=64,
        system_texts=("abcd", "efgh"),
        system_ttls=(None, 3600.0),
        top_level_ttl=300.0,
        input_chars=8 + 5 + 2 + 4,
        last_user_text="last",
    )


def test_four_breakpoints_and_every_known_block_type_are_accepted() -> None:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}] * 3
    parsed = parse_request(
        body(
            system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": blocks}],
        )
    )
    assert parsed.system_ttls == (300.0,)
    for kind in ("image", "document", "tool_result", "thinking", "redacted_thinking", "search_result"):
        parse_request(body(messages=[{"role": "user", "content": [{"type": kind}]}]))


def test_parse_string_system() -> None:
    parsed = parse_request(body(system="You are terse."))
    assert parsed.system_texts == ("You are terse.",)
    assert parsed.system_ttls == (None,)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "valid dictionary"),
        (body(foo=1), "foo: Extra inputs are not permitted"),
        ({"max_tokens": 1, "messages": []}, "model: Field required"),
        (body(model=3), "model:"),
        (body(max_tokens="10"), "max_tokens: Input should be a valid integer"),
        (body(max_tokens=True), "max_tokens: Input should be a valid integer"),
        (body(max_tokens=0), "max_tokens: Input should be greater than or equal to 1"),
        (body(messages=[]), "messages: at least one message"),
        (body(messages="hi"), "messages: Input should be a valid list"),
        (body(messages=["hi"]), "messages.0: Input should be a valid dictionary"),
        (body(messages=[{"role": "system", "content": "x"}]), "messages.0.role"),
        (body(messages=[{"role": "user"}]), "messages.0.content: Field required"),
        (body(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
        (body(messages=[{"role": "user", "content": [{"text": "x"}]}]), "messages.0.content.0"),
        (body(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages.0.content.0.text"),
        (body(stream=True), "stream: streaming is not supported"),
        (body(stream="yes"), "stream: Input should be a valid boolean"),
        (body(system=5), "system:"),
        (body(system=["x"]), "system.0: Input should be a valid dictionary"),
        (body(system=[{"type": "image", "text": "x"}]), "system.0.type"),
        (body(system=[{"type": "text"}]), "system.0.text"),
        (body(system=[{"type": "text", "text": "x", "bogus": 1}]), "system.0.bogus: Extra inputs"),
        (body(system=[{"type": "text", "text": "x", "cache_control": {"type": "x"}}]), "ephemeral"),
        (
            body(system=[{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "2h"}}]),
            "ttl",
        ),
        (body(cache_control="ephemeral"), "cache_control: Input should be a valid dictionary"),
        (body(cache_control={"type": "ephemeral", "x": 1}), "cache_control.x: Extra inputs"),
        (body(temperature=2), "temperature:"),
        (body(top_p="a"), "top_p:"),
        (body(top_k=-1), "top_k:"),
        (body(stop_sequences=[1]), "stop_sequences:"),
        (body(metadata=[]), "metadata:"),
        (body(tools={}), "tools:"),
        (body(tool_choice={}), "tool_choice:"),
        (body(thinking="on"), "thinking:"),
        (body(service_tier="priority"), "service_tier:"),
        (body(messages=[{"role": "user", "content": [{"type": "bogus"}]}]), "messages.0.content.0.type"),
        (
            # 2 system breakpoints + 2 in messages + 1 top-level = 5: one more than the API takes
            body(
                system=[
                    {"type": "text", "text": f"s{i}", "cache_control": {"type": "ephemeral"}}
                    for i in range(2)
                ],
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": f"m{i}", "cache_control": {"type": "ephemeral"}}
                            for i in range(2)
                        ],
                    }
                ],
                cache_control={"type": "ephemeral"},
            ),
            "Found 5.",
        ),
        (
            # 3 tools + 2 blocks inside a tool result = 5
            body(
                tools=[
                    {"name": f"t{i}", "input_schema": {}, "cache_control": {"type": "ephemeral"}}
                    for i in range(3)
                ],
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "x",
                                "content": [
                                    {"type": "text", "text": f"r{i}", "cache_control": {"type": "ephemeral"}}
                                    for i in range(2)
                                ],
                            }
                        ],
                    }
                ],
            ),
            "Found 5.",
        ),
    ],
)
def test_parse_rejects_like_the_api(payload: Any, message: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_request(payload)
    assert message in info.value.message
    assert info.value.status == 400
    assert info.value.kind == "invalid_request_error"


# -- config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"p500": 1.5},
        {"phang": -0.1},
        {"p429": 0.6, "p500": 0.6},
        {"rpm": 0},
        {"latency_ms": -1},
        {"port": 70000},
        {"max_body_bytes": 0},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(**kwargs)


def test_config_is_frozen_and_keyword_only() -> None:
    cfg = EmulatorConfig()
    with pytest.raises(AttributeError):
        cfg.p500 = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        EmulatorConfig("127.0.0.1")  # type: ignore[misc]


def test_min_cacheable_follows_the_price_table_for_the_models_it_lists() -> None:
    # The client's warm-up layer decides from the price table; the emulator must agree, or tests and benchmarks
    # see prompt-cache hits the real API would not give (or miss ones it would).
    from claude_force.tracking.prices import PriceTable

    prices = PriceTable.load()
    cfg = EmulatorConfig()
    assert prices.models()
    for model in prices.models():
        assert cfg.min_cacheable_for(model) == prices.min_cacheable_tokens(model), model


def test_min_cacheable_table() -> None:
    assert min_cacheable_tokens("claude-3-5-haiku-latest") == 2048
    assert min_cacheable_tokens("claude-sonnet-4-5") == 1024
    assert min_cacheable_tokens("claude-opus-4-1") == 1024
    assert min_cacheable_tokens("something-else") == 1024
    cfg = EmulatorConfig(min_cacheable_tokens=(("tiny", 2),), default_min_cacheable_tokens=7)
    assert cfg.min_cacheable_for("tiny-model") == 2
    assert cfg.min_cacheable_for("claude-haiku") == 7


# -- buckets --------------------------------------------------------------------------------------


def test_bucket_capacity_is_one_second_of_allowance() -> None:
    assert TokenBucket(600, now=0).capacity == 10
    assert TokenBucket(20, now=0).capacity == 1  # at least one request
    assert TokenBucket(60_000, now=0).capacity == 1000


def test_bucket_refills_continuously() -> None:
    bucket = TokenBucket(60, now=0.0)  # 1 per second, capacity 1
    assert bucket.wait_for(1, now=0.0) == 0.0
    bucket.take(1)
    assert bucket.wait_for(1, now=0.0) == pytest.approx(1.0)
    assert bucket.wait_for(1, now=0.25) == pytest.approx(0.75)
    assert bucket.wait_for(1, now=1.0) == 0.0
    bucket.refill(100.0)
    assert bucket.level == 1.0  # never above capacity


def test_bucket_oversized_request_passes_when_full_then_pays_debt() -> None:
    bucket = TokenBucket(600, now=0.0)  # 10/s, capacity 10
    assert bucket.wait_for(50, now=0.0) == 0.0
    bucket.take(50)
    assert bucket.level == -40
    assert bucket.remaining() == 0
    assert bucket.wait_for(50, now=0.0) == pytest.approx(5.0)  # back to full (10) takes 5 s
    assert bucket.seconds_until_full() == pytest.approx(5.0)


def test_rate_limiter_charges_all_or_nothing() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(rpm=120, input_tpm=600, output_tpm=None, clock=clock)  # 2 req/s, 10 tok/s
    assert limiter.enabled
    assert limiter.admit(8) == (0.0, "")
    wait, which = limiter.admit(8)  # requests ok (1 left), input tokens short
    assert which == "input tokens"
    assert wait == pytest.approx(0.6)
    assert limiter.requests is not None
    assert limiter.requests.level == pytest.approx(1.0)  # nothing charged on refusal
    clock.advance(0.6)
    assert limiter.admit(8) == (0.0, "")


def test_rate_limiter_requests_limit() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(rpm=20, input_tpm=None, output_tpm=None, clock=clock)
    assert limiter.admit(10**6)[0] == 0.0  # no token limit configured
    wait, which = limiter.admit(1)
    assert which == "requests"
    assert wait == pytest.approx(3.0)
    assert retry_after_header(wait) == "3"
    assert retry_after_header(0.01) == "1"


def test_rate_limiter_output_debt_blocks_new_requests() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(rpm=None, input_tpm=None, output_tpm=600, clock=clock)  # 10 tok/s
    assert limiter.admit(1) == (0.0, "")
    limiter.charge_output(30)
    wait, which = limiter.admit(1)
    assert which == "output tokens"
    assert wait == pytest.approx(2.1)  # from -20 to 1
    clock.advance(2.1)
    assert limiter.admit(1)[0] == 0.0


def test_rate_limiter_headers_and_reset() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(rpm=60, input_tpm=6000, output_tpm=600, clock=clock)
    limiter.admit(50)
    headers = limiter.headers(wall_now=0.0)
    assert headers["anthropic-ratelimit-requests-limit"] == "60"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-requests-reset"] == "1970-01-01T00:00:01Z"
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == "50"
    assert headers["anthropic-ratelimit-output-tokens-limit"] == "600"
    assert set(headers) == {
        f"anthropic-ratelimit-{kind}-{field}"
        for kind in ("requests", "input-tokens", "output-tokens")
        for field in ("limit", "remaining", "reset")
    }
    limiter.reset()
    assert limiter.headers(0.0)["anthropic-ratelimit-requests-remaining"] == "1"
    assert RateLimiter(rpm=None, input_tpm=None, output_tpm=None).headers(0.0) == {}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rfc3339(1.7e9))


# -- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        ("p429", Fault.RATE_LIMIT),
        ("p529", Fault.OVERLOADED),
        ("p500", Fault.SERVER_ERROR),
        ("pnull", Fault.NULL_CONTENT),
        ("pmalformed", Fault.MALFORMED),
    ],
)
def test_draw_with_probability_one(name: str, fault: Fault) -> None:
    cfg = EmulatorConfig(**{name: 1.0})
    for n in range(20):
        assert draw(cfg, digest_of(b"x"), n).fault is fault


def test_draw_defaults_to_nothing() -> None:
    d = draw(EmulatorConfig(), digest_of(b"x"), 0)
    assert (d.fault, d.hang, d.delay) == (Fault.NONE, False, 0.0)


def test_draw_hang_adds_hang_seconds() -> None:
    d = draw(EmulatorConfig(phang=1.0, hang_seconds=7, latency_ms=100), digest_of(b"x"), 0)
    assert d.hang
    assert d.delay == pytest.approx(7.1)


def test_draw_jitter_stays_in_range_and_clamps_at_zero() -> None:
    cfg = EmulatorConfig(latency_ms=100, jitter_ms=20)
    delays = [draw(cfg, digest_of(b"%d" % i), 0).delay for i in range(500)]
    assert all(0.08 <= d <= 0.12 for d in delays)
    assert max(delays) - min(delays) > 0.03
    clamped = EmulatorConfig(latency_ms=1, jitter_ms=100)
    assert all(draw(clamped, digest_of(b"%d" % i), 0).delay >= 0 for i in range(200))


def test_draw_is_deterministic_per_seed_body_and_sighting() -> None:
    cfg = EmulatorConfig(p500=0.5, seed=1)
    digests = [digest_of(b"%d" % i) for i in range(200)]
    first = [draw(cfg, d, 0).fault for d in digests]
    assert first == [draw(cfg, d, 0).fault for d in digests]
    assert first != [draw(EmulatorConfig(p500=0.5, seed=2), d, 0).fault for d in digests]
    assert first != [draw(cfg, d, 1).fault for d in digests]  # a retry gets a fresh draw
    rate = first.count(Fault.SERVER_ERROR) / len(first)
    assert 0.35 < rate < 0.65


def test_draw_mixes_exclusive_faults_by_probability() -> None:
    cfg = EmulatorConfig(p429=0.1, p529=0.1, p500=0.1, pnull=0.1, pmalformed=0.1, seed=3)
    faults = [draw(cfg, digest_of(b"%d" % i), 0).fault for i in range(4000)]
    for kind in Fault:
        expected = 0.5 if kind is Fault.NONE else 0.1
        assert abs(faults.count(kind) / len(faults) - expected) < 0.03, kind


def test_body_ledger_counts_and_is_bounded() -> None:
    ledger = BodyLedger(max_bodies=2)
    a, b, c = digest_of(b"a"), digest_of(b"b"), digest_of(b"c")
    assert [ledger.observe(a), ledger.observe(a), ledger.observe(a)] == [0, 1, 2]
    assert ledger.observe(b) == 0
    assert ledger.observe(c) == 0
    assert ledger.observe(c) == 0  # not remembered: over the bound
    assert (ledger.distinct, ledger.duplicates) == (4, 2)
    ledger.reset()
    assert (ledger.distinct, ledger.duplicates, ledger.observe(a)) == (0, 0, 0)


# -- prompt cache ---------------------------------------------------------------------------------


def bps(model: str = "claude-sonnet-4-5", texts: tuple[str, ...] = ("x" * 4096,), **kw: Any) -> Any:
    ttls = kw.pop("ttls", (300.0,) * len(texts))
    return breakpoints_for(model, texts, ttls, kw.pop("top", None), kw.pop("minimum", 1024))


def test_cache_write_then_read_only_after_commit() -> None:
    clock = FakeClock()
    cache = PromptCache(clock=clock)
    points = bps()
    first = cache.plan(points)
    assert (first.read_tokens, first.write_tokens) == (0, 1024)
    concurrent = cache.plan(points)  # the first answer has not been sent yet
    assert (concurrent.read_tokens, concurrent.write_tokens) == (0, 1024)
    cache.commit(first)
    later = cache.plan(points)
    assert (later.read_tokens, later.write_tokens) == (1024, 0)


def test_cache_ttl_expires_and_refreshes_on_read() -> None:
    clock = FakeClock()
    cache = PromptCache(clock=clock)
    points = bps()
    cache.commit(cache.plan(points))
    clock.advance(299)
    plan = cache.plan(points)
    assert plan.read_tokens == 1024
    cache.commit(plan)  # refresh: lives 300 s from now
    clock.advance(299)
    assert cache.plan(points).read_tokens == 1024
    clock.advance(2)
    expired = cache.plan(points)
    assert (expired.read_tokens, expired.write_tokens) == (0, 1024)
    assert len(cache) == 0


def test_cache_one_hour_ttl() -> None:
    clock = FakeClock()
    cache = PromptCache(clock=clock)
    points = bps(ttls=(3600.0,))
    cache.commit(cache.plan(points))
    clock.advance(3000)
    assert cache.plan(points).read_tokens == 1024


def test_cache_ignores_short_prefixes() -> None:
    assert bps(texts=("x" * 4092,)) == ()  # 1023 tokens
    assert len(bps(texts=("x" * 4093,))) == 1
    assert bps(texts=("x" * 5000,), minimum=2048) == ()
    assert PromptCache().plan(()) is NO_CACHE


def test_cache_key_depends_on_model_and_prefix() -> None:
    (a,) = bps()
    (b,) = bps(model="claude-opus-4-1")
    (c,) = bps(texts=("y" * 4096,))
    assert len({a.key, b.key, c.key}) == 3


def test_cache_breakpoint_covers_blocks_up_to_it_and_top_level() -> None:
    texts = ("a" * 4096, "b" * 4096, "c" * 4096)
    (only,) = bps(texts=texts, ttls=(None, 300.0, None))
    assert only.tokens == 2048
    (top,) = bps(texts=texts, ttls=(None, None, None), top=300.0)
    assert top.tokens == 3072
    assert bps(texts=texts, ttls=(None, None, None)) == ()
    assert breakpoints_for("m", (), (), 300.0, 1) == ()


def test_cache_multiple_breakpoints_read_longest_live_prefix() -> None:
    cache = PromptCache(clock=FakeClock())
    short = bps(texts=("a" * 4096,))
    both = bps(texts=("a" * 4096, "b" * 4096))
    cache.commit(cache.plan(short))
    plan = cache.plan(both)
    assert (plan.read_tokens, plan.write_tokens) == (1024, 1024)
    cache.commit(plan)
    plan = cache.plan(both)
    assert (plan.read_tokens, plan.write_tokens) == (2048, 0)


def test_cache_is_bounded_lru() -> None:
    cache = PromptCache(clock=FakeClock(), max_entries=2)
    plans = [bps(texts=(ch * 4096,)) for ch in "abc"]
    for points in plans:
        cache.commit(cache.plan(points))
    assert len(cache) == 2
    assert cache.plan(plans[0]).read_tokens == 0
    assert cache.plan(plans[2]).read_tokens == 1024
    cache.reset()
    assert len(cache) == 0


# -- replies and state ----------------------------------------------------------------------------


def test_reply_is_deterministic_sanitized_and_truncated() -> None:
    d = digest_of(b"body")
    text, tokens, stop = reply_text("Hi\n\x00<script>  there" + "z" * 100, d, 1000)
    assert text == reply_text("Hi\n\x00<script>  there" + "z" * 100, d, 1000)[0]
    assert text.startswith("Emulated reply to: Hi script there")
    assert "\n" not in text
    assert "<" not in text
    assert d[:4].hex() in text
    assert (tokens, stop) == (estimate_tokens(len(text)), "end_turn")
    assert text != reply_text("Hi", digest_of(b"other"), 1000)[0]
    cut, cut_tokens, cut_stop = reply_text("Hi", d, 2)
    assert (len(cut), cut_tokens, cut_stop) == (8, 2, "max_tokens")


def test_bodies() -> None:
    import orjson

    doc = orjson.loads(
        message_body(
            model="m",
            text=None,
            stop_reason="end_turn",
            input_tokens=1,
            output_tokens=2,
            cache_creation_input_tokens=3,
            cache_read_input_tokens=4,
        )
    )
    assert doc["content"] is None
    assert doc["id"].startswith("msg_emu_")
    assert orjson.loads(error_body("api_error", "boom")) == {
        "type": "error",
        "error": {"type": "api_error", "message": "boom"},
    }


def test_state_reset_keeps_in_flight() -> None:
    state = EmulatorState(EmulatorConfig(rpm=60), clock=FakeClock())
    state.stats.begin()
    state.stats.begin()
    state.stats.end(200)
    state.ledger.observe(digest_of(b"a"))
    state.limiter.admit(1)
    state.reset()
    snap = state.snapshot()
    assert snap["requests"] == 0
    assert snap["statuses"] == {}
    assert (snap["in_flight"], snap["max_in_flight"], snap["distinct_bodies"]) == (1, 1, 0)
    assert state.limiter.admit(1)[0] == 0.0


# -- command line ---------------------------------------------------------------------------------


def test_cli_emulate_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from claude_force.cli import emulate as cli_emulate

    seen: dict[str, Any] = {}

    class FakeServer:
        base_url = "http://127.0.0.1:9999"

    def fake_run(config: EmulatorConfig, *, on_ready: Any = None) -> None:
        seen["config"] = config
        on_ready(FakeServer())

    monkeypatch.setattr(cli_emulate, "run_emulator", fake_run)
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    cli_emulate.register(app)
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["emulate", "--port", "9999", "--p529", "0.25", "--rpm", "50", "--seed", "4", "--retry-after", "3"],
    )
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:9999" in result.output
    cfg = seen["config"]
    assert (cfg.port, cfg.p529, cfg.rpm, cfg.seed, cfg.retry_after) == (9999, 0.25, 50, 4, 3)
    assert cfg.host == "127.0.0.1"

    bad = runner.invoke(app, ["emulate", "--p429", "0.8", "--p500", "0.8"])
    assert bad.exit_code == 2
    assert "must not exceed 1" in bad.output
    assert runner.invoke(app, ["emulate", "--p500", "2"]).exit_code == 2


def test_module_parser_defaults() -> None:
    from claude_force.emulator.__main__ import build_parser

    args = build_parser().parse_args([])
    assert (args.host, args.port, args.print_port, args.retry_after, args.hang_seconds) == (
        "127.0.0.1",
        8765,
        False,
        1.0,
        30.0,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--p500", "1.5"])
