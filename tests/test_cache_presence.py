"""The presence filter lets a miss skip the disk, but never hides an entry that is on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from claude_force.cache import ResponseCache
from claude_force.cache.presence import KeyPresence
from claude_force.models import Response, Usage

SECRET = "p" * 40


def resp(text: str) -> Response:
    return Response(text=text, model="m", usage=Usage(1, 1))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_bloom_has_no_false_negatives_and_few_false_positives() -> None:
    p = KeyPresence()
    keys = [f"key-{i}" for i in range(20_000)]
    p.load(keys[:10_000], max_rowid=0, version=1, now=0.0)
    p.add_many(keys[10_000:])
    assert all(p.might_contain(k) for k in keys)
    false_pos = sum(p.might_contain(f"other-{i}") for i in range(20_000))
    assert false_pos < 200  # well under 1%
    assert p.fresh(0.01) and not p.fresh(10.0)


@pytest.mark.parametrize(
    "key",
    [
        "ab" * 32,  # a SHA-256 hex digest, the shape of every cache key: its own bytes are the hashes
        "AB" * 32,  # upper-case hex
        "zz" * 32,  # 64 characters, not hex: hashed instead
        "ab " * 20 + "abcd",  # 64 characters of hex with spaces (22 bytes, too few): hashed instead
        "\ud800" * 64,  # a lone surrogate
        "",
    ],
)
def test_any_key_added_is_found_again_whatever_its_shape(key: str) -> None:
    p = KeyPresence()
    p.load([], max_rowid=0, version=1, now=0.0)
    assert not p.might_contain(key)
    p.add(key)
    assert p.might_contain(key)


def test_overfull_filter_asks_to_be_reloaded_bigger() -> None:
    p = KeyPresence()
    p.load([], max_rowid=0, version=1, now=0.0)
    p.add_many(f"k{i}" for i in range(p._capacity + 1))
    assert not p.ready  # a miss then goes to disk until the reader thread reloads it, sized for the count
    p.load((f"k{i}" for i in range(70_000)), max_rowid=0, version=2, now=0.0, expected=70_000)
    assert p.ready and p.might_contain("k69999")


async def test_entries_already_on_disk_are_found_by_a_new_process(tmp_path: Path) -> None:
    first = ResponseCache(cache_dir=tmp_path / "c", secret=SECRET)
    first.store_later("old", resp("old"), agent="a")
    await first.aclose()
    second = ResponseCache(cache_dir=tmp_path / "c", secret=SECRET)
    try:
        assert await second.aget("missing") is None  # first miss loads the filter on the reader thread
        hit = await second.aget("old")
        assert hit is not None and hit.text == "old"
        assert second.stats().disk_hits == 1
    finally:
        await second.aclose()


async def test_other_process_writes_are_seen_once_the_filter_is_stale(tmp_path: Path) -> None:
    clock = Clock()
    reader = ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, max_memory_mb=1)
    writer = ResponseCache(cache_dir=tmp_path / "c", secret=SECRET)  # stands in for another process
    try:
        assert await reader.aget("k") is None  # loads the filter: empty database
        writer.store_later("k", resp("from elsewhere"), agent="a")
        writer.flush()
        # Within max_age the filter is trusted: the new entry is not looked for (it costs at worst one call).
        assert await reader.aget("k") is None
        clock.now += 1.0  # the filter is now stale: the next miss syncs from SQLite's data_version
        hit = await reader.aget("k")
        assert hit is not None and hit.text == "from elsewhere"
    finally:
        await reader.aclose()
        await writer.aclose()


async def test_own_writes_are_never_skipped_even_when_evicted_from_memory(tmp_path: Path) -> None:
    clock = Clock()
    cache = ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, max_memory_mb=0)
    try:
        assert await cache.aget("warm") is None
        cache.store_later("mine", resp("mine"), agent="a")
        cache.flush()
        hit = await cache.aget("mine")  # no memory tier at all: the filter must send this to disk
        assert hit is not None and hit.text == "mine"
    finally:
        await cache.aclose()


def test_keys_added_while_a_resizing_load_reads_the_disk_are_kept() -> None:
    p = KeyPresence()
    added_during = [f"{i:064x}" for i in range(1, 50)]

    def disk_keys() -> Iterator[str]:
        yield "on-disk"
        p.add_many(added_during)  # this process stores entries while the reader thread is loading
        yield "on-disk-too"

    # expected=100_000 needs a bigger filter than the current one: the old bits cannot be OR-ed in.
    p.load(disk_keys(), max_rowid=2, version=1, now=0.0, expected=100_000)
    assert p.might_contain("on-disk") and p.might_contain("on-disk-too")
    assert all(p.might_contain(k) for k in added_during)


async def test_a_stale_filter_is_synced_and_then_trusted_instead_of_reading_the_disk(tmp_path: Path) -> None:
    from claude_force.cache.store import SQLiteStore

    class CountingStore(SQLiteStore):
        reads: list[str] = []

        def read(self, key: str) -> tuple[object, ...] | None:
            CountingStore.reads.append(key)
            return super().read(key)

    clock = Clock()
    cache = ResponseCache(
        cache_dir=tmp_path / "c", secret=SECRET, clock=clock, max_memory_mb=0, store_factory=CountingStore
    )
    other = ResponseCache(cache_dir=tmp_path / "c", secret=SECRET)  # stands in for another process
    try:
        assert await cache.aget("warm") is None  # loads the filter
        other.store_later("theirs", resp("theirs"), agent="a")
        other.flush()
        clock.now += 1.0  # stale: the next misses go to the reader thread, which syncs first
        assert await cache.aget("absent") is None
        assert "absent" not in CountingStore.reads  # ruled out by the synced filter: no disk read
        hit = await cache.aget("theirs")  # pulled in by that sync: read from disk
        assert hit is not None and hit.text == "theirs"
        assert CountingStore.reads.count("theirs") == 1
    finally:
        await cache.aclose()
        await other.aclose()
