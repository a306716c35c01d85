"""Retry layer: transient failures only, ``Retry-After`` honoured, full-jitter backoff, inside a deadline.

"Should we retry?" (:func:`should_retry`, a table) is kept apart from "how long to wait?"
(:func:`retry_delay`), and each is tested alone. The layer sits outside the breaker and the limiter, so
every attempt is a real, paced and counted API request.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from claude_force import clock as _clock
from claude_force import constants as C
from claude_force.clock import Clock, Sleep
from claude_force.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequest,
    BudgetExceeded,
    CircuitOpen,
    ClaudeForceError,
    DeadlineExceeded,
    MalformedResponse,
    NotFound,
    OrchestratorClosed,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RequestExceedsLimit,
    RequestTimeout,
    RequestTooLarge,
    ResponseTooLarge,
    ServerError,
)
from claude_force.layers.base import Handler
from claude_force.models import Request, Response
from claude_force.security.sanitize import safe

__all__ = ["RETRYABLE", "RetryLayer", "RetryPolicy", "retry_delay", "should_retry"]

logger = logging.getLogger("claude_force.layers.retry")

#: Exception type -> retry it? The most specific class in an exception's MRO wins; anything not listed
#: (including every non-``ClaudeForceError``) is not retried.
RETRYABLE: dict[type[BaseException], bool] = {
    # transient: the same request may well succeed a moment later
    RateLimited: True,  # 429
    Overloaded: True,  # 529
    ServerError: True,  # 500, 502, 503, 504 (and other 5xx)
    RequestTimeout: True,  # 408
    APIConnectionError: True,
    APITimeoutError: True,
    MalformedResponse: True,  # includes EmptyResponse (null content, no text)
    ResponseTooLarge: False,  # the same request would bring the same oversize body (and be billed again)
    # permanent: the same request fails the same way
    BadRequest: False,  # 400
    AuthenticationError: False,  # 401
    PermissionDenied: False,  # 403
    NotFound: False,  # 404
    RequestTooLarge: False,  # 413
    APIStatusError: False,  # any other status
    # not transport failures
    BudgetExceeded: False,
    CircuitOpen: False,  # a waiting breaker never raises it; a failing-fast one means "stop now"
    RequestExceedsLimit: False,
    DeadlineExceeded: False,
    ClaudeForceError: False,
}


def should_retry(exc: BaseException) -> bool:
    """True when ``exc`` is a transient failure worth another attempt (see :data:`RETRYABLE`)."""
    for cls in type(exc).__mro__:
        verdict = RETRYABLE.get(cls)
        if verdict is not None:
            return verdict
    return False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts, how long to back off, and how long one attempt may take.

    Example::

        policy = RetryPolicy(max_attempts=5, backoff_base=0.25)
    """

    max_attempts: int = C.DEFAULT_MAX_ATTEMPTS
    backoff_base: float = C.DEFAULT_BACKOFF_BASE_SECONDS
    backoff_max: float = C.DEFAULT_BACKOFF_MAX_SECONDS
    retry_after_cap: float = C.DEFAULT_RETRY_AFTER_CAP_SECONDS
    attempt_timeout: float = C.DEFAULT_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        for name in ("backoff_base", "backoff_max", "retry_after_cap"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.attempt_timeout > 0:
            raise ValueError(f"attempt_timeout must be > 0, got {self.attempt_timeout!r}")


def retry_delay(exc: BaseException, attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    The server's ``retry_after`` (already parsed by the transport) wins, capped at ``policy.retry_after_cap``;
    otherwise full jitter: ``uniform(0, min(backoff_max, backoff_base * 2 ** (attempt - 1)))``.
    """
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, (int, float)) and retry_after >= 0:
        return min(float(retry_after), policy.retry_after_cap)
    ceiling = min(policy.backoff_max, policy.backoff_base * 2.0 ** min(max(attempt - 1, 0), 62))
    return rng.uniform(0.0, ceiling)


class RetryLayer:
    """Retry transient failures with backoff; every attempt is counted in ``request.context``.

    Per attempt it increments ``context.attempts``, sets ``context.attempt_timeout`` (the transport applies
    it) and, on failure, appends the error code to ``context.attempt_errors``. It stops at
    ``max_attempts``, or when the next wait would cross ``context.deadline`` (raising the last error). After
    :meth:`aclose` it makes no new attempt: a call whose attempt fails (the transport closing under it does
    that) or whose backoff ends raises :class:`~claude_force.errors.OrchestratorClosed` (code ``closed``).

    Example::

        retry = RetryLayer(policy=RetryPolicy(max_attempts=8))
        handler = compose([retry, breaker, limiter], transport_send)
        response = await handler(request)
    """

    __slots__ = ("_clock", "_closed", "_closing", "_rng", "_sleep", "policy")

    def __init__(
        self,
        *,
        policy: RetryPolicy | None = None,
        clock: Clock = _clock.monotonic,
        sleep: Sleep = _clock.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy if policy is not None else RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()  # jitter, not crypto
        self._closing = False
        self._closed = asyncio.Event()

    async def aclose(self) -> None:
        """Make no further attempt (the orchestrator is closing); calls waiting out a backoff stop waiting."""
        self._closing = True
        self._closed.set()

    async def _wait(self, delay: float) -> None:
        """The backoff before the next attempt, cut short by :meth:`aclose`."""
        sleeper = asyncio.ensure_future(self._sleep(delay))
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait((sleeper, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            closed.cancel()

    def __repr__(self) -> str:
        p = self.policy
        return (
            f"RetryLayer(max_attempts={p.max_attempts}, backoff={p.backoff_base:g}..{p.backoff_max:g}s, "
            f"retry_after_cap={p.retry_after_cap:g}s, attempt_timeout={p.attempt_timeout:g}s)"
        )

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        ctx = request.context
        policy = self.policy
        attempt = 0
        last: ClaudeForceError | None = None
        while True:
            now = self._clock()
            deadline = ctx.deadline
            if deadline is not None and now >= deadline:
                raise DeadlineExceeded(
                    f"deadline passed before attempt {attempt + 1} (after {attempt} attempt(s))"
                ) from last
            if self._closing:
                raise OrchestratorClosed(
                    f"the orchestrator closed before attempt {attempt + 1} of this call"
                ) from last
            attempt += 1
            ctx.attempts += 1
            timeout = policy.attempt_timeout
            if deadline is not None:
                timeout = min(timeout, deadline - now)
            ctx.attempt_timeout = timeout
            try:
                return await call_next(request)
            except ClaudeForceError as exc:
                ctx.attempt_errors.append(exc.code)
                usage = getattr(exc, "usage", None)  # a billed 200 that failed here (MalformedResponse)
                if usage is not None:
                    if ctx.failed_usage is None:
                        ctx.failed_usage = []
                    ctx.failed_usage.append(usage)
                if self._closing and should_retry(exc):
                    raise OrchestratorClosed("the orchestrator closed while this call was in flight") from exc
                delay = self._decide(request, exc, attempt)
                if delay is None:
                    raise
                last = exc
            await self._wait(delay)

    def _decide(self, request: Request, exc: ClaudeForceError, attempt: int) -> float | None:
        """The wait before the next attempt, or None to give up (the reason is logged)."""
        policy = self.policy
        debug = logger.isEnabledFor(logging.DEBUG)
        if not should_retry(exc):
            if debug:
                logger.debug(
                    "retry: agent=%s attempt=%d %s is not transient, giving up",
                    safe(request.agent_name),
                    attempt,
                    exc.code,
                )
            return None
        if attempt >= policy.max_attempts:
            if debug:
                logger.debug(
                    "retry: agent=%s attempt=%d %s, max attempts (%d) reached, giving up",
                    safe(request.agent_name),
                    attempt,
                    exc.code,
                    policy.max_attempts,
                )
            return None
        delay = retry_delay(exc, attempt, policy, self._rng)
        deadline = request.context.deadline
        if deadline is not None and self._clock() + delay >= deadline:
            if debug:
                logger.debug(
                    "retry: agent=%s attempt=%d %s, waiting %.3fs would cross the deadline, giving up",
                    safe(request.agent_name),
                    attempt,
                    exc.code,
                    delay,
                )
            return None
        if debug:
            source = "retry-after" if getattr(exc, "retry_after", None) is not None else "backoff"
            logger.debug(
                "retry: agent=%s attempt=%d %s is transient, retrying in %.3fs (%s)",
                safe(request.agent_name),
                attempt,
                exc.code,
                delay,
                source,
            )
        return delay
