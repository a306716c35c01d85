"""A log-bucketed histogram with fixed relative error (the DDSketch idea), for latency percentiles.

A value ``x > 0`` falls in bucket ``ceil(log(x) / log(gamma))`` with ``gamma = (1 + a) / (1 - a)``; every
value in a bucket is within ``a`` (relative) of the bucket's representative value, so any quantile is reported
with relative error at most ``a``. Memory is one counter per occupied bucket: latencies from 1 µs to 1 day at
1 % need under 1,200 buckets, whatever the number of values recorded, and ``max_buckets`` caps it anyway.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

#: Relative accuracy of the default histogram (1 %).
DEFAULT_RELATIVE_ACCURACY = 0.01
#: Values at or below this are counted in the zero bucket.
MIN_POSITIVE = 1e-9
DEFAULT_MAX_BUCKETS = 2048


class LogHistogram:
    """Streaming quantiles with bounded relative error and bounded memory.

    Example::

        h = LogHistogram()
        for ms in (12.0, 15.5, 230.0):
            h.add(ms)
        h.quantile(0.5)  # ~15.5, within 1 %
    """

    __slots__ = (
        "_buckets",
        "_count",
        "_gamma",
        "_inv_log_gamma",
        "_max",
        "_max_buckets",
        "_min",
        "_sum",
        "_zero",
        "accuracy",
    )

    def __init__(
        self, *, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY, max_buckets: int = DEFAULT_MAX_BUCKETS
    ) -> None:
        if not 0.0 < relative_accuracy < 1.0:
            raise ValueError("relative_accuracy must be in (0, 1)")
        if max_buckets < 2:
            raise ValueError("max_buckets must be at least 2")
        self.accuracy = relative_accuracy
        self._gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
        self._inv_log_gamma = 1.0 / math.log(self._gamma)
        self._max_buckets = max_buckets
        self._buckets: dict[int, int] = {}
        self._zero = 0
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    # --- recording ------------------------------------------------------------------------------------------

    def key(self, value: float) -> int | None:
        """The bucket of a finite value (None = the zero bucket). Histograms of equal accuracy share keys, so a
        caller feeding several histograms computes it once and uses :meth:`add_keyed`."""
        if value <= MIN_POSITIVE:
            return None
        return math.ceil(math.log(value) * self._inv_log_gamma)

    def add(self, value: float) -> None:
        """Record one value. NaN and infinities are ignored; values <= 0 count in the zero bucket."""
        if value != value or value in (math.inf, -math.inf):
            return
        self.add_keyed(value, self.key(value))

    def add_keyed(self, value: float, key: int | None) -> None:
        """Record a finite ``value`` whose bucket is ``key`` (from :meth:`key` of a histogram of equal accuracy)."""
        self._count += 1
        self._sum += value
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value
        if key is None:
            self._zero += 1
            return
        buckets = self._buckets
        n = buckets.get(key)
        if n is None:
            buckets[key] = 1
            if len(buckets) > self._max_buckets:
                self._collapse()
        else:
            buckets[key] = n + 1

    def _collapse(self) -> None:
        # Fold the two lowest buckets together: high percentiles (what latency SLOs care about) stay exact.
        keys = sorted(self._buckets)
        lowest, second = keys[0], keys[1]
        self._buckets[second] += self._buckets.pop(lowest)

    def merge(self, other: LogHistogram) -> None:
        """Add ``other``'s values to this histogram (both must have the same accuracy)."""
        if other._gamma != self._gamma:
            raise ValueError("cannot merge histograms with different accuracy")
        for key, n in other._buckets.items():
            self._buckets[key] = self._buckets.get(key, 0) + n
        while len(self._buckets) > self._max_buckets:
            self._collapse()
        self._zero += other._zero
        self._count += other._count
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    # --- reading --------------------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return self._count

    @property
    def bucket_count(self) -> int:
        """Occupied buckets (the memory footprint), zero bucket excluded."""
        return len(self._buckets)

    @property
    def mean(self) -> float | None:
        return self._sum / self._count if self._count else None

    @property
    def min(self) -> float | None:
        return self._min if self._count else None

    @property
    def max(self) -> float | None:
        return self._max if self._count else None

    def _value(self, key: int) -> float:
        return 2.0 * self._gamma**key / (self._gamma + 1.0)

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0 <= q <= 1), or None when empty. Relative error <= ``relative_accuracy``."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be in [0, 1]")
        if self._count == 0:
            return None
        rank = q * (self._count - 1)
        seen = self._zero
        if rank < seen:
            return 0.0 if self._min <= 0.0 else self._min
        for key in sorted(self._buckets):
            seen += self._buckets[key]
            if rank < seen:
                return min(max(self._value(key), self._min), self._max)
        return self._max

    def buckets(self) -> Iterator[tuple[float, float, int]]:
        """``(lower, upper, count)`` of each occupied bucket in ascending order (the zero bucket first)."""
        if self._zero:
            yield (0.0, MIN_POSITIVE, self._zero)
        for key in sorted(self._buckets):
            yield (self._gamma ** (key - 1), self._gamma**key, self._buckets[key])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (``from_dict`` is its inverse)."""
        return {
            "accuracy": self.accuracy,
            "zero": self._zero,
            "count": self._count,
            "sum": self._sum,
            "min": self.min,
            "max": self.max,
            "buckets": {str(k): v for k, v in self._buckets.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogHistogram:
        h = cls(relative_accuracy=float(data["accuracy"]))
        h._zero = int(data["zero"])
        h._count = int(data["count"])
        h._sum = float(data["sum"])
        h._min = math.inf if data["min"] is None else float(data["min"])
        h._max = -math.inf if data["max"] is None else float(data["max"])
        h._buckets = {int(k): int(v) for k, v in dict(data["buckets"]).items()}
        return h

    def __repr__(self) -> str:
        return (
            f"LogHistogram(count={self._count}, buckets={len(self._buckets)}, "
            f"p50={self.quantile(0.5)}, p99={self.quantile(0.99)})"
        )
