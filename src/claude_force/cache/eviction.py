"""The response cache's limits, enforced inside the writing transaction: TTL, per-agent quota, total size.

Eviction is least-recently-used and frees space in batches (down to :data:`EVICT_TO_FRACTION` of a limit, not
just below it), so a full cache does not evict on every write. An agent over its quota loses only its own
entries. Every function returns the keys it removed, for the memory tier to drop as well.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "EVICT_TO_FRACTION",
    "StoreLimits",
    "delete_expired",
    "enforce",
    "enforce_quota",
    "evict",
    "text_column",
]

#: Eviction frees space in batches: down to this fraction of the limit, not just below it.
EVICT_TO_FRACTION: Final = 0.9
_FETCH_BATCH: Final = 256


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """Byte limits enforced on every write: the whole store, and (optionally) each agent's share."""

    max_bytes: int
    agent_quota: int | None = None
    ttl_seconds: float = float("inf")


def text_column(raw: Any, kind: Any = "text") -> Any:
    """A TEXT column fetched as bytes, decoded; left as bytes (so it fails every type check) if not UTF-8."""
    if kind == "text" and isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    return raw


def enforce(conn: sqlite3.Connection, *, agent: str | None, now: float, limits: StoreLimits) -> list[str]:
    evicted = [] if agent is None else enforce_quota(conn, agent=agent, limits=limits)
    total = int(conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM agent_usage").fetchone()[0])
    if total > limits.max_bytes:
        evicted += delete_expired(conn, now=now, ttl_seconds=limits.ttl_seconds)
        total = int(conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM agent_usage").fetchone()[0])
        if total > limits.max_bytes:
            evicted += evict(conn, need=total - int(limits.max_bytes * EVICT_TO_FRACTION), agent=None)
    return evicted


def enforce_quota(conn: sqlite3.Connection, *, agent: str, limits: StoreLimits) -> list[str]:
    if limits.agent_quota is None:
        return []
    row = conn.execute("SELECT bytes FROM agent_usage WHERE agent = ?", (agent,)).fetchone()
    used = int(row[0]) if row else 0
    if used <= limits.agent_quota:
        return []
    # Only this agent's least recently used entries: one agent cannot evict the others.
    return evict(conn, need=used - int(limits.agent_quota * EVICT_TO_FRACTION), agent=agent)


def delete_expired(conn: sqlite3.Connection, *, now: float, ttl_seconds: float) -> list[str]:
    born_before = now - ttl_seconds if ttl_seconds != float("inf") else float("-inf")
    rows = conn.execute(
        "SELECT rowid, CAST(key AS BLOB) FROM entries WHERE expires <= ? OR created <= ?",
        (now, born_before),
    ).fetchall()
    conn.executemany("DELETE FROM entries WHERE rowid = ?", ((r[0],) for r in rows))
    return [key for r in rows if isinstance(key := text_column(r[1]), str)]


def evict(conn: sqlite3.Connection, *, need: int, agent: str | None) -> list[str]:
    select = "SELECT rowid, CAST(key AS BLOB), CAST(size AS INTEGER) FROM entries"
    if agent is None:
        cursor = conn.execute(f"{select} ORDER BY last_access")
    else:
        cursor = conn.execute(f"{select} WHERE agent = ? ORDER BY last_access", (agent,))
    victims: list[tuple[int, Any]] = []
    freed = 0
    try:
        while freed < need and (batch := cursor.fetchmany(_FETCH_BATCH)):
            for rowid, raw, size in batch:
                victims.append((rowid, raw))
                freed += max(0, int(size or 0))
                if freed >= need:
                    break
    finally:
        cursor.close()
    conn.executemany("DELETE FROM entries WHERE rowid = ?", ((r[0],) for r in victims))
    return [key for r in victims if isinstance(key := text_column(r[1]), str)]
