"""ResponseCache: tiers, stats, TTL, limits, quota, oversize entries, storage failures, threads and asyncio."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claude_force.cache import CacheStats, ResponseCache
from claude_force.cache.dirs import DB_NAME
from claude_force.cache.store import SQLiteStore
from claude_force.errors import CacheError
from claude_force.models import Response, Usage

SECRET = "store-test-secret-0123456789abcdef-xyz"
MB = 1024 * 1024


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def resp(text: str = "hello", n: int = 0) -> Response:
    return Response(text=text * max(1, n), model="m", usage=Usage(11, 22, 3, 4), stop_reason="end_turn")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(tmp_path: Path, clock: FakeClock) -> Iterator[ResponseCache]:
    c = ResponseCache(cache_dir=tmp_path / "cache", secret=SECRET, clock=clock)
    yield c
    c.close()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# --- basics ----------------------------------------------------------------------------------------


def test_set_then_get_round_trips_with_usage_as_stored(cache: ResponseCache) -> None:
    assert cache.get("k") is None
    assert cache.set("k", resp(), agent="a") is True
    got = cache.get("k")
    assert got == resp()
    assert got is not None and got.usage == Usage(11, 22, 3, 4)


def test_memory_hit_then_disk_hit_are_counted_exactly(tmp_path: Path, clock: FakeClock) -> None:
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock) as first:
        first.set("k", resp(), agent="a")
        assert first.get("k") == resp()
        assert first.get("nope") is None
        s = first.stats()
        assert (s.hits, s.memory_hits, s.disk_hits, s.misses) == (1, 1, 0, 1)
        assert s.hit_rate == 0.5
        assert (s.entries, s.memory_entries) == (1, 1)
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock) as second:
        assert second.get("k") == resp()  # from disk: a new instance has an empty memory tier
        assert second.get("k") == resp()  # now from memory
        s = second.stats()
        assert (s.disk_hits, s.memory_hits, s.misses) == (1, 1, 0)


def test_returned_responses_are_copies(cache: ResponseCache) -> None:
    cache.set("k", resp(), agent="a")
    got = cache.get("k")
    assert got is not None
    got.text = "mutated"
    again = cache.get("k")
    assert again is not None and again.text == "hello"


def test_delete_removes_from_both_tiers(tmp_path: Path, cache: ResponseCache, clock: FakeClock) -> None:
    cache.set("k", resp(), agent="a")
    assert cache.delete("k") is True
    assert cache.get("k") is None
    assert cache.delete("k") is False
    with ResponseCache(cache_dir=tmp_path / "cache", secret=SECRET, clock=clock) as other:
        assert other.get("k") is None


def test_stats_is_a_frozen_snapshot(cache: ResponseCache) -> None:
    s = cache.stats()
    assert isinstance(s, CacheStats)
    with pytest.raises(AttributeError):
        s.hits = 5  # type: ignore[misc]
    assert set(s.to_dict()) >= {
        "entries",
        "bytes",
        "hits",
        "misses",
        "hit_rate",
        "memory_hits",
        "disk_hits",
        "evictions",
        "integrity_failures",
        "errors",
    }


def test_closed_cache_refuses_work(tmp_path: Path) -> None:
    c = ResponseCache(cache_dir=tmp_path / "c", secret=SECRET)
    c.close()
    c.close()  # idempotent
    with pytest.raises(CacheError, match="closed"):
        c.get("k")
    with pytest.raises(CacheError, match="closed"):
        c.set("k", resp(), agent="a")
    assert "closed=True" in repr(c)


def test_disabled_cache_stores_nothing_and_touches_no_disk(tmp_path: Path) -> None:
    c = ResponseCache(cache_dir=tmp_path / "c", enabled=False)
    assert c.set("k", resp(), agent="a") is False
    assert c.get("k") is None
    assert not (tmp_path / "c").exists()
    assert c.stats().misses == 1
    c.close()


def test_seed_keyword_max_size_mb_is_an_alias_for_max_disk_mb(tmp_path: Path) -> None:
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, max_size_mb=0.01, max_memory_mb=0) as c:
        for i in range(20):
            c.set(f"k{i}", resp(n=500), agent="a")
        assert c.stats().bytes <= 0.01 * MB


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ttl_hours": 0},
        {"max_disk_mb": 0},
        {"max_memory_mb": -1},
        {"max_entry_bytes": 0},
        {"agent_quota_mb": 0},
    ],
)
def test_invalid_limits_are_rejected(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, **kwargs)


# --- TTL -------------------------------------------------------------------------------------------


def test_ttl_in_both_tiers_with_an_injected_clock(tmp_path: Path, clock: FakeClock) -> None:
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, ttl_hours=1) as c:
        c.set("k", resp(), agent="a")
        clock.now += 3599
        assert c.get("k") is not None  # memory
        clock.now += 1
        assert c.get("k") is None
    clock.now -= 1
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, ttl_hours=1) as c:
        assert c.get("k") is not None  # disk, one second before expiry
        clock.now += 1
        assert c.get("k") is None  # memory entry carries the same expiry


def test_expired_entries_are_never_served_from_disk_and_are_pruned(tmp_path: Path, clock: FakeClock) -> None:
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, ttl_hours=1) as c:
        c.set("old", resp(), agent="a")
        clock.now += 1800
        c.set("new", resp(), agent="a")
        clock.now += 1800
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, ttl_hours=1) as c:
        assert c.get("old") is None
        assert c.get("new") is not None
        assert c.verify().expired == 1
        assert c.prune() == 1
        assert c.stats().entries == 1


def test_a_shorter_ttl_applies_to_entries_stored_with_a_longer_one(tmp_path: Path, clock: FakeClock) -> None:
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, ttl_hours=48) as c:
        c.set("k", resp(), agent="a")
    clock.now += 2 * 3600
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, ttl_hours=1) as c:
        assert c.get("k") is None
        assert c.prune() == 1


# --- limits ----------------------------------------------------------------------------------------


def test_memory_tier_is_bounded_in_bytes(tmp_path: Path) -> None:
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, max_memory_mb=0.05) as c:
        for i in range(100):
            c.set(f"k{i}", resp(n=200), agent="a")  # ~1 KB each
        s = c.stats()
        assert s.memory_bytes <= 0.05 * MB
        assert 0 < s.memory_entries < 100
        assert s.entries == 100  # the disk keeps them all


def test_memory_tier_can_be_disabled(tmp_path: Path) -> None:
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, max_memory_mb=0) as c:
        c.set("k", resp(), agent="a")
        assert c.get("k") is not None
        assert c.stats().disk_hits == 1
        assert c.stats().memory_entries == 0


def test_disk_limit_evicts_least_recently_used_in_batches(tmp_path: Path, clock: FakeClock) -> None:
    limit_mb = 0.05  # ~51 KB; each entry is ~2.3 KB with overhead
    with ResponseCache(
        cache_dir=tmp_path / "c", secret=SECRET, clock=clock, max_disk_mb=limit_mb, max_memory_mb=0
    ) as c:
        for i in range(18):
            clock.now += 100  # beyond the LRU's 60 s resolution
            assert c.set(f"k{i}", resp(n=400), agent="a")
        assert c.stats().evictions == 0
        clock.now += 100
        assert c.get("k0") is not None  # k0 is now recently used; k1 is the LRU
        for i in range(18, 30):
            clock.now += 100
            c.set(f"k{i}", resp(n=400), agent="a")
        s = c.stats()
        assert s.bytes <= limit_mb * MB
        assert s.evictions > 0
        assert c.get("k0") is not None
        assert c.get("k1") is None
        assert c.get("k29") is not None


def _fill_small_and_big(c: ResponseCache, clock: FakeClock) -> None:
    """3 entries of agent "small", then 40 of agent "big", each a clock second apart."""
    for agent, n in (("small", 3), ("big", 40)):
        for i in range(n):
            clock.now += 1
            c.set(f"{agent}{i}", resp(n=400), agent=agent)


def test_agent_quota_evicts_only_that_agents_entries(tmp_path: Path, clock: FakeClock) -> None:
    with ResponseCache(
        cache_dir=tmp_path / "c", secret=SECRET, clock=clock, agent_quota_mb=0.02, max_memory_mb=0
    ) as c:
        _fill_small_and_big(c, clock)
        usage = {agent: size for agent, _, size in c.agent_usage()}
        assert usage["big"] <= 0.02 * MB
        assert all(c.get(f"small{i}") is not None for i in range(3))
        assert c.get("big39") is not None
        assert c.get("big0") is None
        assert c.stats().evictions > 0


def test_oversize_entries_are_skipped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="claude_force.cache")
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, max_entry_bytes=1000) as c:
        assert c.set("big", resp(n=500), agent="a") is False
        assert c.set("big2", resp(n=500), agent="a") is False
        assert c.get("big") is None
        assert c.set("small", resp(), agent="a") is True
        assert c.stats().oversize_skips == 2
    assert len([m for m in warnings_of(caplog) if "not cached" in m]) == 1


def test_default_entry_limit_is_5_mib(tmp_path: Path) -> None:
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, max_memory_mb=0) as c:
        assert c.set("ok", resp("x", n=4 * MB), agent="a") is True
        assert c.set("big", resp("x", n=5 * MB + 1), agent="a") is False


# --- storage failures degrade ----------------------------------------------------------------------


def test_db_path_that_is_a_directory_degrades_to_misses_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Simulates an unopenable database (tests run as root, so chmod cannot make the disk unwritable).
    caplog.set_level(logging.WARNING, logger="claude_force.cache")
    cache_dir = tmp_path / "c"
    (cache_dir / DB_NAME).mkdir(parents=True)
    cache_dir.chmod(0o700)
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, max_memory_mb=0) as c:
        for _ in range(3):
            assert c.set("k", resp(), agent="a") is False
            assert c.get("k") is None
        s = c.stats()
        assert s.errors >= 6
        assert s.misses == 3
    assert len(warnings_of(caplog)) == 1
    assert "cannot_open" in warnings_of(caplog)[0]


class ReadOnlyStore(SQLiteStore):
    """Opens the database with a ``mode=ro`` URI: how a read-only disk looks to SQLite (root ignores chmod)."""

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )


def test_read_only_database_serves_reads_and_skips_writes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir = tmp_path / "c"
    with ResponseCache(cache_dir=cache_dir, secret=SECRET) as c:
        c.set("k", resp(), agent="a")
    keep = sqlite3.connect(cache_dir / DB_NAME)  # keeps the WAL index alive for the read-only reader
    keep.execute("SELECT 1").fetchone()
    caplog.set_level(logging.WARNING, logger="claude_force.cache")
    try:
        with ResponseCache(
            cache_dir=cache_dir, secret=SECRET, max_memory_mb=0, store_factory=ReadOnlyStore
        ) as c:
            assert c.get("k") == resp()
            assert c.set("k2", resp(), agent="a") is False
            assert c.set("k3", resp(), agent="a") is False
            assert c.delete("k") is False
            assert c.stats().errors == 3
    finally:
        keep.close()
    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert "read_only" in messages[0]


class FullDiskStore(SQLiteStore):
    """Caps the database at its current page count: SQLite then fails writes with SQLITE_FULL."""

    def configure(self, conn: sqlite3.Connection) -> None:
        super().configure(conn)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {max(pages, 1)}")


def test_full_disk_skips_writes_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache_dir = tmp_path / "c"
    with ResponseCache(cache_dir=cache_dir, secret=SECRET) as c:
        c.set("k", resp(), agent="a")
    caplog.set_level(logging.WARNING, logger="claude_force.cache")
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, store_factory=FullDiskStore, max_memory_mb=0) as c:
        assert c.set("big1", resp(n=20_000), agent="a") is False
        assert c.set("big2", resp(n=20_000), agent="a") is False
        assert c.get("k") == resp()
        assert c.stats().errors == 2
    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert "disk_full" in messages[0]


def test_lock_held_past_busy_timeout_skips_the_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir = tmp_path / "c"
    caplog.set_level(logging.WARNING, logger="claude_force.cache")
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, busy_timeout_ms=0, max_memory_mb=0) as c:
        c.set("k", resp(), agent="a")
        other = sqlite3.connect(cache_dir / DB_NAME, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            assert c.set("k2", resp(), agent="a") is False
            assert c.set("k3", resp(), agent="a") is False
            assert c.get("k") == resp()  # WAL readers are not blocked by a writer
            assert c.stats().errors == 2
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert c.set("k2", resp(), agent="a") is True
    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert "locked" in messages[0]


def test_database_file_that_is_not_sqlite_degrades_and_clear_recreates_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir = tmp_path / "c"
    cache_dir.mkdir(mode=0o700)
    db = cache_dir / DB_NAME
    db.write_bytes(b"this is not a database" * 100)
    db.chmod(0o600)
    caplog.set_level(logging.WARNING, logger="claude_force.cache")
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, max_memory_mb=0) as c:
        assert c.get("k") is None
        assert c.set("k", resp(), agent="a") is False
        assert c.stats().errors >= 2
        with pytest.raises(CacheError):
            c.verify()
        assert c.clear() == 0
        assert c.set("k", resp(), agent="a") is True
        assert c.get("k") == resp()
    assert any("corrupt_file" in m for m in warnings_of(caplog))


# --- concurrency -----------------------------------------------------------------------------------


def test_threads_share_the_cache_and_stats_stay_exact(tmp_path: Path) -> None:
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, max_memory_mb=0.02, max_disk_mb=0.2) as c:
        gets = 0
        lock = threading.Lock()
        errors: list[BaseException] = []

        def work(n: int) -> None:
            nonlocal gets
            mine = 0
            try:
                for i in range(300):
                    key = f"k{(i * 7 + n) % 60}"
                    if i % 3 == 0:
                        c.set(key, resp(n=100), agent=f"agent{n % 2}")
                    elif i % 11 == 0:
                        c.delete(key)
                    else:
                        got = c.get(key)
                        assert got is None or got == resp(n=100)
                        mine += 1
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            with lock:
                gets += mine

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        s = c.stats()
        assert s.hits + s.misses == gets
        assert s.integrity_failures == 0
        assert s.errors == 0
        assert s.bytes <= 0.2 * MB
        assert c.verify().clean


async def test_aget_serves_memory_hits_inline_without_a_thread(cache: ResponseCache) -> None:
    cache.set("k", resp(), agent="a")
    assert await cache.aget("k") == resp()
    assert cache._executor is None  # no thread was needed


class ThreadRecordingStore(SQLiteStore):
    """Records which thread each disk read runs on."""

    readers: list[int] = []

    def read(self, key: str) -> Any:
        ThreadRecordingStore.readers.append(threading.get_ident())
        return super().read(key)


async def test_aget_and_aset_use_the_disk_off_the_event_loop(tmp_path: Path) -> None:
    ThreadRecordingStore.readers = []
    async with ResponseCache(
        cache_dir=tmp_path / "c", secret=SECRET, max_memory_mb=0, store_factory=ThreadRecordingStore
    ) as c:
        assert await c.aset("k", resp(), agent="a") is True
        results = await asyncio.gather(*(c.aget("k") for _ in range(20)), c.aget("missing"))
        assert results[:20] == [resp()] * 20
        assert results[20] is None
        # "missing" is ruled out by the presence filter the reader thread loaded: it costs no read at all.
        assert len(ThreadRecordingStore.readers) == 20
        assert threading.get_ident() not in ThreadRecordingStore.readers
        assert c.stats().disk_hits == 20


class GatedStore(SQLiteStore):
    """A store whose writes wait for ``release``, saying when one has begun."""

    writing = threading.Event()
    release = threading.Event()

    def put(self, *args: Any, **kwargs: Any) -> Any:
        GatedStore.writing.set()
        assert GatedStore.release.wait(10), "the test never released the write"
        return super().put(*args, **kwargs)


async def test_aset_fills_the_memory_tier_before_it_awaits(tmp_path: Path) -> None:
    GatedStore.writing, GatedStore.release = threading.Event(), threading.Event()
    async with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, store_factory=GatedStore) as c:
        pending = asyncio.ensure_future(c.aset("k", resp(), agent="a"))
        assert await asyncio.to_thread(GatedStore.writing.wait, 10)
        assert c.contains("k")  # served from memory while the disk write is still blocked
        assert not pending.done()
        GatedStore.release.set()
        assert await pending is True


async def test_aset_of_an_oversize_entry_returns_false(tmp_path: Path) -> None:
    async with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, max_entry_bytes=100) as c:
        assert await c.aset("k", resp(n=100), agent="a") is False
        assert await c.aget("k") is None


async def test_disabled_cache_async(tmp_path: Path) -> None:
    c = ResponseCache(enabled=False)
    assert await c.aset("k", resp(), agent="a") is False
    assert await c.aget("k") is None
    await c.aclose()


def test_memory_hits_never_read_the_disk(tmp_path: Path) -> None:
    ThreadRecordingStore.readers = []
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, store_factory=ThreadRecordingStore) as c:
        c.set("k", resp(), agent="a")
        for _ in range(10):
            assert c.get("k") == resp()
        assert ThreadRecordingStore.readers == []
        assert c.stats().memory_hits == 10


def test_recent_disk_hits_record_no_new_access_time(tmp_path: Path, clock: FakeClock) -> None:
    # LRU resolution is 60 s: re-reading a just-written entry must not queue a write.
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, max_memory_mb=0) as c:
        c.set("k", resp(), agent="a")
        clock.now += 30
        c.get("k")
        assert c._touches == {}
        clock.now += 60
        c.get("k")
        assert c._touches == {"k": clock.now}


def test_write_behind_batches_and_flushes(tmp_path: Path) -> None:
    """store_later fills the memory tier at once and commits to disk in batches; close() loses nothing."""
    from claude_force.cache import ResponseCache
    from claude_force.models import Response, Usage

    secret = "w" * 40
    cache = ResponseCache(cache_dir=tmp_path / "wb", secret=secret)
    for i in range(300):
        assert cache.store_later(f"k{i}", Response(text=f"t{i}", model="m", usage=Usage(1, 1)), agent="a")
    assert cache.contains("k299")  # served from memory before any disk write
    cache.close()  # flushes the queue
    reopened = ResponseCache(cache_dir=tmp_path / "wb", secret=secret, max_memory_mb=0)
    try:
        assert reopened.stats().entries == 300
        hit = reopened.get("k123")
        assert hit is not None and hit.text == "t123"
    finally:
        reopened.close()


def test_prune_enforces_each_agents_quota(tmp_path: Path, clock: FakeClock) -> None:
    # Written without a quota; a later prune under a quota evicts only the agent over it, oldest first.
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, max_memory_mb=0) as c:
        _fill_small_and_big(c, clock)
    with ResponseCache(
        cache_dir=tmp_path / "c", secret=SECRET, clock=clock, agent_quota_mb=0.02, max_memory_mb=0
    ) as c:
        assert c.prune() > 0
        usage = {agent: size for agent, _, size in c.agent_usage()}
        assert usage["big"] <= 0.02 * MB
        assert all(c.get(f"small{i}") is not None for i in range(3))
        assert c.get("big39") is not None and c.get("big0") is None


@pytest.mark.parametrize("count", [1, 3, 4, 21, 64, 85, 150])
def test_put_many_writes_every_row_of_a_batch_whatever_its_size(
    tmp_path: Path, clock: FakeClock, count: int
) -> None:
    """Batches go in as multi-row upserts of 64, 16, 4 and 1 rows: every size must land whole, a key repeated
    in one batch keeps its last value, and the per-agent accounting counts each key once."""
    with ResponseCache(cache_dir=tmp_path / "cache", secret=SECRET, clock=clock, max_memory_mb=0) as cache:
        pending = [cache._admit(f"k{i}", resp(f"t{i}"), f"agent{i % 3}") for i in range(count)]
        again = cache._admit("k0", resp("t0 again"), "agent0")
        cache._write_batch([p for p in (*pending, again) if p is not None])
        for i in range(1, count):
            hit = cache.get(f"k{i}")
            assert hit is not None and hit.text == f"t{i}"
        first = cache.get("k0")
        assert first is not None and first.text == "t0 again"
        assert sum(n for _, n, _ in cache.agent_usage()) == count
        assert cache.verify().ok == count
