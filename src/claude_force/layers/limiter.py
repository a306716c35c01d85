"""Rate limiter: per-model token buckets for requests, input tokens and output tokens per minute.

Each attempt takes 1 request and its estimated input tokens up front and reserves ``max_tokens`` of output.
After the response, input and output are reconciled to the reported usage. Waiters are served strictly first
come, first served. The buckets tighten (never loosen past the configured limit) when the server's
``anthropic-ratelimit-*`` headers say fewer remain, and a 429 with ``retry-after`` pauses every caller of
that model once. See docs/resilience.md for the tuning notes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from claude_force import clock as _clock
from claude_force import constants as C
from claude_force.clock import Clock, Sleep
from claude_force.errors import DeadlineExceeded, RateLimited, RequestExceedsLimit
from claude_force.layers.base import Handler
from claude_force.layers.buckets import TokenBucket, wait_or_timeout
from claude_force.models import Request, Response
from claude_force.security.sanitize import safe
from claude_force.settings import ModelLimits

__all__ = ["DEFAULT_SAFETY", "HEADER_SLACK", "KINDS", "LimiterLayer"]

logger = logging.getLogger("claude_force.layers.limiter")

#: The three limits, in ``anthropic-ratelimit-<kind>-*`` spelling, in the order of every amounts tuple.
KINDS: tuple[str, str, str] = ("requests", "input-tokens", "output-tokens")
#: Fraction of every limit held back, so clock jitter against the server never yields a 429.
DEFAULT_SAFETY = 0.02
#: A header's ``remaining`` tightens a bucket only when the bucket holds more than ``remaining`` plus this
#: slack: ``remaining`` is rounded (down for requests, to the nearest thousand for tokens on the real API),
#: and a tightening on every rounding error would slow a client that is in fact within its limit.
HEADER_SLACK: dict[str, float] = {"requests": 1.0, "input-tokens": 1000.0, "output-tokens": 1000.0}
_HEADER_NAMES = tuple(
    (f"anthropic-ratelimit-{k}-limit", f"anthropic-ratelimit-{k}-remaining", f"anthropic-ratelimit-{k}-reset")
    for k in KINDS
)

Amounts = tuple[float, float, float]


class _Model:
    """One model's buckets, FIFO queue of waiters and shared 429 pause."""

    __slots__ = ("buckets", "configured", "kick", "paused_until", "queue", "server_reset")

    def __init__(self, limits: ModelLimits, *, now: float, burst_seconds: float, safety: float) -> None:
        self.configured: tuple[float | None, float | None, float | None] = (
            limits.rpm,
            limits.input_tpm,
            limits.output_tpm,
        )
        self.buckets: list[TokenBucket | None] = [
            None if limit is None else _bucket(kind, limit, now, burst_seconds, safety)
            for kind, limit in zip(KINDS, self.configured, strict=True)
        ]
        self.queue: deque[asyncio.Future[None]] = deque()
        self.paused_until = 0.0
        # Resolved to wake the head waiter early when tokens come back (refunds).
        self.kick: asyncio.Future[None] | None = None
        self.server_reset: list[str | None] = [None, None, None]

    def idle(self, now: float) -> bool:
        """No bucket, no queue, no pause: a call needs no accounting at all."""
        b = self.buckets
        return b[0] is None and b[1] is None and b[2] is None and not self.queue and now >= self.paused_until

    def wait_time(self, amounts: Amounts, now: float) -> float:
        wait = self.paused_until - now
        for bucket, amount in zip(self.buckets, amounts, strict=True):
            if bucket is not None and amount > 0:
                wait = max(wait, bucket.wait_for(amount, now=now))
        return wait

    def take_now(self, amounts: Amounts, now: float) -> Amounts | None:
        """Take ``amounts`` at once if nobody is queued, no pause is on and every bucket has them; else None.

        The hot path of a limiter with room: one pass over the buckets instead of ``wait_time`` then ``take``.
        """
        if self.queue or now < self.paused_until:
            return None
        b0, b1, b2 = self.buckets
        a0, a1, a2 = amounts
        # Check every bucket before taking from any, so a refusal leaves them all untouched.
        if (
            (b0 is not None and a0 > 0 and b0.wait_for(a0, now=now) > 0)
            or (b1 is not None and a1 > 0 and b1.wait_for(a1, now=now) > 0)
            or (b2 is not None and a2 > 0 and b2.wait_for(a2, now=now) > 0)
        ):
            return None
        return self.take(amounts)

    def take(self, amounts: Amounts) -> Amounts:
        """Take ``amounts`` from the buckets that exist; return what was taken from each."""
        taken = [0.0, 0.0, 0.0]
        for i, (bucket, amount) in enumerate(zip(self.buckets, amounts, strict=True)):
            if bucket is not None and amount > 0:
                bucket.take(amount)
                taken[i] = amount
        return taken[0], taken[1], taken[2]

    def wake(self) -> None:
        kick = self.kick
        if kick is not None and not kick.done():
            kick.set_result(None)

    def describe(self, now: float) -> str:
        parts = []
        for kind, bucket in zip(KINDS, self.buckets, strict=True):
            if bucket is not None:
                bucket.refill(now)
                parts.append(f"{kind}={bucket.level:.1f}/{bucket.capacity:.1f}")
        parts.append(f"waiters={len(self.queue)}")
        if self.paused_until > now:
            parts.append(f"paused_for={self.paused_until - now:.2f}s")
        return ", ".join(parts)


