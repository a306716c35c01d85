"""Circuit breaker per (endpoint, model): closed -> open -> half-open -> closed.

Only transient failures count (the retry table, :func:`claude_force.layers.retry.should_retry`), except 429,
which is the limiter's business. Non-transient errors (400, budget, deadline, cancellation) count as neither
failure nor success. The state machine is plain synchronous code between awaits: asyncio runs one task at a
time, so no lock is needed, and none is ever held across an await.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from claude_force import clock as _clock
from claude_force import constants as C
from claude_force.clock import Clock, Sleep
from claude_force.errors import CircuitOpen, RateLimited
from claude_force.layers.base import Handler
from claude_force.layers.buckets import wait_or_timeout
from claude_force.layers.retry import should_retry
from claude_force.models import Request, Response
from claude_force.security.sanitize import safe

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "BreakerLayer", "BreakerPolicy", "counts_as_failure"]

logger = logging.getLogger("claude_force.layers.breaker")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


def counts_as_failure(exc: BaseException) -> bool | None:
    """True for a failure that trips the breaker; None for an outcome that counts as neither."""
    if isinstance(exc, RateLimited):
        return None  # the server is up and answering; pacing is the limiter's job
    return True if should_retry(exc) else None


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When to open, and for how long.

    Opens after ``consecutive_failures`` transient failures in a row, or when at least ``failure_rate`` of the
    last ``window`` outcomes (and at least ``window`` of them) were failures. Stays open ``cooldown_seconds``.
    With ``wait_when_open`` callers sleep through the cool-down instead of failing fast with ``CircuitOpen``.

    Example::

        policy = BreakerPolicy(consecutive_failures=5, cooldown_seconds=2.0, wait_when_open=True)
    """

    consecutive_failures: int = C.DEFAULT_BREAKER_CONSECUTIVE_FAILURES
    failure_rate: float = C.DEFAULT_BREAKER_FAILURE_RATE
    window: int = C.DEFAULT_BREAKER_WINDOW
    cooldown_seconds: float = C.DEFAULT_BREAKER_COOLDOWN_SECONDS
    wait_when_open: bool = False

    def __post_init__(self) -> None:
        if self.consecutive_failures < 1:
            raise ValueError(f"consecutive_failures must be >= 1, got {self.consecutive_failures}")
        if not 0.0 < self.failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be in (0, 1], got {self.failure_rate!r}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if not self.cooldown_seconds >= 0:
            raise ValueError(f"cooldown_seconds must be >= 0, got {self.cooldown_seconds!r}")


class _Circuit:
    """The state of one model's circuit."""

    __slots__ = ("consecutive", "epoch", "failures", "open_until", "outcomes", "probe", "state")

    def __init__(self, window: int) -> None:
        self.state = CLOSED
        self.consecutive = 0
        self.outcomes: deque[bool] = deque(maxlen=window)  # True = failure
        self.failures = 0
        self.open_until = 0.0
        # Set while the half-open probe is in flight; resolved when it finishes.
        self.probe: asyncio.Future[None] | None = None
        # Bumped on every transition, so outcomes of calls started in an older state are ignored.
        self.epoch = 0

    def describe(self) -> str:
        if self.state == CLOSED:
            return f"closed(consecutive={self.consecutive}, failures={self.failures}/{len(self.outcomes)})"
        if self.state == OPEN:
            return f"open(until={self.open_until:.3f})"
        return f"half-open(probe={'in flight' if self.probe is not None else 'free'})"


