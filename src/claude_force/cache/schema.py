"""The response cache's database layout, created on first use and migrated in place from older versions.

Version 2 (this one): ``entries.id`` is ``INTEGER PRIMARY KEY AUTOINCREMENT``, so row ids only ever grow and
are never handed out again after a delete or a ``clear()``; the presence filter (:mod:`.presence`) pulls in
other processes' rows by ``rowid > last seen`` and relies on it. ``key`` is ``UNIQUE`` (the upsert's
``ON CONFLICT(key)`` target). Version 1 had ``key`` as the primary key and reused row ids; it is migrated in
one ``BEGIN IMMEDIATE`` transaction, keeping every row (they are answers someone paid for) and its row id. Any
other version (a newer claude-force's, say) is dropped and recreated: it is a cache, and guessing at an
unknown layout is worse than starting empty.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from claude_force.cache.stats import error_kind

__all__ = ["SCHEMA_VERSION", "create_schema"]

SCHEMA_VERSION: Final = 2

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
    "CREATE INDEX IF NOT EXISTS entries_expires ON entries(expires)",
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
#: Version 1 -> 2 in place (inside the caller's transaction), keeping every row and its row id. Dropping the
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


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the current layout, or migrate a version-1 one, in one transaction; a no-op when current.

    Raises ``sqlite3.Error`` for the caller to count. A read-only version-1 database is left as it is: every
    query the store makes works on both layouts (they name ``rowid``, never ``id``), so it still serves reads.
    """
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found == SCHEMA_VERSION:
        return  # already there: no write needed, so a read-only database still serves reads
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect only on a new, empty database
    try:
        conn.execute("BEGIN IMMEDIATE")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 1:  # the paid-for answers are kept: migrated in this same transaction
            for statement in _MIGRATE_V1:
                conn.execute(statement)
        elif version not in (0, SCHEMA_VERSION):
            for statement in _DROP:  # an unknown (e.g. newer) layout is dropped, never guessed at
                conn.execute(statement)
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        # Read-only version 1: reads are served, writes fail and are counted; a process that can write migrates.
        if found == 1 and isinstance(exc, sqlite3.OperationalError) and error_kind(exc) == "read_only":
            return
        raise
