"""CacheLayer and SingleFlightLayer, alone and composed, against an in-test upstream controlled by events."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from claude_force.cache import ResponseCache, cache_key
from claude_force.errors import OrchestratorClosed, RateLimited
from claude_force.layers.base import compose
from claude_force.layers.cache import UNCACHEABLE_STOP_REASONS, CacheLayer, is_cacheable
from claude_force.layers.singleflight import SingleFlightLayer
from claude_force.models import CallContext, Request, Response, Usage

SECRET = "layers-test-secret-0123456789abcdef-xyz"


def req(content: str = "task", **kw: Any) -> Request:
    return Request(
        agent_name=kw.pop("agent_name", "agent"),
        model="m",
        system=kw.pop("system", "system prompt"),
        messages=[{"role": "user", "content": content}],
        max_tokens=100,
        **kw,
    )


class Upstream:
    """A fake innermost handler: counts calls; optionally waits for ``gate``; can fail or stop early."""

    def __init__(self, *, gated: bool = False) -> None:
        self.calls = 0
        self.cancelled = 0
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()
        self.fail: BaseException | None = None
        self.stop_reason: str | None = "end_turn"

    async def __call__(self, request: Request) -> Response:
        self.calls += 1
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.fail is not None:
            raise self.fail
        text = f"answer to {request.messages[0]['content']} #{self.calls}"
        return Response(text=text, model="m", usage=Usage(10, 20), stop_reason=self.stop_reason)


async def settle() -> None:
    """Let every task started so far run up to the gate it waits on.

    Twenty passes of the event loop (``sleep(0)`` yields once; no clock is involved, so this is deterministic),
    more than the few awaits any of these pipelines takes to reach ``Upstream.gate``.
    """
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[ResponseCache]:
    c = ResponseCache(cache_dir=tmp_path / "cache", secret=SECRET)
    yield c
    await c.aclose()


# --- CacheLayer ------------------------------------------------------------------------------------


async def test_miss_calls_upstream_then_hit_serves_from_cache(cache: ResponseCache) -> None:
    upstream = Upstream()
    handler = compose([CacheLayer(cache=cache)], upstream)
    first = req()
    r1 = await handler(first)
    assert upstream.calls == 1
    assert first.context.cached is False
    assert first.context.cache_key == cache_key(first)
    second = req(context=CallContext(canary="a-different-canary"))
    r2 = await handler(second)
    assert upstream.calls == 1
    assert second.context.cached is True
    assert r2.text == r1.text
    assert r2.usage == Usage(10, 20)  # usage as stored; the orchestrator reports cost 0 for a hit


async def test_a_changed_agent_file_misses(cache: ResponseCache) -> None:
    upstream = Upstream()
    handler = compose([CacheLayer(cache=cache)], upstream)
    await handler(req(system="v1"))
    await handler(req(system="v2"))
    assert upstream.calls == 2


async def test_errors_are_never_cached(cache: ResponseCache) -> None:
    upstream = Upstream()
    upstream.fail = RateLimited("slow down", status=429, retry_after=1.0)
    handler = compose([CacheLayer(cache=cache)], upstream)
    with pytest.raises(RateLimited):
        await handler(req())
    upstream.fail = None
    r = await handler(req())
    assert upstream.calls == 2
    assert r.text.endswith("#2")
    cache.flush()  # disk writes are write-behind
    assert cache.stats().entries == 1


@pytest.mark.parametrize("reason", sorted(UNCACHEABLE_STOP_REASONS))
async def test_truncated_or_withheld_responses_are_not_cached(cache: ResponseCache, reason: str) -> None:
    upstream = Upstream()
    upstream.stop_reason = reason
    handler = compose([CacheLayer(cache=cache)], upstream)
    await handler(req())
    await handler(req())
    assert upstream.calls == 2
    assert cache.stats().entries == 0


@pytest.mark.parametrize("reason", ["end_turn", "stop_sequence", "tool_use", None])
def test_complete_responses_are_cacheable(reason: str | None) -> None:
    assert is_cacheable(Response(text="t", model="m", usage=Usage(), stop_reason=reason))


async def test_non_json_requests_bypass_the_cache(cache: ResponseCache) -> None:
    upstream = Upstream()
    handler = compose([CacheLayer(cache=cache), SingleFlightLayer()], upstream)
    odd = req(params={"x": {1, 2}})
    await handler(odd)
    await handler(req(params={"x": {1, 2}}))
    assert upstream.calls == 2
    assert odd.context.cache_key is None


async def test_a_precomputed_key_is_reused(cache: ResponseCache) -> None:
    upstream = Upstream()
    handler = compose([CacheLayer(cache=cache)], upstream)
    r = req(context=CallContext(cache_key="precomputed"))
    await handler(r)
    assert cache.contains("precomputed")
    assert "CacheLayer(" in repr(CacheLayer(cache=cache))


# --- SingleFlightLayer -----------------------------------------------------------------------------


async def test_identical_concurrent_requests_share_one_call() -> None:
    upstream = Upstream(gated=True)
    single = SingleFlightLayer()
    handler = compose([single], upstream)
    requests = [req() for _ in range(10)]
    tasks = [asyncio.ensure_future(handler(r)) for r in requests]
    await settle()
    assert upstream.calls == 1
    assert single.in_flight == 1
    upstream.gate.set()
    results = await asyncio.gather(*tasks)
    assert upstream.calls == 1
    assert {r.text for r in results} == {"answer to task #1"}
    assert [r.context.coalesced for r in requests] == [False] + [True] * 9
    assert len({id(r) for r in results}) == 10  # followers get their own copies
    assert single.in_flight == 0
    assert "coalesced=9" in repr(single)


async def test_different_requests_do_not_share() -> None:
    upstream = Upstream()
    handler = compose([SingleFlightLayer()], upstream)
    await asyncio.gather(handler(req("a")), handler(req("b")))
    assert upstream.calls == 2


async def test_errors_reach_current_followers_and_are_then_forgotten() -> None:
    upstream = Upstream(gated=True)
    upstream.fail = RateLimited("busy", status=429)
    handler = compose([SingleFlightLayer()], upstream)
    tasks = [asyncio.ensure_future(handler(req())) for _ in range(3)]
    await settle()
    upstream.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RateLimited) for r in results)
    assert upstream.calls == 1
    upstream.fail = None
    r = await handler(req())
    assert upstream.calls == 2  # a fresh call, not the remembered error
    assert r.text.endswith("#2")


async def test_a_request_arriving_while_callers_collect_the_answer_shares_it() -> None:
    # The gap that matters: the shared call has finished and its outcome has been handed to the waiting
    # callers, but not all of them have resumed yet, and an identical request arrives. It must share the
    # answer at once, not wait on a flight nobody will answer, nor call again.
    upstream = Upstream(gated=True)
    single = SingleFlightLayer()
    handler = compose([single], upstream)
    first = [asyncio.ensure_future(handler(req())) for _ in range(2)]
    await settle()
    (flight,) = single._inflight.values()
    late: list[Response] = []

    def arrive(_task: object) -> None:
        # Runs after the answer was handed out and the first caller resumed, before the second caller resumes.
        # Drive the new request's coroutine by hand so it runs exactly here.
        coro = handler(req())
        try:
            coro.send(None)  # type: ignore[attr-defined]
        except StopIteration as done:
            late.append(done.value)
        else:
            coro.close()  # type: ignore[attr-defined]

    flight.waiters[0].add_done_callback(arrive)
    upstream.gate.set()
    results = await asyncio.wait_for(asyncio.gather(*first), 30)  # a guard against a hang, not a timing check
    assert upstream.calls == 1
    assert len(late) == 1, "the late request had to wait instead of sharing the finished answer"
    assert late[0].text == results[0].text and late[0] is not results[0]  # shared, as its own copy
    assert single.in_flight == 0


async def test_cancelling_the_leader_never_strands_the_followers() -> None:
    upstream = Upstream(gated=True)
    single = SingleFlightLayer()
    handler = compose([single], upstream)
    leader = asyncio.ensure_future(handler(req()))
    await settle()
    followers = [asyncio.ensure_future(handler(req())) for _ in range(3)]
    await settle()
    leader.cancel()
    await settle()
    assert leader.cancelled()
    assert upstream.cancelled == 0  # the shared call goes on
    upstream.gate.set()
    results = await asyncio.gather(*followers)
    assert [r.text for r in results] == ["answer to task #1"] * 3
    assert upstream.calls == 1


async def test_when_the_leader_is_cancelled_one_follower_carries_the_cost() -> None:
    upstream = Upstream(gated=True)
    single = SingleFlightLayer()
    handler = compose([single], upstream)
    leader = asyncio.ensure_future(handler(req()))
    await settle()
    requests = [req() for _ in range(3)]
    followers = [asyncio.ensure_future(handler(r)) for r in requests]
    await settle()
    leader.cancel()
    await settle()
    upstream.gate.set()
    await asyncio.gather(*followers)
    assert upstream.calls == 1
    # exactly one of them now stands for the call that was paid for; the others still share it
    assert sorted(r.context.coalesced for r in requests) == [False, True, True]
    assert "coalesced=2" in repr(single)


async def test_cancelling_a_follower_leaves_the_others_alone() -> None:
    upstream = Upstream(gated=True)
    handler = compose([SingleFlightLayer()], upstream)
    leader = asyncio.ensure_future(handler(req()))
    await settle()
    quitter = asyncio.ensure_future(handler(req()))
    stayer = asyncio.ensure_future(handler(req()))
    await settle()
    quitter.cancel()
    upstream.gate.set()
    assert (await leader).text == (await stayer).text
    assert quitter.cancelled()
    assert upstream.calls == 1


async def test_when_every_waiter_is_cancelled_the_call_is_cancelled_too() -> None:
    upstream = Upstream(gated=True)
    single = SingleFlightLayer()
    handler = compose([single], upstream)
    tasks = [asyncio.ensure_future(handler(req())) for _ in range(2)]
    await settle()
    for t in tasks:
        t.cancel()
    await settle()
    assert upstream.cancelled == 1
    assert single.in_flight == 0
    upstream.gate.set()
    await handler(req())
    assert upstream.calls == 2


async def test_aclose_cancels_calls_still_running() -> None:
    upstream = Upstream(gated=True)
    single = SingleFlightLayer()
    handler = compose([single], upstream)
    task = asyncio.ensure_future(handler(req()))
    await settle()
    await single.aclose()
    # The caller's own task was never cancelled: it gets a typed error (a failed result with code "closed").
    with pytest.raises(OrchestratorClosed):
        await task
    assert not task.cancelled()
    assert upstream.cancelled == 1


# --- composed --------------------------------------------------------------------------------------


async def test_cache_then_single_flight_pay_once_per_distinct_request(cache: ResponseCache) -> None:
    # The DESIGN benchmark shape: 500 tasks with 251 distinct ones -> 251 upstream calls.
    upstream = Upstream(gated=True)
    handler = compose([CacheLayer(cache=cache), SingleFlightLayer()], upstream)
    rng = random.Random(7)
    contents = [f"task-{i}" for i in range(251)] + [f"task-{rng.randrange(251)}" for _ in range(249)]
    rng.shuffle(contents)
    requests = [req(c) for c in contents]
    first = [asyncio.ensure_future(handler(r)) for r in requests[:300]]
    await settle()
    upstream.gate.set()
    results = await asyncio.gather(*first)
    results += await asyncio.gather(*(handler(r) for r in requests[300:]))
    assert upstream.calls == len(set(contents))
    assert all(r.text.startswith(f"answer to {c} ") for r, c in zip(results, contents, strict=True))
    cache.flush()  # disk writes are write-behind
    assert cache.stats().entries == len(set(contents))
    coalesced = sum(r.context.coalesced for r in requests)
    cached = sum(r.context.cached for r in requests)
    assert coalesced + cached == 500 - len(set(contents))


async def test_followers_do_not_rewrite_what_the_leader_stored(tmp_path: Path) -> None:
    from claude_force.cache.store import SQLiteStore

    class CountingStore(SQLiteStore):
        puts = 0

        def put_many(self, entries: Any, **kwargs: Any) -> list[str]:
            entries = list(entries)
            CountingStore.puts += len(entries)
            return super().put_many(entries, **kwargs)

    async with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, store_factory=CountingStore) as c:
        upstream = Upstream(gated=True)
        handler = compose([CacheLayer(cache=c), SingleFlightLayer()], upstream)
        tasks = [asyncio.ensure_future(handler(req())) for _ in range(5)]
        await settle()
        upstream.gate.set()
        await asyncio.gather(*tasks)
        c.flush()
        assert CountingStore.puts == 1


async def test_no_new_call_starts_after_aclose() -> None:
    upstream = Upstream(gated=True)
    single = SingleFlightLayer()
    await single.aclose()
    with pytest.raises(OrchestratorClosed):
        await compose([single], upstream)(req())
    assert upstream.calls == 0
