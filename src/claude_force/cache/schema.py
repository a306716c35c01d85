"""The response cache's database layout, created on first use and migrated in place from the older layout.

The current layout has ``entries.id INTEGER PRIMARY KEY AUTOINCREMENT``, so row ids only ever grow and are
never handed out again after a delete or a ``clear()``: the presence filter (:mod:`.presence`) pulls in other
processes' rows by ``rowid > last seen`` and relies on it. ``key`` is ``UNIQUE`` (the upsert's ``ON
CONFLICT(key)`` target). The first layout had ``key`` as the primary key and reused row ids; it is migrated in
one ``BEGIN IMMEDIATE`` transaction, keeping every row (they are answers someone paid for) and its row id.

Both layouts carry ``user_version`` 1, and every query of either claude-force works on both (they name
``rowid``, never ``id``). So an older claude-force sharing the directory, or one gone back to, keeps using the
migrated database instead of dropping it as an unknown version; the layout is told apart by its
``AUTOINCREMENT``. A migration that cannot run (a read-only or full disk, a lock held too long) leaves the old
layout serving reads, and is tried again by the next process. Any other ``user_version`` (a future layout) is
dropped and recreated: it is a cache, and guessing at an unknown layout is worse than starting empty.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from typing import Final

from claude_force.cache.stats import error_kind

log = logging.getLogger("claude_force.cache")

__all__ = ["SCHEMA_VERSION", "create_schema", "monotonic_ids"]

SCHEMA_VERSION: Final = 1

_ENTRIES_TABLE: Final = """CREATE TABLE IF NOT EXISTS {name} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        agent TEXT NOT NULL,
        version INTEGER NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL,
        last_access REAL NOT NULL,
        size INTEGER NOT NULL,
        payload BLOB NOT NULL,
        mac BLOB NOT NULL)"""
_SCHEMA: Final = (
    _ENTRIES_TABLE.format(name="entries"),
    "CREATE INDEX IF NOT EXISTS entries_last_access ON entries(last_access)",
    "CREATE INDEX IF NOT EXISTS entries_agent_last_access ON entries(agent, last_access)",
    """CREATE TABLE IF NOT EXISTS agent_usage (
        agent TEXT PRIMARY KEY NOT NULL,
        entries INTEGER NOT NULL,
        bytes INTEGER NOT NULL)""",
    """CREATE TRIGGER IF NOT EXISTS entries_insert AFTER INSERT ON entries BEGIN
        INSERT INTO agent_usage(agent, entries, bytes) VALUES (NEW.agent, 1, NEW.size)
        ON CONFLICT(agent) DO UPDATE SET entries = entries + 1, bytes = bytes + NEW.size;
    END""",
    """CREATE TRIGGER IF NOT EXISTS entries_delete AFTER DELETE ON entries BEGIN
        UPDATE agent_usage SET entries = entries - 1, bytes = bytes - OLD.size WHERE agent = OLD.agent;
    END""",
    """CREATE TRIGGER IF NOT EXISTS entries_update AFTER UPDATE OF agent, size ON entries BEGIN
        UPDATE agent_usage SET entries = entries - 1, bytes = bytes - OLD.size WHERE agent = OLD.agent;
        INSERT INTO agent_usage(agent, entries, bytes) VALUES (NEW.agent, 1, NEW.size)
        ON CONFLICT(agent) DO UPDATE SET entries = entries + 1, bytes = bytes + NEW.size;
    END""",
)
#: The first layout -> the current one in place (inside the caller's transaction), keeping every row and its row id. Dropping the
#: old table drops its indexes and triggers; _SCHEMA then recreates them on the new one.
_MIGRATE_V1: Final = (
    _ENTRIES_TABLE.format(name="entries_v2"),
    "INSERT INTO entries_v2 (id, key, agent, version, created, expires, last_access, size, payload, mac)"
    " SELECT rowid, key, agent, version, created, expires, last_access, size, payload, mac"
    " FROM entries ORDER BY rowid",
    "DROP TABLE entries",
    "ALTER TABLE entries_v2 RENAME TO entries",
    "DELETE FROM agent_usage",
    "INSERT INTO agent_usage(agent, entries, bytes)"
    " SELECT agent, COUNT(*), COALESCE(SUM(size), 0) FROM entries GROUP BY agent",
)
_DROP: Final = (
    "DROP TRIGGER IF EXISTS entries_insert",
    "DROP TRIGGER IF EXISTS entries_delete",
    "DROP TRIGGER IF EXISTS entries_update",
    "DROP TABLE IF EXISTS entries",
    "DROP TABLE IF EXISTS agent_usage",
)


def monotonic_ids(conn: sqlite3.Connection) -> bool:
    """True if ``entries`` has the current layout (row ids that never repeat)."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'entries'").fetchone()
    return row is not None and "AUTOINCREMENT" in str(row[0]).upper()


#: ``entries_expires``, created by earlier releases: no query uses it (the expiry scan tests ``expires`` or
#: ``created``, so it reads the table), and it cost every insert an index update.
_DROP_UNUSED_INDEX: Final = "DROP INDEX IF EXISTS entries_expires"


def _drop_unused_index(conn: sqlite3.Connection) -> None:
    """Drop the unused index from a current database if it has one. Best effort: a read-only or busy database
    keeps it, which only costs its writers that index update."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'entries_expires'"
    ).fetchone()
    if row is not None:
        with contextlib.suppress(sqlite3.Error):
            conn.execute(_DROP_UNUSED_INDEX)


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the current layout, or migrate the first one, in one transaction; when current, only the unused
    index of earlier releases is dropped (if there).

    Raises ``sqlite3.Error`` for the caller to count, except when an existing first-layout database cannot be
    migrated: it then keeps serving as it is (see the module docstring), and a warning says why.
    """
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found == SCHEMA_VERSION and monotonic_ids(conn):
        _drop_unused_index(conn)
        return  # already there: no other write needed, so a read-only database still serves reads
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect only on a new, empty database
    try:
        conn.execute("BEGIN IMMEDIATE")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION and not monotonic_ids(conn):  # the paid-for answers are kept
            for statement in _MIGRATE_V1:
                conn.execute(statement)
        elif version not in (0, SCHEMA_VERSION):
            for statement in _DROP:  # an unknown (e.g. newer) layout is dropped, never guessed at
                conn.execute(statement)
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(_DROP_UNUSED_INDEX)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if found == SCHEMA_VERSION and isinstance(exc, sqlite3.OperationalError):
            kind = error_kind(exc)
            log.log(
                logging.DEBUG if kind == "read_only" else logging.WARNING,
                "response cache: could not migrate the database to monotonic row ids (%s); serving it as it "
                "is, and another process's entries may be missed after a clear until a later run migrates it",
                kind,
            )
            return
        raise
