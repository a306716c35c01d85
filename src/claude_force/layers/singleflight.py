"""Single-flight: identical requests in flight at the same time share one upstream call.

The upstream call runs in a task owned by the layer, not in the first caller's task, and every caller (the
first one included) waits on a shielded future. So cancelling any caller, the first one included, never
cancels the call that the others wait on; only when *every* waiter has gone is the call cancelled, since
nobody wants its answer. An error is delivered to every caller waiting at that moment and then forgotten:
the next identical request makes a fresh call. Followers get their own copy of the response and
``request.context.coalesced = True``.

No lock is held across an ``await``: the in-flight table is touched only between awaits, on the event loop.
"""

from __future__ import annotations

import asyncio
import logging

from claude_force.cache.keys import cache_key
from claude_force.cache.memory import copy_response
from claude_force.layers.base import Handler
from claude_force.models import Request, Response

__all__ = ["SingleFlightLayer"]

log = logging.getLogger("claude_force.layers.singleflight")


class _Flight:
    __slots__ = ("future", "task", "waiters")

    def __init__(self, future: asyncio.Future[Response]) -> None:
        self.future = future
        self.task: asyncio.Task[None] | None = None
        self.waiters = 0


def _consume(future: asyncio.Future[Response]) -> None:
    # Mark the exception as retrieved: it was delivered to the waiters (or nobody was left to want it).
    if not future.cancelled():
        future.exception()


class SingleFlightLayer:
    """Coalesce identical concurrent requests (same ``request.context.cache_key``) into one upstream call.

    Example::

        single = SingleFlightLayer()
        handler = compose([CacheLayer(cache=cache), single, budget, retry, ...], transport.send)
        ...
        await single.aclose()  # cancels calls still in flight (none, after a clean shutdown)
    """

    __slots__ = ("_coalesced", "_flights", "_inflight", "_tasks")

    def __init__(self) -> None:
        self._inflight: dict[str, _Flight] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._flights = 0
        self._coalesced = 0

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        key = request.context.cache_key
        if key is None:
            try:
                key = cache_key(request)
            except TypeError:
                return await call_next(request)  # not JSON, so not comparable: nothing to share
            request.context.cache_key = key
        flight = self._inflight.get(key)
        leader = flight is None
        if flight is None:
            flight = self._start(key, request, call_next)
        else:
            request.context.coalesced = True
            self._coalesced += 1
        flight.waiters += 1
        try:
            response = await asyncio.shield(flight.future)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0:
                if self._inflight.get(key) is flight:
                    del self._inflight[key]
                if flight.task is not None and not flight.task.done():
                    flight.task.cancel()  # every waiter was cancelled: nobody wants this call any more
        return response if leader else copy_response(response)

    def _start(self, key: str, request: Request, call_next: Handler) -> _Flight:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Response] = loop.create_future()
        future.add_done_callback(_consume)
        flight = _Flight(future)
        self._inflight[key] = flight
        task = loop.create_task(self._run(key, request, call_next, flight))
        flight.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._flights += 1
        return flight

    async def _run(self, key: str, request: Request, call_next: Handler, flight: _Flight) -> None:
        future = flight.future
        try:
            response = await call_next(request)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:  # delivered to the current waiters, never cached
            if self._inflight.get(key) is flight:
                del self._inflight[key]  # a request arriving from now on makes a fresh call
            if not future.done():
                future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            if not future.done():
                future.set_result(response)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    async def aclose(self) -> None:
        """Cancel and await every upstream call still running."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __repr__(self) -> str:
        return (
            f"SingleFlightLayer(in_flight={len(self._inflight)}, flights={self._flights}, "
            f"coalesced={self._coalesced})"
        )
