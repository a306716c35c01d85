"""Row ids never repeat (the presence filter relies on it), and a database of the first layout is migrated in
place with its rows intact, without changing ``user_version``, so an older claude-force keeps using it. Real SQLite files; a second instance stands in for another process."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from cache_support import Clock, key, resp
from claude_force.cache import ResponseCache
from claude_force.cache.dirs import DB_NAME
from claude_force.cache.envelope import seal
from claude_force.cache.presence import DEFAULT_MAX_AGE
from claude_force.cache.store import SCHEMA_VERSION, SQLiteStore

SECRET = "schema-test-secret-0123456789abcdef-xyz"

#: The version-1 layout exactly as claude-force created it (``key`` was the primary key, no AUTOINCREMENT).
V1_SCHEMA = (
    """CREATE TABLE entries (
        key TEXT PRIMARY KEY NOT NULL,
        agent TEXT NOT NULL,
        version INTEGER NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL,
        last_access REAL NOT NULL,
        size INTEGER NOT NULL,
        payload BLOB NOT NULL,
        mac BLOB NOT NULL)""",
    "CREATE INDEX entries_expires ON entries(expires)",
    "CREATE INDEX entries_last_access ON entries(last_access)",
    "CREATE INDEX entries_agent_last_access ON entries(agent, last_access)",
    """CREATE TABLE agent_usage (
        agent TEXT PRIMARY KEY NOT NULL,
        entries INTEGER NOT NULL,
        bytes INTEGER NOT NULL)""",
    """CREATE TRIGGER entries_insert AFTER INSERT ON entries BEGIN
        INSERT INTO agent_usage(agent, entries, bytes) VALUES (NEW.agent, 1, NEW.size)
        ON CONFLICT(agent) DO UPDATE SET entries = entries + 1, bytes = bytes + NEW.size;
    END""",
    """CREATE TRIGGER entries_delete AFTER DELETE ON entries BEGIN
        UPDATE agent_usage SET entries = entries - 1, bytes = bytes - OLD.size WHERE agent = OLD.agent;
    END""",
    """CREATE TRIGGER entries_update AFTER UPDATE OF agent, size ON entries BEGIN
        UPDATE agent_usage SET entries = entries - 1, bytes = bytes - OLD.size WHERE agent = OLD.agent;
        INSERT INTO agent_usage(agent, entries, bytes) VALUES (NEW.agent, 1, NEW.size)
        ON CONFLICT(agent) DO UPDATE SET entries = entries + 1, bytes = bytes + NEW.size;
    END""",
)


# --- row ids are monotonic, so another process's new rows reach the presence filter ----------------


@pytest.mark.parametrize("how", ["clear", "delete_newest"])
async def test_rows_added_after_a_clear_or_a_delete_of_the_newest_row_are_seen(
    tmp_path: Path, how: str
) -> None:
    clock = Clock()
    a = ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, max_memory_mb=0)
    b = ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, max_memory_mb=0)
    try:
        for i in range(5):
            assert b.set(key(f"old{i}"), resp("old"), agent="x")
        assert await a.aget(key("old4")) is not None  # A's filter is loaded: it has seen row ids 1..5
        if how == "clear":
            b.clear()
        else:
            b.delete(key("old4"))  # the newest row: without AUTOINCREMENT its id was handed out again
        assert b.set(key("new"), resp("new"), agent="x")
        clock.now += DEFAULT_MAX_AGE + 1.0  # A's filter is stale: the next miss syncs rows above the last id
        assert await a.aget(key("absent")) is None  # that sync; the filter is now fresh and trusted
        hit = await a.aget(key("new"))  # so only the filter decides whether the disk is asked
        assert hit is not None and hit.text == "new"
        assert a.stats().errors == 0
    finally:
        a.close()
        b.close()


# --- migration from version 1 ----------------------------------------------------------------------


def make_v1_database(db: Path, entries: list[tuple[str, str, str]], *, created: float) -> None:
    """A version-1 database holding signed rows ``(key, agent, text)``, in that rowid order."""
    db.parent.mkdir(mode=0o700, parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # as claude-force left it
        for statement in V1_SCHEMA:
            conn.execute(statement)
        for k, agent, text in entries:
            payload = orjson.dumps(resp(text).to_json())
            env = seal(
                SECRET.encode(), key=k, agent=agent, created=created, expires=created + 3600, payload=payload
            )
            conn.execute(
                "INSERT INTO entries (key, agent, version, created, expires, last_access, size, payload, mac)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (k, agent, env.version, created, env.expires, created, len(payload) + 300, payload, env.mac),
            )
        conn.execute("PRAGMA user_version = 1")
    finally:
        conn.close()
    db.chmod(0o600)


def table_sql(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
        return {str(name): str(sql) for name, sql in rows}
    finally:
        conn.close()


def test_a_version_1_database_is_migrated_in_place_with_its_rows_intact(tmp_path: Path) -> None:
    clock = Clock()
    cache_dir = tmp_path / "c"
    db = cache_dir / DB_NAME
    entries = [(key(f"k{i}"), "alpha" if i % 2 else "beta", f"answer {i}") for i in range(6)]
    make_v1_database(db, entries, created=clock.now)
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, clock=clock, max_memory_mb=0) as cache:
        for k, _, text in entries:
            hit = cache.get(k)
            assert hit is not None and hit.text == text, k
        report = cache.verify()
        assert (report.checked, report.ok, report.corrupt) == (6, 6, 0)
        usage = {agent: n for agent, n, _ in cache.agent_usage()}  # rebuilt from the rows
        assert usage == {"alpha": 3, "beta": 3}
        # The triggers are back on the new table, and row ids carry on from the old ones without reuse.
        assert cache.delete(key("k5"))
        assert cache.set(key("later"), resp("later"), agent="alpha")
        assert {agent: n for agent, n, _ in cache.agent_usage()} == {"alpha": 3, "beta": 3}
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1
        ids = dict(conn.execute("SELECT key, id FROM entries").fetchall())
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert [ids[k] for k, _, _ in entries[:5]] == [1, 2, 3, 4, 5]  # old rowids kept, in order
    assert ids[key("later")] == 7  # not 6: that id belonged to the deleted row
    sql = table_sql(db)
    assert "AUTOINCREMENT" in sql["entries"]
    assert {"entries_last_access", "entries_agent_last_access"} <= set(sql)
    assert "entries_expires" not in sql  # never used by a query; it only cost every insert
    assert {"entries_insert", "entries_delete", "entries_update"} <= set(sql)


def test_a_current_database_made_by_an_earlier_release_loses_its_unused_expires_index(tmp_path: Path) -> None:
    cache_dir = tmp_path / "c"
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, max_memory_mb=0) as cache:
        assert cache.set(key("k"), resp("kept"), agent="a")
    conn = sqlite3.connect(cache_dir / DB_NAME)
    conn.execute("CREATE INDEX entries_expires ON entries(expires)")  # as earlier releases made it
    conn.commit()
    conn.close()
    assert "entries_expires" in table_sql(cache_dir / DB_NAME)
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, max_memory_mb=0) as cache:
        hit = cache.get(key("k"))
        assert hit is not None and hit.text == "kept"
    assert "entries_expires" not in table_sql(cache_dir / DB_NAME)


def test_an_unknown_schema_version_is_still_dropped(tmp_path: Path) -> None:
    cache_dir = tmp_path / "c"
    make_v1_database(cache_dir / DB_NAME, [(key("k"), "a", "t")], created=Clock().now)
    conn = sqlite3.connect(cache_dir / DB_NAME, isolation_level=None)
    conn.execute("PRAGMA user_version = 99")  # e.g. written by a newer claude-force
    conn.close()
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, clock=Clock()) as cache:
        assert cache.stats().entries == 0
        assert cache.set(key("k2"), resp("t"), agent="a")
        assert cache.get(key("k2")) is not None


class ReadOnlyStore(SQLiteStore):
    """Opens the database with a ``mode=ro`` URI: how a read-only disk looks to SQLite (root ignores chmod)."""

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )


def test_a_read_only_version_1_database_still_serves_reads(tmp_path: Path) -> None:
    clock = Clock()
    cache_dir = tmp_path / "c"
    make_v1_database(cache_dir / DB_NAME, [(key("k"), "a", "kept")], created=clock.now)
    keep = sqlite3.connect(cache_dir / DB_NAME)  # keeps the WAL index alive for the read-only reader
    try:
        keep.execute("SELECT 1").fetchone()
        with ResponseCache(
            cache_dir=cache_dir, secret=SECRET, clock=clock, max_memory_mb=0, store_factory=ReadOnlyStore
        ) as cache:
            hit = cache.get(key("k"))
            assert hit is not None and hit.text == "kept"
            assert cache.set(key("k2"), resp("t"), agent="a") is False  # the write fails and is counted
            assert cache.stats().errors == 1
        assert keep.execute("PRAGMA user_version").fetchone()[0] == 1  # left for a process that can write
    finally:
        keep.close()


#: What claude-force before the migration ran against its database (its store's statements, verbatim).
OLD_UPSERT = """INSERT INTO entries
    (version, key, agent, created, expires, payload, mac, last_access, size)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(key) DO UPDATE SET version = excluded.version, agent = excluded.agent,
        created = excluded.created, expires = excluded.expires, payload = excluded.payload,
        mac = excluded.mac, last_access = excluded.last_access, size = excluded.size"""
OLD_READ = (
    "SELECT version, key, agent, created, expires, payload, mac, last_access FROM entries WHERE key = ?"
)


def test_an_older_claude_force_keeps_using_a_migrated_database(tmp_path: Path) -> None:
    # The older code checks only user_version (1 = current for it): it must neither drop the migrated database
    # nor fail on its queries, so two versions sharing a directory do not wipe each other's entries.
    clock = Clock()
    cache_dir = tmp_path / "c"
    db = cache_dir / DB_NAME
    make_v1_database(db, [(key("k"), "a", "kept")], created=clock.now)
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, clock=clock, max_memory_mb=0) as cache:
        assert cache.get(key("k")) is not None  # opened, so migrated
    assert "AUTOINCREMENT" in table_sql(db)["entries"]
    old = sqlite3.connect(db, isolation_level=None)
    try:
        assert old.execute("PRAGMA user_version").fetchone()[0] == 1  # what the older code checks
        assert old.execute(OLD_READ, (key("k"),)).fetchone()[1] == key("k")
        payload = orjson.dumps(resp("from the old version").to_json())
        env = seal(
            SECRET.encode(),
            key=key("old"),
            agent="a",
            created=clock.now,
            expires=clock.now + 60,
            payload=payload,
        )
        row = (
            env.version,
            env.key,
            env.agent,
            env.created,
            env.expires,
            env.payload,
            env.mac,
            clock.now,
            400,
        )
        old.execute(OLD_UPSERT, row)
        old.execute(OLD_UPSERT, row)  # its upsert still finds the key's conflict target
    finally:
        old.close()
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, clock=clock, max_memory_mb=0) as cache:
        hit = cache.get(key("old"))
        assert hit is not None and hit.text == "from the old version"
        assert cache.get(key("k")) is not None and cache.stats().entries == 2


class FullDiskStore(SQLiteStore):
    """A disk with no room to grow the file (``max_page_count``): the migration's copy cannot be written."""

    def configure(self, conn: sqlite3.Connection) -> None:
        super().configure(conn)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {int(pages)}")


def test_a_migration_that_cannot_run_keeps_serving_the_old_layout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    cache_dir = tmp_path / "c"
    entries = [(key(f"k{i}"), "a", f"answer {i}") for i in range(50)]
    make_v1_database(cache_dir / DB_NAME, entries, created=clock.now)
    with (
        caplog.at_level("WARNING", logger="claude_force.cache"),
        ResponseCache(
            cache_dir=cache_dir, secret=SECRET, clock=clock, max_memory_mb=0, store_factory=FullDiskStore
        ) as cache,
    ):
        for k, _, text in entries:
            hit = cache.get(k)
            assert hit is not None and hit.text == text
        assert cache.stats().errors == 0  # reads were served, not failed
    assert any("could not migrate" in r.getMessage() for r in caplog.records)
    assert "AUTOINCREMENT" not in table_sql(cache_dir / DB_NAME)["entries"]  # untouched: rolled back whole
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, clock=clock, max_memory_mb=0) as cache:
        assert cache.get(key("k0")) is not None  # the next process, with room, migrates
    assert "AUTOINCREMENT" in table_sql(cache_dir / DB_NAME)["entries"]
