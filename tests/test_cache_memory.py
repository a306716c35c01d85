"""MemoryTier: a byte-bounded LRU that hands out copies."""

from __future__ import annotations

import threading

import pytest

from claude_force.cache.memory import ENTRY_OVERHEAD_BYTES, MemoryTier
from claude_force.models import Response, Usage


def resp(text: str = "hello") -> Response:
    return Response(text=text, model="m", usage=Usage(3, 4), stop_reason="end_turn")


def test_get_returns_a_copy_that_callers_may_mutate() -> None:
    tier = MemoryTier(max_bytes=10_000)
    tier.put("k", resp(), size=10, expires=100.0)
    first = tier.get("k", now=0.0)
    assert first is not None
    first.text = "changed"
    first.usage.input_tokens = 999
    again = tier.get("k", now=0.0)
    assert again is not None
    assert again.text == "hello"
    assert again.usage.input_tokens == 3


def test_expired_entries_are_not_served_and_are_dropped() -> None:
    tier = MemoryTier(max_bytes=10_000)
    tier.put("k", resp(), size=10, expires=100.0)
    assert tier.get("k", now=99.999) is not None
    assert tier.get("k", now=100.0) is None
    assert len(tier) == 0
    assert tier.bytes == 0


def test_bound_is_in_bytes_and_evicts_least_recently_used() -> None:
    per = 1000 + ENTRY_OVERHEAD_BYTES
    tier = MemoryTier(max_bytes=per * 3)
    for k in "abc":
        tier.put(k, resp(), size=1000, expires=1e9)
    assert tier.get("a", now=0) is not None  # a is now most recent
    tier.put("d", resp(), size=1000, expires=1e9)  # evicts b, the LRU
    assert tier.get("b", now=0) is None
    assert all(tier.get(k, now=0) is not None for k in "acd")
    assert tier.bytes <= tier.max_bytes
    assert tier.evictions == 1


def test_many_small_entries_respect_the_byte_bound() -> None:
    tier = MemoryTier(max_bytes=100_000)
    for i in range(10_000):
        tier.put(f"k{i}", resp(), size=10, expires=1e9)
    assert tier.bytes <= 100_000
    assert len(tier) == 100_000 // (10 + ENTRY_OVERHEAD_BYTES)


def test_an_entry_larger_than_the_tier_is_not_kept_and_replaces_nothing() -> None:
    tier = MemoryTier(max_bytes=2000)
    tier.put("small", resp(), size=10, expires=1e9)
    assert tier.put("big", resp(), size=5000, expires=1e9) is False
    assert tier.get("big", now=0) is None
    assert tier.get("small", now=0) is not None


def test_replacing_a_key_keeps_the_byte_count_exact() -> None:
    tier = MemoryTier(max_bytes=100_000)
    tier.put("k", resp(), size=100, expires=1e9)
    tier.put("k", resp("other"), size=300, expires=1e9)
    assert tier.bytes == 300 + ENTRY_OVERHEAD_BYTES
    got = tier.get("k", now=0)
    assert got is not None and got.text == "other"
    assert tier.delete("k") is True
    assert tier.bytes == 0


def test_negative_bound_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        MemoryTier(max_bytes=-1)


def test_concurrent_puts_keep_accounting_exact() -> None:
    tier = MemoryTier(max_bytes=50 * (100 + ENTRY_OVERHEAD_BYTES))

    def work(n: int) -> None:
        for i in range(2000):
            tier.put(f"{n}-{i % 120}", resp(), size=100, expires=1e9)
            tier.get(f"{(n + 1) % 4}-{i % 120}", now=0)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tier.bytes == len(tier) * (100 + ENTRY_OVERHEAD_BYTES)
    assert tier.bytes <= tier.max_bytes
    assert "MemoryTier(entries=" in repr(tier)


def test_entries_are_kept_as_bytes_the_garbage_collector_never_walks() -> None:
    import gc

    tier = MemoryTier(max_bytes=100_000)
    for i in range(100):
        tier.put(f"k{i}", resp(f"text {i}"), size=10, expires=1e9)
    gc.collect()  # lets the collector untrack the (bytes, int, float) tuples
    assert not any(gc.is_tracked(value) for value in tier._data.values())
    got = tier.get("k7", now=0)
    assert got is not None and got.text == "text 7" and got.usage.input_tokens == 3
