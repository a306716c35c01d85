"""Rate limiter in virtual time: pacing, FIFO fairness, debt, oversize, reconciliation, headers, 429 pause."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence

import pytest

from claude_force import errors as E
from claude_force.clock import VirtualClock
from claude_force.layers.buckets import TokenBucket
from claude_force.layers.limiter import LimiterLayer
from claude_force.models import Request, Response, Usage
from claude_force.settings import ModelLimits


def req(tokens: int = 1, *, max_tokens: int = 16, model: str = "m", deadline: float | None = None) -> Request:
    """A request whose estimated input is exactly ``tokens`` (4 characters per token, empty system)."""
    r = Request(
        agent_name="a",
        model=model,
        system="",
        messages=[{"role": "user", "content": "x" * (4 * tokens)}],
        max_tokens=max_tokens,
    )
    r.context.deadline = deadline
    assert r.estimated_input_tokens() == tokens
    return r


def limiter(vc: VirtualClock, *, safety: float = 0.0, **limits: float) -> LimiterLayer:
    fixed = ModelLimits(**limits)
    return LimiterLayer(limits_for=lambda model: fixed, clock=vc.now, sleep=vc.sleep, safety=safety)


class Recorder:
    """A transport that records (time, label) when each request is sent, and answers with given usage."""

    def __init__(
        self, vc: VirtualClock, *, output_tokens: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        self.vc = vc
        self.sent: list[tuple[float, str]] = []
        self.output_tokens = output_tokens
        self.headers = headers or {}

    async def __call__(self, request: Request) -> Response:
        self.sent.append((self.vc.now(), request.agent_name))
        return Response(
            text="ok",
            model=request.model,
            usage=Usage(request.estimated_input_tokens(), self.output_tokens),
            headers=dict(self.headers),
        )


def labelled(r: Request, label: str) -> Request:
    r.agent_name = label
    return r


async def run_all(
    vc: VirtualClock, coros: Sequence[Awaitable[Response]], *, step: float = 0.01, limit: float = 100.0
) -> None:
    tasks = [asyncio.ensure_future(c) for c in coros]
    elapsed = 0.0
    while not all(t.done() for t in tasks) and elapsed < limit:
        await vc.advance(step)
        elapsed += step
    await asyncio.gather(*tasks)


# --- token bucket ---------------------------------------------------------------------------------


def test_bucket_capacity_is_burst_seconds_worth_and_at_least_one_request() -> None:
    assert TokenBucket(limit=1200, now=0.0).capacity == pytest.approx(20.0)
    assert TokenBucket(limit=1200, burst_seconds=0.5, now=0.0).capacity == pytest.approx(10.0)
    assert TokenBucket(limit=6, now=0.0).capacity == 1.0  # 0.1/s, but at least one request
    small = TokenBucket(limit=1200, now=0.0, safety=0.05)
    assert small.capacity == pytest.approx(19.0) and small.rate == pytest.approx(19.0)
    with pytest.raises(ValueError, match="limit"):
        TokenBucket(limit=0, now=0.0)


def test_bucket_debt_and_refill() -> None:
    b = TokenBucket(limit=600, now=0.0)  # 10/s, capacity 10
    assert b.wait_for(25, now=0.0) == 0.0  # more than capacity: a full bucket suffices
    b.take(25)
    assert b.level == pytest.approx(-15.0)
    assert b.wait_for(1, now=0.0) == pytest.approx(1.6)
    b.give(100, now=0.5)
    assert b.level == pytest.approx(10.0)  # never above capacity


# --- pacing and fairness --------------------------------------------------------------------------


async def test_paces_requests_per_minute_without_bursting_the_minute() -> None:
    vc = VirtualClock()
    lim = limiter(vc, rpm=60)  # 1/s, capacity 1
    rec = Recorder(vc)
    await run_all(vc, [lim(labelled(req(), str(i)), rec) for i in range(5)])
    times = [t for t, _ in rec.sent]
    assert times == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0], abs=0.02)


async def test_first_second_may_burst_up_to_capacity_then_smooth() -> None:
    vc = VirtualClock()
    lim = limiter(vc, rpm=1200)  # 20/s, capacity 20
    rec = Recorder(vc)
    await run_all(vc, [lim(labelled(req(), str(i)), rec) for i in range(30)], step=0.005)
    times = [t for t, _ in rec.sent]
    assert times[:20] == [0.0] * 20
    gaps = [b - a for a, b in itertools.pairwise(times[20:])]
    assert times[20] == pytest.approx(0.05, abs=0.006)
    assert all(g == pytest.approx(0.05, abs=0.006) for g in gaps)


async def test_safety_margin_holds_back_a_fraction() -> None:
    vc = VirtualClock()
    lim = limiter(vc, safety=0.05, rpm=1200)  # 19/s, capacity 19
    rec = Recorder(vc)
    await run_all(vc, [lim(req(), rec) for _ in range(20)], step=0.001)
    times = [t for t, _ in rec.sent]
    assert times.count(0.0) == 19
    assert times[19] == pytest.approx(1 / 19, abs=0.002)


async def test_waiters_are_served_in_arrival_order() -> None:
    vc = VirtualClock()
    lim = limiter(vc, input_tpm=600)  # 10 tokens/s, capacity 10
    rec = Recorder(vc)
    await lim(labelled(req(5), "drain"), rec)
    # "big" arrives first and needs a full bucket (0.5s away); 5 tokens are there, so the small ones could
    # go at once, but they must not overtake it
    coros = [lim(labelled(req(10), "big"), rec)] + [lim(labelled(req(1), f"small{i}"), rec) for i in range(3)]
    await run_all(vc, coros)
    order = [label for _, label in rec.sent]
    assert order == ["drain", "big", "small0", "small1", "small2"]
    assert rec.sent[1][0] == pytest.approx(0.5, abs=0.011)


async def test_request_larger_than_the_bucket_goes_into_debt() -> None:
    vc = VirtualClock()
    lim = limiter(vc, input_tpm=600)  # capacity 10
    rec = Recorder(vc)
    await run_all(vc, [lim(labelled(req(40), "big"), rec), lim(labelled(req(1), "next"), rec)])
    assert rec.sent[0] == (0.0, "big")
    # 40 taken from a full bucket of 10 -> -30; one more token needs 3.1s of refill at 10/s
    assert rec.sent[1][0] == pytest.approx(3.1, abs=0.011)


async def test_request_larger_than_the_whole_minute_is_refused_at_once() -> None:
    vc = VirtualClock()
    lim = limiter(vc, input_tpm=600)
    rec = Recorder(vc)
    with pytest.raises(E.RequestExceedsLimit, match="600 per minute"):
        await lim(req(601), rec)
    assert rec.sent == []


async def test_huge_max_tokens_reserves_at_most_a_minute_of_output() -> None:
    vc = VirtualClock()
    lim = limiter(vc, output_tpm=600)
    rec = Recorder(vc, output_tokens=5)
    await lim(req(1, max_tokens=100_000), rec)
    bucket = lim.bucket("m", "output-tokens")
    assert bucket is not None
    assert bucket.level == pytest.approx(5.0)  # reserved 600 from 10 -> -590, reconciled to 5 used


# --- reconciliation -------------------------------------------------------------------------------


async def test_output_reservation_is_reconciled_to_usage() -> None:
    vc = VirtualClock()
    lim = limiter(vc, output_tpm=6000)  # 100/s, capacity 100
    rec = Recorder(vc, output_tokens=10)
    await lim(req(1, max_tokens=100), rec)
    bucket = lim.bucket("m", "output-tokens")
    assert bucket is not None and bucket.level == pytest.approx(90.0)


async def test_input_estimate_is_reconciled_to_usage() -> None:
    vc = VirtualClock()
    lim = limiter(vc, input_tpm=6000)  # capacity 100

    async def cached(request: Request) -> Response:
        # 50 estimated; the server counted 5 uncached + 15 cache writes (cache reads are free)
        return Response(text="ok", model="m", usage=Usage(5, 1, 15, 30))

    await lim(req(50), cached)
    bucket = lim.bucket("m", "input-tokens")
    assert bucket is not None and bucket.level == pytest.approx(80.0)


async def test_missing_usage_keeps_the_input_estimate() -> None:
    vc = VirtualClock()
    lim = limiter(vc, input_tpm=6000, output_tpm=6000)

    async def no_usage(request: Request) -> Response:
        return Response(
            text="ok", model="m", usage=Usage(), headers={"x-claude-force-warning": "missing_usage"}
        )

    await lim(req(50, max_tokens=40), no_usage)
    inp, out = lim.bucket("m", "input-tokens"), lim.bucket("m", "output-tokens")
    assert inp is not None and inp.level == pytest.approx(50.0)
    assert out is not None and out.level == pytest.approx(100.0)


async def test_failure_refunds_output_but_keeps_request_and_input() -> None:
    vc = VirtualClock()
    lim = limiter(vc, rpm=600, input_tpm=6000, output_tpm=6000)

    async def boom(request: Request) -> Response:
        raise E.ServerError("x", status=500)

    with pytest.raises(E.ServerError):
        await lim(req(30, max_tokens=70), boom)
    r, i, o = (lim.bucket("m", k) for k in ("requests", "input-tokens", "output-tokens"))
    assert r is not None and r.level == pytest.approx(9.0)
    assert i is not None and i.level == pytest.approx(70.0)
    assert o is not None and o.level == pytest.approx(100.0)


async def test_refund_wakes_the_head_waiter_early() -> None:
    vc = VirtualClock()
    lim = limiter(vc, output_tpm=600)  # 10/s, capacity 10
    gate = asyncio.Event()
    sent: list[float] = []

    async def first(request: Request) -> Response:
        await gate.wait()
        return Response(text="ok", model="m", usage=Usage(1, 0))

    async def second(request: Request) -> Response:
        sent.append(vc.now())
        return Response(text="ok", model="m", usage=Usage(1, 1))

    t1 = asyncio.ensure_future(lim(req(1, max_tokens=10), first))  # reserves the whole bucket
    await vc.advance(0)
    t2 = asyncio.ensure_future(lim(req(1, max_tokens=10), second))  # would wait 1s for refill
    await vc.advance(0.2)
    assert sent == []
    gate.set()  # first finishes having used 0 output tokens: all 10 come back
    await vc.advance(0)
    assert sent == [pytest.approx(0.2)]
    await asyncio.gather(t1, t2)


async def test_failure_refund_wakes_the_head_waiter_early() -> None:
    vc = VirtualClock()
    lim = limiter(vc, output_tpm=600)  # 10/s, capacity 10
    gate = asyncio.Event()

    async def first(request: Request) -> Response:
        await gate.wait()
        raise E.Overloaded("busy", status=529)

    t1 = asyncio.ensure_future(lim(req(1, max_tokens=10), first))
    await vc.advance(0)
    t2 = asyncio.ensure_future(lim(req(1, max_tokens=10), Recorder(vc)))
    await vc.advance(0.3)
    gate.set()
    await vc.advance(0)
    assert isinstance(t1.exception(), E.Overloaded)
    assert t2.done()
    await t2
    bucket = lim.bucket("m", "output-tokens")
    assert bucket is not None and bucket.level == pytest.approx(9.0)  # 10 reserved, 1 used


# --- adapting to the server -----------------------------------------------------------------------


async def test_remaining_header_tightens_the_bucket() -> None:
    vc = VirtualClock()
    lim = limiter(vc, rpm=1200)
    rec = Recorder(vc, headers={"anthropic-ratelimit-requests-remaining": "2"})
    await lim(req(), rec)
    bucket = lim.bucket("m", "requests")
    assert bucket is not None and bucket.level == pytest.approx(2.0)


async def test_remaining_within_rounding_slack_does_not_tighten() -> None:
    vc = VirtualClock()
    lim = limiter(vc, rpm=1200)
    rec = Recorder(vc, headers={"anthropic-ratelimit-requests-remaining": "18"})
    await lim(req(), rec)  # we think 19 remain; the server rounds down
    bucket = lim.bucket("m", "requests")
    assert bucket is not None and bucket.level == pytest.approx(19.0)


async def test_server_limit_tightens_but_never_loosens_past_the_configured_limit() -> None:
    vc = VirtualClock()
    lim = limiter(vc, rpm=1200)
    await lim(req(), Recorder(vc, headers={"anthropic-ratelimit-requests-limit": "600"}))
    bucket = lim.bucket("m", "requests")
    assert bucket is not None and bucket.limit == 600 and bucket.capacity == pytest.approx(10.0)
    await lim(req(), Recorder(vc, headers={"anthropic-ratelimit-requests-limit": "5000"}))
    assert bucket.limit == 1200


async def test_server_limits_are_adopted_when_none_is_configured() -> None:
    vc = VirtualClock()
    lim = limiter(vc)
    headers = {
        "anthropic-ratelimit-input-tokens-limit": "6000",
        "anthropic-ratelimit-input-tokens-remaining": "40",
        "anthropic-ratelimit-input-tokens-reset": "2026-11-25T00:00:01Z",
    }
    await lim(req(), Recorder(vc, headers=headers))
    bucket = lim.bucket("m", "input-tokens")
    assert bucket is not None and bucket.limit == 6000
    assert bucket.level == pytest.approx(100.0)  # 40 is within the 1000-token rounding slack
    assert lim.bucket("m", "requests") is None
    assert "2026-11-25" not in repr(lim)  # the reset stamp is kept but repr stays short

    off = LimiterLayer(
        limits_for=lambda m: ModelLimits(), clock=vc.now, sleep=vc.sleep, adopt_server_limits=False
    )
    await off(req(), Recorder(vc, headers=headers))
    assert off.bucket("m", "input-tokens") is None


async def test_garbage_headers_are_ignored() -> None:
    vc = VirtualClock()
    lim = limiter(vc, rpm=1200)
    headers = {"anthropic-ratelimit-requests-remaining": "lots", "anthropic-ratelimit-requests-limit": "-3"}
    await lim(req(), Recorder(vc, headers=headers))
    bucket = lim.bucket("m", "requests")
    assert bucket is not None and bucket.limit == 1200 and bucket.level == pytest.approx(19.0)


# --- the shared pause after a 429 -----------------------------------------------------------------


def gated_429s(
    retry_after: float | None,
) -> tuple[Callable[[Request], Awaitable[Response]], list[asyncio.Event]]:
    """A transport whose calls each wait for their own gate, then answer 429."""
    gates: list[asyncio.Event] = []

    async def limited(request: Request) -> Response:
        gate = asyncio.Event()
        gates.append(gate)
        await gate.wait()
        raise E.RateLimited("slow down", status=429, retry_after=retry_after)

    return limited, gates


async def test_429_pauses_every_caller_once_then_reraises() -> None:
    vc = VirtualClock()
    lim = limiter(vc)  # no limits at all: only the pause applies
    rec = Recorder(vc)
    limited, gates = gated_429s(2.0)
    first = asyncio.ensure_future(lim(req(), limited))
    second = asyncio.ensure_future(lim(req(), limited))
    await vc.advance(0)
    gates[0].set()
    await vc.advance(0)
    assert isinstance(first.exception(), E.RateLimited)  # re-raised for the retry layer
    assert lim.paused_until("m") == pytest.approx(2.0)
    await vc.advance(0.5)
    gates[1].set()  # a second 429 from a call already in flight extends the pause; it does not stack
    await vc.advance(0)
    assert isinstance(second.exception(), E.RateLimited)
    assert lim.paused_until("m") == pytest.approx(2.5)
    tasks = [asyncio.ensure_future(lim(labelled(req(), str(i)), rec)) for i in range(5)]
    await vc.advance(1.9)
    assert rec.sent == []
    assert "paused_for=0.10s" in repr(lim) and "waiters=5" in repr(lim)
    await vc.advance(0.2)
    await asyncio.gather(*tasks)
    assert [label for _, label in rec.sent] == ["0", "1", "2", "3", "4"]
    assert all(t == pytest.approx(2.5) for t, _ in rec.sent)
    other = Recorder(vc)
    await lim(req(model="other"), other)  # other models are not paused
    assert len(other.sent) == 1 and other.sent[0][0] == pytest.approx(2.6)


async def test_429_pause_is_capped() -> None:
    vc = VirtualClock()
    lim = LimiterLayer(limits_for=lambda m: ModelLimits(), clock=vc.now, sleep=vc.sleep, max_pause=5.0)

    async def limited(request: Request) -> Response:
        raise E.RateLimited("slow down", status=429, retry_after=3600.0)

    with pytest.raises(E.RateLimited):
        await lim(req(), limited)
    assert lim.paused_until("m") == pytest.approx(5.0)


async def test_429_without_retry_after_does_not_pause(caplog: pytest.LogCaptureFixture) -> None:
    vc = VirtualClock()
    lim = limiter(vc)

    async def limited(request: Request) -> Response:
        raise E.RateLimited("slow down", status=429)

    with pytest.raises(E.RateLimited):
        await lim(req(), limited)
    assert lim.paused_until("m") == 0.0


# --- deadlines and cancellation -------------------------------------------------------------------


async def test_head_raises_at_once_when_the_wait_would_pass_the_deadline() -> None:
    vc = VirtualClock()
    lim = limiter(vc, rpm=6)  # one request per 10s
    rec = Recorder(vc)
    await lim(req(), rec)
    with pytest.raises(E.DeadlineExceeded, match="deadline"):
        await lim(req(deadline=5.0), rec)
    assert vc.now() == 0.0
    assert lim.waiters("m") == 0


async def test_queued_waiter_gives_up_at_its_deadline_and_the_queue_moves_on() -> None:
    vc = VirtualClock()
    lim = limiter(vc, rpm=60)  # 1/s
    rec = Recorder(vc)
    await lim(req(), rec)
    head = asyncio.ensure_future(lim(labelled(req(), "head"), rec))
    await vc.advance(0)
    late = asyncio.ensure_future(lim(labelled(req(deadline=0.5), "late"), rec))
    tail = asyncio.ensure_future(lim(labelled(req(), "tail"), rec))
    await vc.advance(0.6)
    assert isinstance(late.exception(), E.DeadlineExceeded)
    assert lim.waiters("m") == 2
    await run_all(vc, [head, tail])
    assert [label for _, label in rec.sent] == ["a", "head", "tail"]
    assert rec.sent[2][0] == pytest.approx(2.0, abs=0.011)


async def test_cancelled_waiters_leave_the_queue() -> None:
    vc = VirtualClock()
    lim = limiter(vc, rpm=60)
    rec = Recorder(vc)
    await lim(req(), rec)
    head = asyncio.ensure_future(lim(labelled(req(), "head"), rec))
    mid = asyncio.ensure_future(lim(labelled(req(), "mid"), rec))
    tail = asyncio.ensure_future(lim(labelled(req(), "tail"), rec))
    await vc.advance(0.1)
    head.cancel()
    mid.cancel()
    await vc.advance(0)
    assert lim.waiters("m") == 1
    await run_all(vc, [tail])
    assert [label for _, label in rec.sent] == ["a", "tail"]
    assert rec.sent[1][0] == pytest.approx(1.0, abs=0.011)


# --- misc -----------------------------------------------------------------------------------------


async def test_no_limits_means_no_accounting_and_no_waiting() -> None:
    vc = VirtualClock()
    lim = limiter(vc)
    rec = Recorder(vc)
    for _ in range(1000):
        await lim(req(), rec)
    assert len(rec.sent) == 1000 and vc.now() == 0.0
    assert lim.bucket("m", "requests") is None


async def test_limits_are_per_model_and_looked_up_once() -> None:
    vc = VirtualClock()
    seen: list[str] = []

    def limits_for(model: str) -> ModelLimits:
        seen.append(model)
        return ModelLimits(rpm=60) if model == "slow" else ModelLimits()

    lim = LimiterLayer(limits_for=limits_for, clock=vc.now, sleep=vc.sleep)
    rec = Recorder(vc)
    for _ in range(3):
        await lim(req(model="fast"), rec)
    await lim(req(model="slow"), rec)
    assert seen == ["fast", "slow"]
    assert "'slow': requests=" in repr(lim)


@pytest.mark.parametrize("kwargs", [{"burst_seconds": 0.0}, {"safety": 1.0}, {"safety": -0.1}])
def test_constructor_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LimiterLayer(limits_for=lambda m: ModelLimits(), **kwargs)  # type: ignore[arg-type]


async def test_pause_is_logged_once_per_pause(caplog: pytest.LogCaptureFixture) -> None:
    vc = VirtualClock()
    lim = limiter(vc)
    limited, gates = gated_429s(1.0)
    with caplog.at_level(logging.INFO, logger="claude_force.layers.limiter"):
        tasks = [asyncio.ensure_future(lim(req(model="evil\nmodel"), limited)) for _ in range(3)]
        await vc.advance(0)
        for gate in gates:
            gate.set()
        await vc.advance(0)
    assert all(isinstance(t.exception(), E.RateLimited) for t in tasks)
    pauses = [r.getMessage() for r in caplog.records if "pausing" in r.getMessage()]
    assert len(pauses) == 1 and "evil\\nmodel" in pauses[0]
