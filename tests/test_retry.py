"""Retry layer: classification table, Retry-After parsing, delays with full jitter, attempts and deadline."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
from collections.abc import Callable

import pytest

from claude_force import errors as E
from claude_force.layers.base import compose
from claude_force.layers.retry import RETRYABLE, RetryLayer, RetryPolicy, retry_delay, should_retry
from claude_force.models import Request, Response, Usage
from claude_force.transports.base import parse_retry_after

# --- classification -----------------------------------------------------------------------------

STATUS_VERDICTS = [
    (400, False),
    (401, False),
    (403, False),
    (404, False),
    (408, True),
    (409, False),
    (413, False),
    (422, False),
    (429, True),
    (500, True),
    (502, True),
    (503, True),
    (504, True),
    (529, True),
]


@pytest.mark.parametrize(("status", "expected"), STATUS_VERDICTS)
def test_should_retry_by_status(status: int, expected: bool) -> None:
    assert should_retry(E.status_error(status, "x")) is expected


EXCEPTION_VERDICTS: list[tuple[BaseException, bool]] = [
    (E.APIConnectionError("reset"), True),
    (E.APITimeoutError("slow"), True),
    (E.MalformedResponse("bad json"), True),
    (E.EmptyResponse("null content"), True),
    (E.BudgetExceeded("over"), False),
    (E.CircuitOpen("open", retry_in=3.0), False),
    (E.RequestExceedsLimit("too big"), False),
    (E.DeadlineExceeded("late"), False),
    (E.TaskTooLarge("big"), False),
    (E.ConfigError("bad"), False),
    (E.TransportError("generic"), False),
    (ValueError("a bug"), False),
    (KeyError("a bug"), False),
]


@pytest.mark.parametrize(("exc", "expected"), EXCEPTION_VERDICTS, ids=lambda v: type(v).__name__)
def test_should_retry_by_exception(exc: BaseException, expected: bool) -> None:
    assert should_retry(exc) is expected


def test_table_covers_every_status_error_class() -> None:
    for cls in E.STATUS_ERRORS.values():
        assert cls in RETRYABLE
    assert E.ServerError in RETRYABLE


def test_subclass_of_a_retryable_error_is_retryable() -> None:
    class WeirdOverload(E.Overloaded):
        pass

    assert should_retry(WeirdOverload("x", status=529))


# --- Retry-After parsing (transports/base.parse_retry_after) -------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": " 2 "}, 2.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # ms wins
        ({"retry-after-ms": "nope", "retry-after": "4"}, 4.0),  # bad ms falls back
        ({}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": ""}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now) == 0.0


# --- delays -------------------------------------------------------------------------------------


def _rate_limited(retry_after: float | None) -> E.RateLimited:
    return E.RateLimited("slow down", status=429, retry_after=retry_after)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(retry_after_cap=10.0)
    rng = random.Random(1)
    assert retry_delay(_rate_limited(3.0), 1, policy, rng) == 3.0
    assert retry_delay(_rate_limited(0.0), 5, policy, rng) == 0.0
    assert retry_delay(_rate_limited(3600.0), 1, policy, rng) == 10.0
    overloaded = E.Overloaded("busy", status=529, retry_after=2.0)
    assert retry_delay(overloaded, 7, policy, rng) == 2.0


def test_full_jitter_bounds_and_spread() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=8.0)
    rng = random.Random(42)
    exc = E.ServerError("boom", status=500)
    for attempt in range(1, 12):
        cap = min(8.0, 0.5 * 2 ** (attempt - 1))
        delays = [retry_delay(exc, attempt, policy, rng) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in delays)
        assert len(set(delays)) > 150  # jittered, not constant
        assert max(delays) > cap * 0.8  # and the range is really used
    # huge attempt numbers neither overflow nor exceed the max
    assert 0.0 <= retry_delay(exc, 10_000, policy, rng) <= 8.0


def test_rate_limited_without_retry_after_backs_off() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=1.0)
    delays = {retry_delay(_rate_limited(None), 1, policy, random.Random(s)) for s in range(20)}
    assert all(0.0 <= d <= 1.0 for d in delays)
    assert len(delays) == 20


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"backoff_base": -1.0}, {"attempt_timeout": 0.0}, {"retry_after_cap": -1.0}],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# --- the layer ----------------------------------------------------------------------------------


class FakeTime:
    """A clock whose sleep returns at once after moving time forward (and records the wait)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_request(deadline: float | None = None) -> Request:
    req = Request(
        agent_name="agent\n-forged",
        model="m",
        system="sys",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=16,
    )
    req.context.deadline = deadline
    return req


