"""Single-flight: identical requests in flight at the same time share one upstream call.

The upstream call runs in a task owned by the layer, not in the first caller's task, and every caller (the
first one included) waits on a future of its own, which that task resolves in its last step. So cancelling
any caller, the first one included, never cancels the call that the others wait on; only when *every* waiter
has gone is the call cancelled, since nobody wants its answer. An error is delivered to every caller waiting
at that moment and then forgotten: the next identical request makes a fresh call. An answer stays shared until
the last caller has collected it. Followers get their own copy of the response and
``request.context.coalesced = True``, except that when the first caller was cancelled before collecting its
answer, the first follower to collect it takes its place (not coalesced), so the billed call's cost is in a result.

No lock is held across an ``await``: the in-flight table is touched only between awaits, on the event loop.
"""

from __future__ import annotations

import asyncio
import logging

from claude_force.cache.keys import cache_key
from claude_force.cache.memory import copy_response
from claude_force.errors import OrchestratorClosed
from claude_force.layers.base import Handler
from claude_force.models import Request, Response

__all__ = ["SingleFlightLayer"]

log = logging.getLogger("claude_force.layers.singleflight")


class _Flight:
    """One shared upstream call: the task running it, its answer once known, a future per waiting caller."""

    __slots__ = ("claimed", "key", "leader_left", "pending", "response", "task", "waiters")

    def __init__(self, key: str) -> None:
        self.key = key
        self.leader_left = False  # the first caller was cancelled before it collected the answer
        self.claimed = False  # ... and a follower has taken its place as the one who paid
        self.task: asyncio.Task[None] | None = None
        self.waiters: list[asyncio.Future[Response]] = []
        self.pending = 0
        self.response: Response | None = None


class SingleFlightLayer:
    """Coalesce identical concurrent requests (same ``request.context.cache_key``) into one upstream call.

    Example::

        single = SingleFlightLayer()
        handler = compose([CacheLayer(cache=cache), single, retry, budget, ...], transport.send)
        ...
        await single.aclose()  # cancels calls still in flight (none, after a clean shutdown)
    """

    __slots__ = ("_closing", "_coalesced", "_flights", "_inflight")

    def __init__(self) -> None:
        self._closing = False
        self._inflight: dict[str, _Flight] = {}
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
            if self._closing:
                raise OrchestratorClosed("the orchestrator is closed; create a new one")
            flight = self._inflight[key] = _Flight(key)
            # The call runs in a task of its own, so cancelling this caller cannot cancel it for the others.
            flight.task = asyncio.get_running_loop().create_task(self._run(flight, request, call_next))
            self._flights += 1
        else:
            request.context.coalesced = True
            self._coalesced += 1
            if flight.response is not None:  # answered; its callers are still collecting it: share it too
                self._claim_if_leader_left(flight, request)
                return copy_response(flight.response)
        # A plain future per caller: cancelling one caller cancels only its own future.
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        flight.waiters.append(waiter)
        flight.pending += 1
        try:
            response = await waiter
        except asyncio.CancelledError:
            if leader:
                flight.leader_left = True
            raise
        finally:
            flight.pending -= 1
            if flight.pending == 0:
                # The last caller has its answer (and the first one to resume has cached it), or every caller
                # was cancelled, in which case nobody wants this call any more.
                self._forget(flight)
                if flight.task is not None and not flight.task.done():
                    flight.task.cancel()
        if leader:
            return response
        self._claim_if_leader_left(flight, request)
        return copy_response(response)

    def _claim_if_leader_left(self, flight: _Flight, request: Request) -> None:
        """The first follower to collect an answer whose leader was cancelled is the one who paid for it: it is
        not ``coalesced``, so its result carries the call's cost (else the billed call would be in no result)."""
        if flight.leader_left and not flight.claimed:
            flight.claimed = True
            request.context.coalesced = False
            self._coalesced -= 1

    async def _run(self, flight: _Flight, request: Request, call_next: Handler) -> None:
        """Make the shared call and hand its outcome to every caller waiting at that moment.

        The outcome is delivered from this task's own last step (no done-callback hop); an exception is
        delivered, never left unretrieved on the task.
        """
        try:
            response = await call_next(request)
        except asyncio.CancelledError:
            self._forget(flight)
            # Cancelled by aclose(): the callers still waiting get a typed error (a failed result with code
            # ``closed``), not a CancelledError that nobody asked their task for.
            closed = OrchestratorClosed("the orchestrator closed while this call was in flight")
            self._deliver(flight, None, closed if self._closing else None)
            raise
        except BaseException as exc:
            self._forget(flight)  # an error is delivered once, never shared with later requests
            self._deliver(flight, None, exc)
            if not isinstance(exc, Exception):
                raise
            return
        flight.response = response
        self._deliver(flight, response, None)

    @staticmethod
    def _deliver(flight: _Flight, response: Response | None, exc: BaseException | None) -> None:
        waiters, flight.waiters = flight.waiters, []
        for w in waiters:
            if w.done():
                continue
            if response is not None:
                w.set_result(response)
            elif exc is not None:
                w.set_exception(exc)
            else:
                w.cancel()

    def _forget(self, flight: _Flight) -> None:
        if self._inflight.get(flight.key) is flight:
            del self._inflight[flight.key]

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    async def aclose(self) -> None:
        """Cancel and await every upstream call still running; their callers get :class:`OrchestratorClosed`."""
        self._closing = True
        tasks = [f.task for f in self._inflight.values() if f.task is not None and not f.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __repr__(self) -> str:
        return (
            f"SingleFlightLayer(in_flight={len(self._inflight)}, flights={self._flights}, "
            f"coalesced={self._coalesced})"
        )