class BreakerLayer:
    """Fail fast (or wait) while an (endpoint, model) keeps failing; let exactly one probe test recovery.

    Example::

        breaker = BreakerLayer(endpoint="https://api.anthropic.com", policy=BreakerPolicy())
        handler = compose([retry, breaker, limiter], transport_send)
        breaker.state("claude-sonnet-5-5")   # "closed" | "open" | "half-open"
    """

    __slots__ = ("_circuits", "_clock", "_sleep", "endpoint", "policy")

    def __init__(
        self,
        *,
        endpoint: str,
        policy: BreakerPolicy | None = None,
        clock: Clock = _clock.monotonic,
        sleep: Sleep = _clock.sleep,
    ) -> None:
        self.endpoint = endpoint
        self.policy = policy if policy is not None else BreakerPolicy()
        self._clock = clock
        self._sleep = sleep
        self._circuits: dict[str, _Circuit] = {}

    def __repr__(self) -> str:
        models = ", ".join(f"{m!r}: {c.describe()}" for m, c in self._circuits.items())
        return f"BreakerLayer(endpoint={self.endpoint!r}, models={{{models}}})"

    def state(self, model: str) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"`` (an expired cool-down reads as half-open)."""
        circuit = self._circuits.get(model)
        if circuit is None:
            return CLOSED
        if circuit.state == OPEN and self._clock() >= circuit.open_until:
            return HALF_OPEN
        return circuit.state

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        circuit = self._circuits.get(request.model)
        if circuit is None:
            circuit = self._circuits[request.model] = _Circuit(self.policy.window)
        if circuit.state == CLOSED:  # the hot path: nothing to wait for
            epoch, probe = circuit.epoch, False
        else:
            epoch, probe = await self._admit(request, circuit)
        try:
            response = await call_next(request)
        except BaseException as exc:
            verdict = counts_as_failure(exc) if isinstance(exc, Exception) else None
            self._record(request.model, circuit, epoch, probe, verdict)
            raise
        self._record(request.model, circuit, epoch, probe, False)
        return response

    async def _admit(self, request: Request, circuit: _Circuit) -> tuple[int, bool]:
        """Wait or fail while the circuit is open; return (epoch, is_probe) once the call may go."""
        wait = self.policy.wait_when_open
        deadline = request.context.deadline
        while True:
            now = self._clock()
            if circuit.state == CLOSED:
                return circuit.epoch, False
            if circuit.state == OPEN:
                if now >= circuit.open_until:
                    self._transition(request.model, circuit, HALF_OPEN)
                    continue
                retry_in = circuit.open_until - now
                if not wait or (deadline is not None and circuit.open_until > deadline):
                    raise CircuitOpen(
                        f"circuit for model {safe(request.model)} at {safe(self.endpoint)} is open; "
                        f"retry in {retry_in:.1f}s",
                        retry_in=retry_in,
                    )
                await self._sleep(retry_in)
                continue
            # half-open
            if circuit.probe is None:
                circuit.probe = asyncio.get_running_loop().create_future()
                return circuit.epoch, True
            if not wait:
                raise CircuitOpen(
                    f"circuit for model {safe(request.model)} at {safe(self.endpoint)} is half-open "
                    "and its probe is in flight",
                    retry_in=None,
                )
            timeout = None if deadline is None else deadline - now
            if not await wait_or_timeout(circuit.probe, timeout, sleep=self._sleep):
                raise CircuitOpen(
                    f"circuit for model {safe(request.model)} at {safe(self.endpoint)} is half-open; "
                    "the deadline passed while waiting for its probe",
                    retry_in=None,
                )

    def _record(self, model: str, circuit: _Circuit, epoch: int, probe: bool, failure: bool | None) -> None:
        """Apply one call's outcome: True = failure, False = success, None = neither."""
        if probe:
            fut, circuit.probe = circuit.probe, None
            if fut is not None and not fut.done():
                fut.set_result(None)
            if circuit.epoch != epoch:
                return
            if failure is True:
                self._transition(model, circuit, OPEN)
            elif failure is False:
                self._transition(model, circuit, CLOSED)
            # neither: stay half-open; the next caller becomes the probe
            return
        if failure is None or circuit.epoch != epoch or circuit.state != CLOSED:
            return
        policy = self.policy
        outcomes = circuit.outcomes
        if len(outcomes) == outcomes.maxlen and outcomes[0]:
            circuit.failures -= 1
        outcomes.append(failure)
        if failure:
            circuit.failures += 1
            circuit.consecutive += 1
        else:
            circuit.consecutive = 0
            return
        if circuit.consecutive >= policy.consecutive_failures:
            reason = f"{circuit.consecutive} consecutive failures"
        elif len(outcomes) >= policy.window and circuit.failures >= policy.failure_rate * len(outcomes):
            reason = f"{circuit.failures}/{len(outcomes)} recent calls failed"
        else:
            return
        self._transition(model, circuit, OPEN, reason)

    def _transition(self, model: str, circuit: _Circuit, state: str, reason: str = "") -> None:
        old = circuit.state
        circuit.state = state
        circuit.epoch += 1
        if state == OPEN:
            circuit.open_until = self._clock() + self.policy.cooldown_seconds
            logger.warning(
                "breaker: %s %s: %s -> open for %.1fs%s",
                safe(self.endpoint),
                safe(model),
                old,
                self.policy.cooldown_seconds,
                f" ({reason})" if reason else " (probe failed)",
            )
        elif state == CLOSED:
            circuit.consecutive = 0
            circuit.failures = 0
            circuit.outcomes.clear()
            logger.info(
                "breaker: %s %s: %s -> closed (probe succeeded)", safe(self.endpoint), safe(model), old
            )
        else:
            logger.info(
                "breaker: %s %s: open -> half-open (cool-down over)", safe(self.endpoint), safe(model)
            )