def ok(request: Request) -> Response:
    return Response(text="ok", model=request.model, usage=Usage(1, 1))


def scripted(outcomes: list[BaseException | None]) -> tuple[Callable[[Request], object], list[float | None]]:
    """A transport that raises the listed exceptions in turn (None = success) and records attempt timeouts."""
    timeouts: list[float | None] = []
    script = list(outcomes)

    async def send(request: Request) -> Response:
        timeouts.append(request.context.attempt_timeout)
        outcome = script.pop(0)
        if outcome is not None:
            raise outcome
        return ok(request)

    return send, timeouts


def layer(t: FakeTime, **policy: float) -> RetryLayer:
    return RetryLayer(
        policy=RetryPolicy(**policy),  # type: ignore[arg-type]
        clock=t.clock,
        sleep=t.sleep,
        rng=random.Random(0),
    )


async def test_retries_transient_failures_and_records_attempts() -> None:
    t = FakeTime()
    send, timeouts = scripted(
        [
            E.Overloaded("o", status=529),
            _rate_limited(1.0),
            E.EmptyResponse("null", usage=Usage(7, 3)),
            E.APIConnectionError("x"),
            None,
        ]
    )
    handler = compose([layer(t)], send)  # type: ignore[arg-type]
    req = make_request()
    resp = await handler(req)
    assert resp.text == "ok"
    assert req.context.attempts == 5
    assert req.context.failed_usage == [Usage(7, 3)]  # the billed empty reply, for the result's cost
    assert req.context.attempt_errors == ["overloaded", "rate_limited", "empty_response", "connection_error"]
    assert len(t.sleeps) == 4
    assert t.sleeps[1] == 1.0  # the retry-after
    assert timeouts == [60.0] * 5  # no deadline: the policy's attempt timeout


async def test_after_aclose_a_failed_attempt_is_not_retried_and_no_attempt_starts() -> None:
    t = FakeTime()
    retry = layer(t)
    closing_mid_call: list[BaseException | None] = [E.APIConnectionError("the session closed under it"), None]
    send, _ = scripted(closing_mid_call)

    async def closes_then_fails(request: Request) -> Response:
        await retry.aclose()  # close() while this attempt is on the wire
        return await send(request)  # type: ignore[no-any-return]

    req = make_request()
    with pytest.raises(E.OrchestratorClosed, match="closed while this call was in flight"):
        await compose([retry], closes_then_fails)(req)  # type: ignore[arg-type]
    assert req.context.attempts == 1 and t.sleeps == []  # no backoff, no second attempt
    never, _ = scripted([None])
    with pytest.raises(E.OrchestratorClosed, match="before attempt 1"):
        await compose([retry], never)(make_request())  # type: ignore[arg-type]
    # An attempt in flight at close() that fails for good keeps its own error: only a retry is refused.
    other = layer(t)
    bad, _ = scripted([E.BadRequest("bad", status=400)])

    async def closes_then_refused(request: Request) -> Response:
        await other.aclose()
        return await bad(request)  # type: ignore[no-any-return]

    with pytest.raises(E.BadRequest):
        await compose([other], closes_then_refused)(make_request())  # type: ignore[arg-type]


async def test_aclose_cuts_a_backoff_short() -> None:
    waiting = asyncio.Event()

    async def never_wakes(seconds: float) -> None:  # a backoff that only aclose() can end
        waiting.set()
        await asyncio.Event().wait()

    retry = RetryLayer(clock=lambda: 0.0, sleep=never_wakes, rng=random.Random(0))
    send, _ = scripted([E.Overloaded("o", status=529), None])
    call = asyncio.ensure_future(compose([retry], send)(make_request()))  # type: ignore[arg-type]
    await waiting.wait()
    await retry.aclose()
    with pytest.raises(E.OrchestratorClosed, match="before attempt 2"):
        await asyncio.wait_for(call, 30)  # a guard against a hang, not a timing check


async def test_non_transient_failure_is_raised_at_once() -> None:
    t = FakeTime()
    send, _ = scripted([E.BadRequest("bad", status=400), None])
    req = make_request()
    with pytest.raises(E.BadRequest):
        await compose([layer(t)], send)(req)  # type: ignore[arg-type]
    assert req.context.attempts == 1
    assert req.context.attempt_errors == ["bad_request"]
    assert t.sleeps == []


