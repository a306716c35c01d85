"""Storage failures are counted and degrade to misses; delete/clear are final; calls racing close() are refused;
undecodable rows are integrity failures. Real SQLite files throughout."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from cache_support import key, resp
from claude_force.cache import ResponseCache
from claude_force.cache.dirs import DB_NAME, check_db_file
from claude_force.cache.writer import Pending
from claude_force.errors import CacheError
from claude_force.models import Response

SECRET = "degrade-test-secret-0123456789abcdef-x"


def rows_on_disk(cache_dir: Path) -> int:
    conn = sqlite3.connect(cache_dir / DB_NAME)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
    finally:
        conn.close()


def worker_threads(name: str) -> int:
    return sum(1 for t in threading.enumerate() if t.name == name and t.is_alive())


# --- OSError from the file checks is a counted storage failure -------------------------------------


async def test_cache_dir_replaced_by_a_file_degrades_on_the_reader_and_writer_threads(tmp_path: Path) -> None:
    # A real condition: the threads open their own connections lazily, after the directory is gone.
    cache_dir = tmp_path / "c"
    cache = ResponseCache(cache_dir=cache_dir, secret=SECRET, max_memory_mb=0)
    try:
        shutil.rmtree(cache_dir)
        cache_dir.write_bytes(b"")  # every path below it now fails with ENOTDIR
        assert await cache.aget(key("k")) is None  # reader thread: a miss, not an exception
        after_read = cache.stats().errors
        assert after_read >= 1
        assert cache.store_later(key("k"), resp(), agent="a")  # queued; the writer thread cannot open
        cache.flush()
        assert cache.stats().errors > after_read  # the lost batch is counted
    finally:
        cache.close()


def test_disk_full_while_recreating_the_database_file_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Fault injection: a full disk cannot be produced for real here, so os.open fails with ENOSPC when it is
    # asked to create a file (the database vanished, e.g. removed by a tmp reaper).
    cache_dir = tmp_path / "c"
    ResponseCache(cache_dir=cache_dir, secret=SECRET).close()
    for f in cache_dir.iterdir():
        f.unlink()
    real_open = os.open

    def full_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", full_open)  # create_db_file uses os.open
    caplog.set_level(logging.WARNING, logger="claude_force.cache")
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, max_memory_mb=0) as cache:  # does not raise
        assert cache.get(key("k")) is None
        assert cache.set(key("k"), resp(), agent="a") is False
        # the constructor's open, the read, the write, and stats() itself (it reads the store's size)
        assert cache.stats().errors == 4
    assert ["disk_full" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [True]


def test_failed_chmod_on_a_read_only_filesystem_does_not_fail_the_constructor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: the tests run as root, and a read-only mount cannot be made here, so os.chmod raises
    # EROFS (as it does for a cache dir shipped in a read-only image). Tightening is all it would have done.
    cache_dir = tmp_path / "c"
    with ResponseCache(cache_dir=cache_dir, secret=SECRET) as cache:
        assert cache.set(key("k"), resp("kept"), agent="a")
    os.chmod(cache_dir / DB_NAME, 0o644)

    def ro_chmod(path: Any, mode: int, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(os, "chmod", ro_chmod)  # as check_db_file calls it
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, max_memory_mb=0) as cache:
        hit = cache.get(key("k"))
        assert hit is not None and hit.text == "kept"
        assert cache.stats().errors == 0


def test_a_read_only_database_file_is_tightened_without_being_made_writable(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    db.write_bytes(b"")
    os.chmod(db, 0o444)
    check_db_file(db)
    assert stat.S_IMODE(os.lstat(db).st_mode) == 0o400


# --- delete and clear are not undone by queued writes ----------------------------------------------


def test_delete_and_clear_are_not_undone_by_writes_still_queued(tmp_path: Path) -> None:
    cache_dir = tmp_path / "c"
    with ResponseCache(cache_dir=cache_dir, secret=SECRET) as cache:
        assert cache.store_later(key("a"), resp(), agent="x")  # queued: the writer is still gathering
        assert cache.delete(key("a")) is True
        assert cache.store_later(key("b"), resp(), agent="x")
        assert cache.clear() == 1  # b landed first, then was cleared
        cache.flush()
        assert cache.get(key("a")) is None
        assert cache.get(key("b")) is None
        assert cache.stats().entries == 0
    assert rows_on_disk(cache_dir) == 0


def test_delete_many_returns_the_rows_deleted_not_the_trigger_changes(tmp_path: Path) -> None:
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET) as cache:
        for name in ("a", "b", "c"):
            assert cache.set(key(name), resp(), agent="x")
        store = cache._store
        assert store is not None
        assert store.delete_many([key("a"), key("b"), key("missing")]) == 2
        assert cache.stats().entries == 1


# --- calls racing close() --------------------------------------------------------------------------


def close_from_another_thread(cache: ResponseCache) -> None:
    """What aclose() does: close() on another thread, landing between a call's open check and its thread use."""
    t = threading.Thread(target=cache.close)
    t.start()
    t.join()


