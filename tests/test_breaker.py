"""Circuit breaker: every transition, what counts, the single half-open probe, waiting mode."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from claude_force import errors as E
from claude_force.clock import VirtualClock
from claude_force.layers.breaker import BreakerLayer, BreakerPolicy, counts_as_failure
from claude_force.models import Request, Response, Usage


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def no_sleep(seconds: float) -> None:
    raise AssertionError("a fail-fast breaker must not sleep")


def req(model: str = "m", deadline: float | None = None) -> Request:
    r = Request(
        agent_name="a", model=model, system="s", messages=[{"role": "user", "content": "x"}], max_tokens=8
    )
    r.context.deadline = deadline
    return r


async def ok(request: Request) -> Response:
    return Response(text="ok", model=request.model, usage=Usage(1, 1))


def failing(exc: BaseException) -> Callable[[Request], Awaitable[Response]]:
    async def send(request: Request) -> Response:
        raise exc

    return send


FAIL = E.ServerError("boom", status=500)


def breaker(clock: FakeClock, **policy: object) -> BreakerLayer:
    return BreakerLayer(
        endpoint="http://emu",
        policy=BreakerPolicy(**policy),  # type: ignore[arg-type]
        clock=clock,
        sleep=no_sleep,
    )


async def fail_times(b: BreakerLayer, n: int, exc: BaseException = FAIL, model: str = "m") -> None:
    for _ in range(n):
        with pytest.raises(type(exc)):
            await b(req(model), failing(exc))


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (E.ServerError("x", status=500), True),
        (E.Overloaded("x", status=529), True),
        (E.APIConnectionError("x"), True),
        (E.APITimeoutError("x"), True),
        (E.EmptyResponse("x"), True),
        (E.RateLimited("x", status=429, retry_after=1.0), None),
        (E.BadRequest("x", status=400), None),
        (E.AuthenticationError("x", status=401), None),
        (E.DeadlineExceeded("x"), None),
        (E.RequestExceedsLimit("x"), None),
        (ValueError("bug"), None),
    ],
)
def test_what_counts_as_a_failure(exc: BaseException, verdict: bool | None) -> None:
    assert counts_as_failure(exc) is verdict


async def test_opens_after_consecutive_failures_and_fails_fast() -> None:
    clock = FakeClock()
    b = breaker(clock, consecutive_failures=3, cooldown_seconds=10.0)
    await fail_times(b, 2)
    assert b.state("m") == "closed"
    await fail_times(b, 1)
    assert b.state("m") == "open"
    calls = 0

    async def counted(request: Request) -> Response:
        nonlocal calls
        calls += 1
        return await ok(request)

    clock.now = 4.0
    with pytest.raises(E.CircuitOpen) as info:
        await b(req(), counted)
    assert calls == 0
    assert info.value.retry_in == pytest.approx(6.0)
    assert b.state("other") == "closed"  # per model
    await b(req("other"), counted)
    assert calls == 1


async def test_success_resets_the_consecutive_count() -> None:
    clock = FakeClock()
    b = breaker(clock, consecutive_failures=3)
    for _ in range(5):
        await fail_times(b, 2)
        await b(req(), ok)
    assert b.state("m") == "closed"


async def test_rate_limits_and_permanent_errors_never_trip() -> None:
    clock = FakeClock()
    b = breaker(clock, consecutive_failures=2, window=2, failure_rate=0.5)
    await fail_times(b, 10, E.RateLimited("x", status=429, retry_after=1.0))
    await fail_times(b, 10, E.BadRequest("x", status=400))
    assert b.state("m") == "closed"
    # and they do not reset the consecutive count either
    await fail_times(b, 1)
    await fail_times(b, 1, E.BadRequest("x", status=400))
    await fail_times(b, 1)
    assert b.state("m") == "open"


async def test_failure_rate_needs_a_full_window() -> None:
    clock = FakeClock()
    b = breaker(clock, consecutive_failures=100, window=10, failure_rate=0.6)
    for _ in range(4):  # 8 samples, 50% failures
        await fail_times(b, 1)
        await b(req(), ok)
    await fail_times(b, 1)  # 9 samples, 5 failures: window not full
    assert b.state("m") == "closed"
    await fail_times(b, 1)  # 10 samples, 6 failures = 60%
    assert b.state("m") == "open"


async def test_failure_rate_is_over_a_sliding_window() -> None:
    clock = FakeClock()
    b = breaker(clock, consecutive_failures=100, window=4, failure_rate=0.75)
    await fail_times(b, 2)  # F F
    await b(req(), ok)  # F F S
    await b(req(), ok)  # F F S S (50%)
    await fail_times(b, 1)  # F S S F (50%: the oldest F slid out)
    assert b.state("m") == "closed"
    await fail_times(b, 1)  # S S F F
    assert b.state("m") == "closed"
    await fail_times(b, 1)  # S F F F = 75%
    assert b.state("m") == "open"


async def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = FakeClock()
    b = breaker(clock, consecutive_failures=1, cooldown_seconds=5.0)
    await fail_times(b, 1)
    clock.now = 5.0
    assert b.state("m") == "half-open"
    gate, probing = asyncio.Event(), asyncio.Event()
    probes = 0

    async def slow_ok(request: Request) -> Response:
        nonlocal probes
        probes += 1
        probing.set()
        await gate.wait()
        return await ok(request)

    tasks = [asyncio.ensure_future(b(req(), slow_ok)) for _ in range(10)]
    await probing.wait()  # the nine others ran in the same loop pass as the probe, before this resumes
    assert probes == 1
    rejected = [t for t in tasks if t.done()]
    assert len(rejected) == 9
    assert all(isinstance(t.exception(), E.CircuitOpen) for t in rejected)
    assert "probe=in flight" in repr(b)
    gate.set()
    await asyncio.gather(*(t for t in tasks if not t.done()))
    assert b.state("m") == "closed"
    await b(req(), ok)


async def test_failed_probe_reopens_with_a_new_cooldown() -> None:
    clock = FakeClock()
    b = breaker(clock, consecutive_failures=1, cooldown_seconds=5.0)
    await fail_times(b, 1)
    clock.now = 6.0
    await fail_times(b, 1)  # the probe fails
    assert b.state("m") == "open"
    clock.now = 10.0
    with pytest.raises(E.CircuitOpen) as info:
        await b(req(), ok)
    assert info.value.retry_in == pytest.approx(1.0)  # opened again at 6.0 for 5s
    clock.now = 11.0
    await b(req(), ok)
    assert b.state("m") == "closed"


async def test_neutral_probe_outcome_keeps_half_open_and_frees_the_slot() -> None:
    clock = FakeClock()
    b = breaker(clock, consecutive_failures=1, cooldown_seconds=1.0)
    await fail_times(b, 1)
    clock.now = 2.0
    await fail_times(b, 1, E.BadRequest("x", status=400))
    assert b.state("m") == "half-open"

    async def cancelled(request: Request) -> Response:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await b(req(), cancelled)
    assert b.state("m") == "half-open"
    await b(req(), ok)  # the next caller is the probe
    assert b.state("m") == "closed"


async def test_outcomes_of_calls_started_before_a_transition_are_ignored() -> None:
    clock = FakeClock()
    b = breaker(clock, consecutive_failures=2, cooldown_seconds=1.0)
    gate, all_in = asyncio.Event(), asyncio.Event()
    started = 0

    async def slow_fail(request: Request) -> Response:
        nonlocal started
        started += 1
        if started == 3:
            all_in.set()
        await gate.wait()
        raise FAIL

    stragglers = [asyncio.ensure_future(b(req(), slow_fail)) for _ in range(3)]
    await all_in.wait()
    await fail_times(b, 2)
    assert b.state("m") == "open"
    clock.now = 1.0
    await b(req(), ok)  # probe succeeds: closed again
    gate.set()
    await asyncio.gather(*stragglers, return_exceptions=True)
    assert b.state("m") == "closed"  # three old failures did not count in the new epoch
    await fail_times(b, 1)
    assert b.state("m") == "closed"


async def test_wait_when_open_sleeps_through_the_cooldown() -> None:
    vc = VirtualClock()
    b = BreakerLayer(
        endpoint="e",
        policy=BreakerPolicy(consecutive_failures=1, cooldown_seconds=3.0, wait_when_open=True),
        clock=vc.now,
        sleep=vc.sleep,
    )
    with pytest.raises(E.ServerError):
        await b(req(), failing(FAIL))
    gate = asyncio.Event()
    calls = 0

    async def slow_ok(request: Request) -> Response:
        nonlocal calls
        calls += 1
        await gate.wait()
        return await ok(request)

    tasks = [asyncio.ensure_future(b(req(), slow_ok)) for _ in range(4)]
    await vc.advance(2.9)
    assert calls == 0 and not any(t.done() for t in tasks)
    await vc.advance(0.2)
    assert calls == 1  # one probe; the others wait for it instead of failing
    assert not any(t.done() for t in tasks)
    gate.set()
    await vc.advance(0)
    results = await asyncio.gather(*tasks)
    assert [r.text for r in results] == ["ok"] * 4
    assert calls == 4
    assert b.state("m") == "closed"


async def test_wait_when_open_fails_fast_when_the_cooldown_passes_the_deadline() -> None:
    vc = VirtualClock()
    b = BreakerLayer(
        endpoint="e",
        policy=BreakerPolicy(consecutive_failures=1, cooldown_seconds=30.0, wait_when_open=True),
        clock=vc.now,
        sleep=vc.sleep,
    )
    with pytest.raises(E.ServerError):
        await b(req(), failing(FAIL))
    with pytest.raises(E.CircuitOpen):
        await b(req(deadline=10.0), ok)


async def test_wait_for_probe_respects_the_deadline() -> None:
    vc = VirtualClock()
    b = BreakerLayer(
        endpoint="e",
        policy=BreakerPolicy(consecutive_failures=1, cooldown_seconds=1.0, wait_when_open=True),
        clock=vc.now,
        sleep=vc.sleep,
    )
    with pytest.raises(E.ServerError):
        await b(req(), failing(FAIL))
    await vc.advance(1.0)
    gate = asyncio.Event()

    async def hang(request: Request) -> Response:
        await gate.wait()
        return await ok(request)

    probe = asyncio.ensure_future(b(req(), hang))
    await vc.advance(0)
    waiter = asyncio.ensure_future(b(req(deadline=vc.now() + 2.0), ok))
    await vc.advance(2.5)
    assert isinstance(waiter.exception(), E.CircuitOpen)
    gate.set()
    await probe


async def test_state_changes_are_logged_and_repr_shows_models(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    b = breaker(clock, consecutive_failures=1, cooldown_seconds=1.0)
    with caplog.at_level(logging.INFO, logger="claude_force.layers.breaker"):
        await fail_times(b, 1, model="bad\nmodel")
        assert "open(until=1.000)" in repr(b)
        clock.now = 1.0
        await b(req("bad\nmodel"), ok)
    levels = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert levels[0][0] == logging.WARNING and "closed -> open" in levels[0][1]
    assert any("open -> half-open" in m for _, m in levels)
    assert any("half-open -> closed" in m for _, m in levels)
    assert all("\n" not in m for _, m in levels)
    assert "closed(consecutive=0" in repr(b)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"consecutive_failures": 0},
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"window": 0},
        {"cooldown_seconds": -1},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]
