"""Server-side rate limits: continuously refilling token buckets for RPM, input TPM and output TPM.

The real API enforces its per-minute limits over short intervals, so each bucket holds only one
second's allowance (``limit / 60``, at least 1): a client cannot burst a whole minute's quota. A
request that needs more than a bucket can ever hold is admitted when the bucket is full and drives
it into debt, so one large request can always pass eventually and the long-run rate still holds.
Output tokens are only known after the answer, so they are charged afterwards (possibly into debt);
a new request is refused while the output bucket is in debt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["RateLimiter", "TokenBucket", "retry_after_header", "rfc3339"]

_EPS = 1e-9


def rfc3339(epoch_seconds: float) -> str:
    """Format a UNIX time as an RFC 3339 UTC timestamp with second precision."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(epoch_seconds)))


class TokenBucket:
    """A bucket holding at most one second of a per-minute ``limit``; it refills continuously.

    Example::

        bucket = TokenBucket(600, now=0.0)   # 10 per second, capacity 10
        bucket.wait_for(1, now=0.0)          # 0.0: enough tokens
        bucket.take(1)
    """

    __slots__ = ("capacity", "level", "limit", "rate", "updated")

    def __init__(self, limit_per_minute: float, *, now: float) -> None:
        self.limit = limit_per_minute
        self.rate = limit_per_minute / 60.0
        self.capacity = max(self.rate, 1.0)
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last update."""
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, amount: float, *, now: float) -> float:
        """Seconds until ``amount`` tokens may be taken (0 if now). Amounts above capacity need a full
        bucket."""
        self.refill(now)
        need = min(amount, self.capacity)
        if self.level + _EPS >= need:
            return 0.0
        return (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        """Remove ``amount`` tokens; the level may become negative (debt)."""
        self.level -= amount

    def remaining(self) -> int:
        """Whole tokens available now (never negative)."""
        return max(0, math.floor(self.level + _EPS))

    def seconds_until_full(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


class RateLimiter:
    """The three optional limits of one emulated account.

    ``admit`` checks every configured bucket and charges them all or none. Example::

        limiter = RateLimiter(rpm=60, input_tpm=60_000, output_tpm=None, clock=lambda: 0.0)
        wait = limiter.admit(input_tokens=500)   # 0.0 -> admitted and charged
        limiter.charge_output(42)
    """

    def __init__(
        self,
        *,
        rpm: float | None,
        input_tpm: float | None,
        output_tpm: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = (rpm, input_tpm, output_tpm)
        self._clock = clock
        self.requests: TokenBucket | None = None
        self.input_tokens: TokenBucket | None = None
        self.output_tokens: TokenBucket | None = None
        self.reset()

    @property
    def enabled(self) -> bool:
        return any(limit is not None for limit in self._limits)

    def reset(self) -> None:
        """Refill every bucket."""
        now = self._clock()
        rpm, itpm, otpm = self._limits
        self.requests = None if rpm is None else TokenBucket(rpm, now=now)
        self.input_tokens = None if itpm is None else TokenBucket(itpm, now=now)
        self.output_tokens = None if otpm is None else TokenBucket(otpm, now=now)

    def admit(self, input_tokens: int) -> tuple[float, str]:
        """Charge one request and ``input_tokens``. Return ``(0.0, "")`` if admitted, else the seconds
        to wait and which limit was hit (``"requests"``, ``"input tokens"`` or ``"output tokens"``);
        nothing is charged when refused."""
        now = self._clock()
        wait = 0.0
        which = ""
        for bucket, amount, name in (
            (self.requests, 1.0, "requests"),
            (self.input_tokens, float(input_tokens), "input tokens"),
            (self.output_tokens, 1.0, "output tokens"),
        ):
            if bucket is not None:
                w = bucket.wait_for(amount, now=now)
                if w > wait:
                    wait, which = w, name
        if wait > 0.0:
            return wait, which
        if self.requests is not None:
            self.requests.take(1.0)
        if self.input_tokens is not None:
            self.input_tokens.take(float(input_tokens))
        return 0.0, ""

    def charge_output(self, output_tokens: int) -> None:
        """Charge output tokens after the answer (the bucket may go into debt)."""
        if self.output_tokens is not None:
            self.output_tokens.refill(self._clock())
            self.output_tokens.take(float(output_tokens))

    def headers(self, wall_now: float) -> dict[str, str]:
        """``anthropic-ratelimit-*`` headers for each configured limit. ``remaining`` is what can be
        sent right now; ``reset`` is when the bucket will be full again."""
        out: dict[str, str] = {}
        now = self._clock()
        for bucket, name in (
            (self.requests, "requests"),
            (self.input_tokens, "input-tokens"),
            (self.output_tokens, "output-tokens"),
        ):
            if bucket is None:
                continue
            bucket.refill(now)
            prefix = "anthropic-ratelimit-" + name
            out[prefix + "-limit"] = str(int(bucket.limit))
            out[prefix + "-remaining"] = str(bucket.remaining())
            out[prefix + "-reset"] = rfc3339(wall_now + bucket.seconds_until_full())
        return out


def retry_after_header(wait_seconds: float) -> str:
    """``retry-after`` value for a wait: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(wait_seconds)))