def _bucket(kind: str, limit: float, now: float, burst_seconds: float, safety: float) -> TokenBucket:
    # Only the request bucket must hold at least one whole unit; token buckets may be smaller than one
    # request's tokens (such a request waits for a full bucket and goes into debt).
    minimum = 1.0 if kind == "requests" else 0.0
    return TokenBucket(limit=limit, burst_seconds=burst_seconds, now=now, safety=safety, minimum=minimum)


class LimiterLayer:
    """Pace requests per model within RPM, input TPM and output TPM (each optional), first come first served.

    Example::

        limiter = LimiterLayer(limits_for=settings.limits_for)   # or lambda model: ModelLimits(rpm=1200)
        handler = compose([retry, breaker, limiter], transport_send)

    ``burst_seconds`` is how many seconds of each limit a bucket holds; ``safety`` is the fraction of each
    limit held back; ``adopt_server_limits`` creates a bucket from a server's ``-limit`` header for a limit
    that is not configured; ``max_pause`` caps the shared pause after a 429.
    """

    __slots__ = (
        "_burst",
        "_clock",
        "_limits_for",
        "_max_pause",
        "_models",
        "_sleep",
        "adopt_server_limits",
        "safety",
    )

    def __init__(
        self,
        *,
        limits_for: Callable[[str], ModelLimits],
        clock: Clock = _clock.monotonic,
        sleep: Sleep = _clock.sleep,
        burst_seconds: float = 1.0,
        safety: float = DEFAULT_SAFETY,
        adopt_server_limits: bool = True,
        max_pause: float = C.DEFAULT_RETRY_AFTER_CAP_SECONDS,
    ) -> None:
        if not burst_seconds > 0:
            raise ValueError(f"burst_seconds must be > 0, got {burst_seconds!r}")
        if not 0.0 <= safety < 1.0:
            raise ValueError(f"safety must be in [0, 1), got {safety!r}")
        self._limits_for = limits_for
        self._clock = clock
        self._sleep = sleep
        self._burst = burst_seconds
        self.safety = safety
        self.adopt_server_limits = adopt_server_limits
        self._max_pause = max_pause
        self._models: dict[str, _Model] = {}

    def __repr__(self) -> str:
        now = self._clock()
        models = "; ".join(f"{m!r}: {s.describe(now)}" for m, s in self._models.items())
        return f"LimiterLayer(burst={self._burst:g}s, safety={self.safety:g}, models={{{models}}})"

    def _model(self, model: str) -> _Model:
        state = self._models.get(model)
        if state is None:
            limits = self._limits_for(model)
            state = _Model(limits, now=self._clock(), burst_seconds=self._burst, safety=self.safety)
            self._models[model] = state
        return state

    def bucket(self, model: str, kind: str) -> TokenBucket | None:
        """The live bucket of ``kind`` (one of :data:`KINDS`) for ``model``, for tests and metrics."""
        return self._model(model).buckets[KINDS.index(kind)]

    def paused_until(self, model: str) -> float:
        """Clock time until which every caller of ``model`` waits after a 429 (0.0 if never paused)."""
        return self._model(model).paused_until

    def waiters(self, model: str) -> int:
        return len(self._model(model).queue)

    # -- the layer ------------------------------------------------------------------------------

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        state = self._model(request.model)
        if state.idle(self._clock()):  # the hot path when no limit is known
            taken: Amounts = (0.0, 0.0, 0.0)
        else:
            amounts = self._amounts(request, state)
            taken = await self._acquire(request, state, amounts)
        try:
            response = await call_next(request)
        except RateLimited as exc:
            self._refund_output(state, taken)
            if exc.retry_after is not None:
                self._pause(request, state, exc.retry_after)
            raise
        except BaseException:
            self._refund_output(state, taken)
            raise
        self._reconcile(state, taken, response)
        if response.headers:
            self._adapt(request.model, state, response.headers)
        return response

    def _amounts(self, request: Request, state: _Model) -> Amounts:
        """What this request needs from each bucket; raises RequestExceedsLimit if it could never fit."""
        _, in_bucket, out_bucket = state.buckets
        need_in = 0.0
        if in_bucket is not None:
            need_in = float(request.estimated_input_tokens())
            if need_in > in_bucket.limit:
                raise RequestExceedsLimit(
                    f"request needs about {need_in:.0f} input tokens, more than the whole input-token limit "
                    f"of {in_bucket.limit:g} per minute for model {safe(request.model)}"
                )
        need_out = 0.0
        if out_bucket is not None:
            # A reply may stop far below max_tokens, so a large max_tokens is never refused: it reserves at
            # most a whole minute's output and is reconciled to the real usage afterwards.
            need_out = float(min(request.max_tokens, out_bucket.limit))
        return 1.0, need_in, need_out

    async def _acquire(self, request: Request, state: _Model, amounts: Amounts) -> Amounts:
        taken = state.take_now(amounts, self._clock())
        if taken is not None:
            return taken
        deadline = request.context.deadline
        me: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        state.queue.append(me)
        try:
            while state.queue[0] is not me:  # wait our turn: strictly first come, first served
                timeout = None if deadline is None else deadline - self._clock()
                if not await wait_or_timeout(me, timeout, sleep=self._sleep):
                    raise DeadlineExceeded(
                        f"deadline passed while queued in the rate limiter for model {safe(request.model)}"
                    )
            while True:  # at the head: wait for the tokens
                now = self._clock()
                wait = state.wait_time(amounts, now)
                if wait <= 0:
                    return state.take(amounts)
                if deadline is not None and now + wait > deadline:
                    raise DeadlineExceeded(
                        f"rate limit wait of {wait:.2f}s for model {safe(request.model)} "
                        "would pass the deadline"
                    )
                state.kick = kick = asyncio.get_running_loop().create_future()
                await wait_or_timeout(kick, wait, sleep=self._sleep)
        finally:
            self._leave(state, me)

    def _leave(self, state: _Model, me: asyncio.Future[None]) -> None:
        queue = state.queue
        if queue and queue[0] is me:
            queue.popleft()
            state.kick = None
            if queue and not queue[0].done():
                queue[0].set_result(None)  # the next in line becomes the head
        else:
            with contextlib.suppress(ValueError):
                queue.remove(me)
        if not me.done():
            me.cancel()

    # -- after the call -------------------------------------------------------------------------

    def _refund_output(self, state: _Model, taken: Amounts) -> None:
        # Requests and input tokens stay spent: the server counted them for any request it received, and
        # keeping them after a 429 (which it did not count) errs on the side of sending less.
        bucket = state.buckets[2]
        if taken[2] > 0 and bucket is not None:
            bucket.give(taken[2], now=self._clock())
            state.wake()

    def _reconcile(self, state: _Model, taken: Amounts, response: Response) -> None:
        if taken[1] <= 0 and taken[2] <= 0:
            return
        if response.usage_missing:
            self._refund_output(state, taken)  # no usage to go by; the output was at least not all used
            return
        now = self._clock()
        usage = response.usage
        actual = (
            0.0,
            float(usage.input_tokens + usage.cache_creation_input_tokens),
            float(usage.output_tokens),
        )
        returned = False
        for i in (1, 2):
            bucket = state.buckets[i]
            if taken[i] > 0 and bucket is not None:
                delta = taken[i] - actual[i]
                if delta > 0:
                    bucket.give(delta, now=now)
                    returned = True
                elif delta < 0:
                    bucket.refill(now)
                    bucket.take(-delta)
        if returned:
            state.wake()

    def _pause(self, request: Request, state: _Model, retry_after: float) -> None:
        if self._max_pause <= 0:
            return  # pausing disabled
        until = self._clock() + min(max(retry_after, 0.0), self._max_pause)
        if until > state.paused_until:
            fresh = state.paused_until <= self._clock()
            state.paused_until = until
            if fresh:
                logger.info(
                    "limiter: 429 for model %s: pausing every caller for %.2fs",
                    safe(request.model),
                    until - self._clock(),
                )

    def _adapt(self, model: str, state: _Model, headers: dict[str, str]) -> None:
        """Tighten (or create, if adopting) buckets from the server's ``anthropic-ratelimit-*`` headers."""
        now = self._clock()
        for i, (limit_h, remaining_h, reset_h) in enumerate(_HEADER_NAMES):
            raw_remaining = headers.get(remaining_h)
            raw_limit = headers.get(limit_h)
            if raw_remaining is None and raw_limit is None:
                continue
            server_limit = _number(raw_limit)
            remaining = _number(raw_remaining)
            state.server_reset[i] = headers.get(reset_h)
            bucket = state.buckets[i]
            kind = KINDS[i]
            if server_limit is not None and server_limit > 0:
                configured = state.configured[i]
                if bucket is None:
                    if not self.adopt_server_limits:
                        continue
                    bucket = _bucket(kind, server_limit, now, self._burst, self.safety)
                    state.buckets[i] = bucket
                    logger.info(
                        "limiter: model %s: adopted the server's %s limit %g/min",
                        safe(model),
                        kind,
                        server_limit,
                    )
                else:
                    effective = server_limit if configured is None else min(configured, server_limit)
                    if effective != bucket.limit:
                        bucket.set_limit(effective, now=now)
                        logger.info(
                            "limiter: model %s: %s limit now %g/min (server says %g)",
                            safe(model),
                            kind,
                            effective,
                            server_limit,
                        )
            if bucket is not None and remaining is not None:
                bucket.refill(now)
                if bucket.level > remaining + HEADER_SLACK[kind] and bucket.tighten(remaining, now=now):
                    logger.debug(
                        "limiter: model %s: server has %g %s left; bucket tightened",
                        safe(model),
                        remaining,
                        kind,
                    )


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    if value != value or value < 0 or value == float("inf"):
        return None
    return value
