"""The limiter's token bucket, and the one waiting primitive the limiter and breaker share.

A :class:`TokenBucket` refills continuously at ``limit / 60`` per second and holds only ``burst_seconds``
worth of tokens, so a client can never fire a whole minute's quota at once. A request bigger than the
bucket waits for a full bucket and then drives it into debt, so the long-run rate still holds.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from claude_force.clock import Sleep

__all__ = ["TokenBucket", "wait_or_timeout"]

_EPS = 1e-9


class TokenBucket:
    """A continuously refilling bucket for one per-minute limit.

    ``safety`` (a fraction in ``[0, 1)``) is held back from both the rate and the capacity, so that network
    jitter between our clock and the server's can never make the server see more than its limit.

    Example::

        bucket = TokenBucket(limit=1200, burst_seconds=1.0, now=0.0)   # 20/s, capacity 20
        bucket.wait_for(1, now=0.0)   # 0.0: a token is there
        bucket.take(1)
    """

    __slots__ = ("burst_seconds", "capacity", "level", "limit", "minimum", "rate", "safety", "updated")

    def __init__(
        self,
        *,
        limit: float,
        burst_seconds: float = 1.0,
        now: float,
        safety: float = 0.0,
        minimum: float = 1.0,
    ) -> None:
        if not (limit > 0 and math.isfinite(limit)):
            raise ValueError(f"limit must be a positive finite number, got {limit!r}")
        if not burst_seconds > 0:
            raise ValueError(f"burst_seconds must be > 0, got {burst_seconds!r}")
        if not 0.0 <= safety < 1.0:
            raise ValueError(f"safety must be in [0, 1), got {safety!r}")
        self.burst_seconds = burst_seconds
        self.safety = safety
        self.minimum = minimum
        self.limit = limit
        self.rate = 0.0
        self.capacity = 0.0
        self._configure(limit)
        self.level = self.capacity
        self.updated = now

    def _configure(self, limit: float) -> None:
        self.limit = limit
        self.rate = limit / 60.0 * (1.0 - self.safety)
        self.capacity = max(self.minimum, self.rate * self.burst_seconds)

    def set_limit(self, limit: float, *, now: float) -> None:
        """Change the per-minute limit (the level keeps what it has, capped at the new capacity)."""
        self.refill(now)
        self._configure(limit)
        self.level = min(self.level, self.capacity)

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last update."""
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, amount: float, *, now: float) -> float:
        """Seconds until ``amount`` may be taken (0 if now); amounts above capacity need a full bucket."""
        self.refill(now)
        need = min(amount, self.capacity)
        if self.level + _EPS >= need:
            return 0.0
        return (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        """Remove ``amount`` tokens; the level may become negative (debt)."""
        self.level -= amount

    def give(self, amount: float, *, now: float) -> None:
        """Return ``amount`` unused tokens (never above capacity)."""
        self.refill(now)
        self.level = min(self.capacity, self.level + amount)

    def tighten(self, remaining: float, *, now: float) -> bool:
        """Lower the level to ``remaining`` if it is above it; True if it changed."""
        self.refill(now)
        if self.level > remaining:
            self.level = remaining
            return True
        return False

    def __repr__(self) -> str:
        return (
            f"TokenBucket(limit={self.limit:g}/min, level={self.level:.2f}/{self.capacity:.2f}, "
            f"rate={self.rate:.3f}/s)"
        )


async def wait_or_timeout(fut: asyncio.Future[Any], timeout: float | None, *, sleep: Sleep) -> bool:
    """Wait until ``fut`` is done or ``timeout`` seconds pass on the injected ``sleep``; True if done.

    ``fut`` is never cancelled here (several callers may share it); the timer is.
    """
    if fut.done():
        return True
    if timeout is None:
        await asyncio.wait((fut,))
        return True
    if timeout <= 0:
        return False
    timer = asyncio.ensure_future(sleep(timeout))
    try:
        await asyncio.wait((fut, timer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not timer.done():
            timer.cancel()
    return fut.done()
