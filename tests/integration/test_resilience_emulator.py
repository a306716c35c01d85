"""Retry + breaker + limiter composed around the native transport, against the emulator over loopback.

These run in real time (the emulator is a real aiohttp server), but assert only outcomes, never durations.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from claude_force.clock import monotonic
from claude_force.emulator import EmulatorConfig, EmulatorServer
from claude_force.layers.base import compose
from claude_force.layers.breaker import BreakerLayer, BreakerPolicy
from claude_force.layers.limiter import LimiterLayer
from claude_force.layers.retry import RetryLayer, RetryPolicy
from claude_force.models import Request, Response
from claude_force.settings import ModelLimits
from claude_force.transports.native import NativeTransport

pytestmark = pytest.mark.integration

MODEL = "claude-sonnet-4-5"


def make_request(i: int) -> Request:
    r = Request(
        agent_name=f"agent-{i % 3}",
        model=MODEL,
        system="You are terse.",
        messages=[{"role": "user", "content": f"task number {i}: say something"}],
        max_tokens=64,
    )
    return r


async def run_tasks(
    emu: EmulatorServer, layers: list[Any], n: int, concurrency: int
) -> tuple[list[Request], list[Response | BaseException]]:
    async with NativeTransport(api_key="test-key", base_url=emu.base_url, pool_size=concurrency) as transport:

        async def send(request: Request) -> Response:
            return await transport.send(request, timeout=request.context.attempt_timeout)

        handler = compose(layers, send)
        gate = asyncio.Semaphore(concurrency)
        requests = [make_request(i) for i in range(n)]

        async def one(request: Request) -> Response:
            async with gate:
                request.context.deadline = monotonic() + 60.0
                return await handler(request)

        results = await asyncio.gather(*(one(r) for r in requests), return_exceptions=True)
    return requests, list(results)


async def test_every_task_survives_injected_faults() -> None:
    """W4 in small: 10% 429 (short retry-after), 5% 529, 5% 500, 1% null content; all tasks succeed."""
    config = EmulatorConfig(
        latency_ms=2, p429=0.10, p529=0.05, p500=0.05, pnull=0.01, retry_after=0.02, seed=11
    )
    retry = RetryLayer(policy=RetryPolicy(backoff_base=0.01, backoff_max=0.1), rng=random.Random(5))
    breaker = BreakerLayer(endpoint="emulator", policy=BreakerPolicy())
    limiter = LimiterLayer(limits_for=lambda model: ModelLimits())
    async with EmulatorServer(config) as emu:
        requests, results = await run_tasks(emu, [retry, breaker, limiter], n=300, concurrency=50)
        stats = await emu.stats()
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    assert all(isinstance(r, Response) and r.text for r in results)
    errors = [code for r in requests for code in r.context.attempt_errors]
    # the storm really happened, and each retry was counted on its task
    for code in ("rate_limited", "overloaded", "server_error"):
        assert code in errors
    assert sum(r.context.attempts for r in requests) == stats["requests"] == 300 + len(errors)
    assert breaker.state(MODEL) == "closed"


async def test_client_pacing_keeps_a_capped_server_free_of_429s() -> None:
    """W3 in small: server capped at 20 req/s, client told rpm=1200: all succeed with at most two 429s."""
    config = EmulatorConfig(latency_ms=50, rpm=1200, seed=3)
    retry = RetryLayer(policy=RetryPolicy())
    breaker = BreakerLayer(endpoint="emulator", policy=BreakerPolicy())
    # Client and server both pace in real time, and the server shares this event loop, so the time between the
    # client's admission and the server's counts against the server's bucket. With a margin m the client sends at
    # most (1-m)*20*(1+w) requests in any w seconds against the server's 20*(1+w): a delivery delay D of the
    # early requests behind the later ones is absorbed while D <= m/(1-m). 2% absorbs ~20 ms and 10% ~110 ms; both
    # failed on clean-clone CI runs (3 429s) when opening the first connections under coverage stalled longer. 30%
    # absorbs ~430 ms. Without pacing, 50 requests at once meet a 20-request bucket (58 429s measured), so the bound still
    # proves the limiter works; the default margin is measured at full size by W3 in benchmarks/ (200 tasks).
    limiter = LimiterLayer(limits_for=lambda model: ModelLimits(rpm=1200), safety=0.3)
    async with EmulatorServer(config) as emu:
        requests, results = await run_tasks(emu, [retry, breaker, limiter], n=60, concurrency=50)
        stats = await emu.stats()
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert stats["statuses"].get("429", 0) <= 2
    assert stats["statuses"].get("200") == 60
    assert sum(r.context.attempt_errors.count("rate_limited") for r in requests) <= 2