class ClosedWhileAdmitting(ResponseCache):
    __slots__ = ()

    def _admit(self, key: str, response: Response, agent: str) -> Pending | None:
        pending = super()._admit(key, response, agent)
        close_from_another_thread(self)
        return pending


class ClosedWhileLooking(ResponseCache):
    __slots__ = ()

    def _memory_get(self, key: str, now: float) -> Response | None:
        hit = super()._memory_get(key, now)
        close_from_another_thread(self)
        return hit


def test_store_later_racing_close_is_refused_and_starts_no_thread(tmp_path: Path) -> None:
    before = worker_threads("claude-force-cache-writer")
    cache = ClosedWhileAdmitting(cache_dir=tmp_path / "c", secret=SECRET)
    assert cache.store_later(key("a"), resp(), agent="x") is False  # not True-and-lost
    assert cache._writer is None
    assert worker_threads("claude-force-cache-writer") == before


async def test_aget_and_aset_racing_close_raise_the_closed_error_and_start_no_thread(tmp_path: Path) -> None:
    before = worker_threads("claude-force-cache-reader")
    cache = ClosedWhileLooking(cache_dir=tmp_path / "c", secret=SECRET)
    with pytest.raises(CacheError, match="closed"):
        await cache.aget(key("a"))
    assert cache._reader is None
    assert worker_threads("claude-force-cache-reader") == before

    writer = ClosedWhileAdmitting(cache_dir=tmp_path / "c2", secret=SECRET)
    with pytest.raises(CacheError, match="closed"):
        await writer.aset(key("a"), resp(), agent="x")
    assert writer._executor is None


# --- undecodable text ------------------------------------------------------------------------------


def test_an_agent_that_is_not_utf8_is_an_integrity_failure_and_is_deleted(tmp_path: Path) -> None:
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, max_memory_mb=0) as cache:
        assert cache.set(key("a"), resp(), agent="x")
        assert cache.set(key("b"), resp(), agent="x")
        store = cache._store
        assert store is not None
        store.connection().execute(
            "UPDATE entries SET agent = CAST(x'ff' AS TEXT) WHERE key = ?", (key("a"),)
        )
        for _ in range(3):
            assert cache.get(key("a")) is None
        s = cache.stats()
        assert (s.errors, s.integrity_failures, s.entries) == (0, 1, 1)  # deleted at the first lookup
        assert cache.get(key("b")) is not None


async def test_a_key_that_is_not_utf8_does_not_break_lookups_and_verify_deletes_it(tmp_path: Path) -> None:
    cache_dir = tmp_path / "c"
    with ResponseCache(cache_dir=cache_dir, secret=SECRET) as cache:
        assert cache.set(key("a"), resp(), agent="x")
        assert cache.set(key("b"), resp(), agent="x")
        store = cache._store
        assert store is not None
        store.connection().execute(
            "UPDATE entries SET key = CAST(x'ff' AS TEXT), agent = CAST(x'fe' AS TEXT) WHERE key = ?",
            (key("a"),),
        )
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, max_memory_mb=0) as cache:
        assert await cache.aget(key("zzz")) is None  # loads the presence filter over every key on disk
        assert await cache.aget(key("b")) is not None
        assert cache.stats().errors == 0
        report = cache.verify()
        assert (report.checked, report.ok, report.corrupt) == (2, 1, 1)
        assert [agent for agent, _, _ in cache.agent_usage()] == ["x"]
        assert cache.verify().clean
    assert rows_on_disk(cache_dir) == 1