async def test_non_claude_force_errors_propagate_untouched() -> None:
    t = FakeTime()
    send, _ = scripted([RuntimeError("bug")])
    req = make_request()
    with pytest.raises(RuntimeError, match="bug"):
        await compose([layer(t)], send)(req)  # type: ignore[arg-type]
    assert req.context.attempts == 1
    assert t.sleeps == []


async def test_stops_at_max_attempts_with_the_last_error() -> None:
    t = FakeTime()
    errs: list[BaseException | None] = [E.ServerError(f"e{i}", status=500) for i in range(3)]
    send, _ = scripted([*errs, None])
    req = make_request()
    with pytest.raises(E.ServerError, match="e2"):
        await compose([layer(t, max_attempts=3)], send)(req)  # type: ignore[arg-type]
    assert req.context.attempts == 3
    assert req.context.attempt_errors == ["server_error"] * 3
    assert len(t.sleeps) == 2


async def test_gives_up_when_the_wait_would_cross_the_deadline() -> None:
    t = FakeTime()
    send, timeouts = scripted([_rate_limited(5.0), None])
    req = make_request(deadline=t.now + 3.0)
    with pytest.raises(E.RateLimited):
        await compose([layer(t)], send)(req)  # type: ignore[arg-type]
    assert t.sleeps == []
    assert req.context.attempts == 1
    assert timeouts == [3.0]  # attempt timeout shrunk to the time left


async def test_attempt_timeout_shrinks_towards_the_deadline() -> None:
    t = FakeTime()
    send, timeouts = scripted([_rate_limited(2.0), _rate_limited(2.0), None])
    req = make_request(deadline=t.now + 10.0)
    await compose([layer(t, attempt_timeout=9.0)], send)(req)  # type: ignore[arg-type]
    assert timeouts == [9.0, pytest.approx(8.0), pytest.approx(6.0)]


async def test_deadline_already_passed_raises_deadline_exceeded() -> None:
    t = FakeTime()
    send, _ = scripted([None])
    req = make_request(deadline=t.now - 1.0)
    with pytest.raises(E.DeadlineExceeded):
        await compose([layer(t)], send)(req)  # type: ignore[arg-type]
    assert req.context.attempts == 0


async def test_deadline_passing_during_an_attempt_stops_before_the_next() -> None:
    t = FakeTime()

    async def slow_fail(request: Request) -> Response:
        t.now += 20.0  # the attempt itself ate the remaining time
        raise E.ServerError("late", status=500)

    req = make_request(deadline=t.now + 10.0)
    with pytest.raises(E.ServerError):
        await compose([layer(t)], slow_fail)(req)
    assert req.context.attempts == 1


async def test_logs_each_decision_with_a_sanitized_agent_name(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTime()
    send, _ = scripted([E.Overloaded("o", status=529), E.NotFound("nf", status=404)])
    with caplog.at_level(logging.DEBUG, logger="claude_force.layers.retry"), pytest.raises(E.NotFound):
        await compose([layer(t)], send)(make_request())  # type: ignore[arg-type]
    messages = [r.getMessage() for r in caplog.records]
    assert any("overloaded is transient, retrying" in m for m in messages)
    assert any("not_found is not transient" in m for m in messages)
    assert all("\n" not in m and "agent\\n-forged" in m for m in messages)


async def test_survives_a_storm_with_default_policy() -> None:
    """W4 in miniature: 20% transient failures; with the defaults every task succeeds inside the deadline."""
    t = FakeTime()
    rng = random.Random(7)
    faults: list[Callable[[], BaseException]] = [
        lambda: _rate_limited(1.0),
        lambda: E.Overloaded("o", status=529),
        lambda: E.ServerError("s", status=500),
        lambda: E.EmptyResponse("null"),
    ]

    async def stormy(request: Request) -> Response:
        u = rng.random()
        if u < 0.10:
            raise faults[0]()
        if u < 0.15:
            raise faults[1]()
        if u < 0.20:
            raise faults[2]()
        if u < 0.21:
            raise faults[3]()
        return ok(request)

    retry = RetryLayer(clock=t.clock, sleep=t.sleep, rng=random.Random(3))
    handler = compose([retry], stormy)
    worst = 0.0
    for _ in range(1000):
        start = t.now
        req = make_request(deadline=start + 300.0)
        await handler(req)
        worst = max(worst, t.now - start)
    assert worst < 300.0
