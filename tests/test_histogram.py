from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_force.tracking.histogram import LogHistogram


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


def test_empty_histogram_has_no_quantiles() -> None:
    h = LogHistogram()
    assert h.count == 0
    assert h.quantile(0.5) is None
    assert h.mean is None and h.min is None and h.max is None
    assert list(h.buckets()) == []


@pytest.mark.parametrize("q", [0.0, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_quantiles_within_relative_accuracy(q: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(4.0, 1.2) for _ in range(20_000)]
    h = LogHistogram(relative_accuracy=0.01)
    for v in values:
        h.add(v)
    exact = exact_quantile(values, q)
    got = h.quantile(q)
    assert got is not None
    assert abs(got - exact) / exact <= 0.01


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=1e-3, max_value=1e7, allow_nan=False), min_size=1, max_size=300),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_relative_error_property(values: list[float], q: float) -> None:
    h = LogHistogram(relative_accuracy=0.02)
    for v in values:
        h.add(v)
    exact = exact_quantile(values, q)
    got = h.quantile(q)
    assert got is not None
    assert abs(got - exact) <= 0.02 * exact * (1 + 1e-9)


def test_zero_negative_nan_and_inf() -> None:
    h = LogHistogram()
    for v in (0.0, 0.0, math.nan, math.inf, -math.inf, 5.0):
        h.add(v)
    assert h.count == 3  # NaN and infinities ignored
    assert h.quantile(0.0) == 0.0
    assert h.quantile(1.0) == pytest.approx(5.0, rel=0.01)
    assert h.min == 0.0 and h.max == 5.0


def test_memory_is_bounded_by_range_not_count() -> None:
    h = LogHistogram(relative_accuracy=0.01)
    rng = random.Random(1)
    for _ in range(100_000):
        h.add(rng.uniform(0.5, 60_000.0))  # 0.5 ms .. 1 min
    assert h.count == 100_000
    # log(120000) / log(1.0202) ~ 585 buckets at most
    assert h.bucket_count < 600


def test_max_buckets_collapses_low_end_and_keeps_high_percentiles() -> None:
    h = LogHistogram(relative_accuracy=0.01, max_buckets=50)
    values = [1.01**i for i in range(2000)]
    for v in values:
        h.add(v)
    assert h.bucket_count <= 50
    p99 = h.quantile(0.99)
    assert p99 is not None
    assert abs(p99 - exact_quantile(values, 0.99)) / exact_quantile(values, 0.99) <= 0.01


def test_merge_equals_single_histogram() -> None:
    rng = random.Random(3)
    a, b, both = LogHistogram(), LogHistogram(), LogHistogram()
    for i in range(5000):
        v = rng.expovariate(1 / 200)
        (a if i % 2 else b).add(v)
        both.add(v)
    a.merge(b)
    assert a.count == both.count
    for q in (0.1, 0.5, 0.99):
        assert a.quantile(q) == both.quantile(q)
    assert a.mean == pytest.approx(both.mean)


def test_merge_rejects_different_accuracy() -> None:
    with pytest.raises(ValueError, match="accuracy"):
        LogHistogram(relative_accuracy=0.01).merge(LogHistogram(relative_accuracy=0.05))


def test_round_trip_and_buckets_sum() -> None:
    h = LogHistogram()
    for v in (0.0, 1.0, 2.0, 2.0, 300.0):
        h.add(v)
    copy = LogHistogram.from_dict(h.to_dict())
    assert copy.quantile(0.5) == h.quantile(0.5)
    assert sum(n for _, _, n in h.buckets()) == h.count
    lows = [lo for lo, _, _ in h.buckets()]
    assert lows == sorted(lows)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="relative_accuracy"):
        LogHistogram(relative_accuracy=0.0)
    with pytest.raises(ValueError, match="max_buckets"):
        LogHistogram(max_buckets=1)
    with pytest.raises(ValueError, match="q must"):
        LogHistogram().quantile(1.5)
    assert "count=0" in repr(LogHistogram())
