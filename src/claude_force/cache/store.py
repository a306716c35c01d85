"""The SQLite store under the response cache: one database in WAL mode, one connection per thread.

Writes run in ``BEGIN IMMEDIATE`` transactions, so a process killed mid-write leaves either the old row or
the new one, never half of each. Triggers keep a per-agent ``(entries, bytes)`` tally in the same
transactions, so limits are checked without scanning the table. Rows are signed envelopes (see
:mod:`.envelope`); this module stores and evicts them but never trusts or parses their payloads.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from claude_force.cache.dirs import DB_SIDE_SUFFIXES, check_db_file, create_db_file
from claude_force.cache.envelope import Envelope
from claude_force.cache.eviction import StoreLimits, delete_expired, enforce, enforce_quota, text_column
from claude_force.cache.schema import SCHEMA_VERSION, create_schema

__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "SCHEMA_VERSION", "SQLiteStore", "StoreLimits"]

DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
_FETCH_BATCH: Final = 256
#: Connections a forked child inherited: kept open and unused (see SQLiteStore._forget_inherited).
_INHERITED: list[sqlite3.Connection] = []

# TEXT columns are fetched as bytes (with their type) and decoded here: a row holding invalid UTF-8 must fail its
# integrity check and be deleted, not make every fetch raise (sqlite3 decodes TEXT strictly).
_SELECT_ROW: Final = (
    "SELECT rowid, version, CAST(key AS BLOB), typeof(key), CAST(agent AS BLOB), typeof(agent),"
    " created, expires, payload, mac FROM entries"
)
_SELECT_READ: Final = (
    "SELECT version, key, CAST(agent AS BLOB), typeof(agent), created, expires, payload, mac, last_access"
    " FROM entries WHERE key = ?"
)

_UPSERT: Final = """INSERT INTO entries
    (version, key, agent, created, expires, payload, mac, last_access, size)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(key) DO UPDATE SET version = excluded.version, agent = excluded.agent,
        created = excluded.created, expires = excluded.expires, payload = excluded.payload,
        mac = excluded.mac, last_access = excluded.last_access, size = excluded.size"""

_UPSERT_COLUMNS: Final = 9
#: Rows per multi-row upsert in ``put_many``, largest first (64 rows are 576 parameters, under the 999 that
#: SQLite before 3.32 allows).
_UPSERT_SIZES: Final = (64, 16, 4, 1)
_UPSERT_ROWS: Final = {
    n: _UPSERT.replace(
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", "VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * n)
    )
    for n in _UPSERT_SIZES
}


class SQLiteStore:
    """Signed rows in one SQLite file; safe from many threads (one connection each) and many processes.

    Example::

        store = SQLiteStore(path=cache_dir / "cache.sqlite3")
        evicted = store.put(envelope, size=n, now=t, limits=StoreLimits(max_bytes=2**30))
        row = store.read(envelope.key)
    """

    __slots__ = ("_busy_ms", "_closed", "_conns", "_local", "_lock", "_pid", "_ready", "path")

    def __init__(self, *, path: Path, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        if busy_timeout_ms < 0:
            raise ValueError("busy_timeout_ms must be >= 0")
        self.path = path
        self._busy_ms = busy_timeout_ms
        self._local = threading.local()
        # (owning thread, connection): a dead thread's connection is closed when the next one is opened.
        self._conns: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._lock = threading.Lock()
        self._ready = False
        self._closed = False
        self._pid = os.getpid()

    # --- connections -----------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the schema created) on first use."""
        if self._pid != os.getpid():
            self._forget_inherited()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise sqlite3.ProgrammingError("the store is closed")
        conn = self._open()
        self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            check_db_file(self.path)
            create_db_file(self.path)
        except OSError as exc:  # counted and degraded like any storage failure (UnsafeCacheDir is not one)
            raise sqlite3.OperationalError(f"unable to open database file: {exc.strerror or exc}") from exc
        conn = self.connect()
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_ms)}")
            self.configure(conn)
            if not self._ready:
                create_schema(conn)
                self._ready = True
        except BaseException:
            conn.close()
            raise
        me = threading.current_thread()
        with self._lock:
            alive: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
            for ref, other in self._conns:
                thread = ref()
                if thread is None or not thread.is_alive():
                    with contextlib.suppress(sqlite3.Error):
                        other.close()
                else:
                    alive.append((ref, other))
            alive.append((weakref.ref(me), conn))
            self._conns = alive
        return conn

    def connect(self) -> sqlite3.Connection:
        """A new connection in autocommit mode. Tests override this (``mode=ro``) to simulate a read-only disk."""
        # check_same_thread=False only so close() can close every thread's connection at shutdown; in normal
        # use each connection stays on its own thread (threading.local).
        return sqlite3.connect(
            str(self.path),
            timeout=self._busy_ms / 1000.0,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=64,
        )

    def configure(self, conn: sqlite3.Connection) -> None:
        """Per-connection pragmas. Tests override this (``max_page_count``) to simulate a full disk."""
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA journal_size_limit = 67108864")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    # --- reads -----------------------------------------------------------------------------------

    def read(self, key: str) -> tuple[Any, ...] | None:
        """The raw ``(version, key, agent, created, expires, payload, mac, last_access)`` row, unverified.

        ``agent`` is bytes if the column is not valid UTF-8 (``key`` matched ``key``, so it is).
        """
        row = self.connection().execute(_SELECT_READ, (key,)).fetchone()
        if row is None:
            return None
        version, key_, agent, agent_type, *rest = row
        return (version, key_, text_column(agent, agent_type), *rest)

    def rows(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """``(rowid, (version, key, agent, created, expires, payload, mac))`` for every raw row, in batches (for
        ``verify``); ``key``/``agent`` are bytes where they are not valid UTF-8 text."""
        cursor = self.connection().execute(_SELECT_ROW)
        try:
            while batch := cursor.fetchmany(_FETCH_BATCH):
                for rowid, version, key, key_type, agent, agent_type, *rest in batch:
                    yield (
                        int(rowid),
                        (version, text_column(key, key_type), text_column(agent, agent_type), *rest),
                    )
        finally:
            cursor.close()

    def data_version(self) -> int:
        """Changes whenever another connection (another thread or process) commits to the database."""
        return int(self.connection().execute("PRAGMA data_version").fetchone()[0])

    def keys_after(self, rowid: int) -> Iterator[tuple[int, str]]:
        """``(rowid, key)`` of the rows inserted after ``rowid``, in order, streamed (row ids never repeat)."""
        cursor = self.connection().execute(
            "SELECT rowid, CAST(key AS BLOB) FROM entries WHERE rowid > ? ORDER BY rowid", (rowid,)
        )
        for row_id, raw in cursor:
            key = text_column(raw)
            if isinstance(key, str):  # an undecodable key can never match a lookup
                yield int(row_id), key

    def totals(self) -> tuple[int, int]:
        """``(entries, bytes)`` over all agents."""
        row = (
            self.connection()
            .execute("SELECT COALESCE(SUM(entries), 0), COALESCE(SUM(bytes), 0) FROM agent_usage")
            .fetchone()
        )
        return int(row[0]), int(row[1])

    def agent_usage(self) -> list[tuple[str, int, int]]:
        """``(agent, entries, bytes)`` for every agent with entries, largest first."""
        rows = self.connection().execute(
            "SELECT CAST(agent AS BLOB), entries, bytes FROM agent_usage WHERE entries > 0"
            " ORDER BY bytes DESC, agent"
        )
        return [(bytes(a).decode("utf-8", "replace"), int(e), int(b)) for a, e, b in rows]

    # --- writes ----------------------------------------------------------------------------------

    def put(
        self,
        envelope: Envelope,
        *,
        size: int,
        now: float,
        limits: StoreLimits,
        touches: Iterable[tuple[float, str]] = (),
    ) -> list[str]:
        """Upsert one entry, apply pending recency updates, enforce limits; return the evicted keys."""
        e = envelope
        with self._write() as conn:
            conn.executemany("UPDATE entries SET last_access = max(last_access, ?) WHERE key = ?", touches)
            conn.execute(
                _UPSERT, (e.version, e.key, e.agent, e.created, e.expires, e.payload, e.mac, now, size)
            )
            return enforce(conn, agent=e.agent, now=now, limits=limits)

    def put_many(
        self,
        entries: Iterable[tuple[Envelope, int]],
        *,
        now: float,
        limits: StoreLimits,
        touches: Iterable[tuple[float, str]] = (),
    ) -> list[str]:
        """Upsert a batch of entries in one transaction, then enforce the limits once per agent touched.

        The rows go in as multi-row ``INSERT`` statements of fixed sizes (so each stays prepared): one
        ``sqlite3_step`` per statement instead of one per row, which is also one GIL release instead of one per
        row, so the event loop's thread is interrupted less often.
        """
        agents: dict[str, None] = {}
        params: list[Any] = []
        for e, size in entries:
            agents.setdefault(e.agent)
            params += (e.version, e.key, e.agent, e.created, e.expires, e.payload, e.mac, now, size)
        with self._write() as conn:
            conn.executemany("UPDATE entries SET last_access = max(last_access, ?) WHERE key = ?", touches)
            done, total = 0, len(params) // _UPSERT_COLUMNS
            while done < total:
                n = next(size for size in _UPSERT_SIZES if size <= total - done)
                conn.execute(_UPSERT_ROWS[n], params[done * _UPSERT_COLUMNS : (done + n) * _UPSERT_COLUMNS])
                done += n
            evicted: list[str] = []
            for agent in agents:
                evicted += enforce(conn, agent=agent, now=now, limits=limits)
            return evicted

    def touch(self, touches: Iterable[tuple[float, str]]) -> None:
        """Record recency of reads (batched by the caller, so a hit does not cost a write)."""
        with self._write() as conn:
            conn.executemany("UPDATE entries SET last_access = max(last_access, ?) WHERE key = ?", touches)

    def delete(self, key: str, *, mac: Any = None) -> bool:
        """Delete one entry (only if its MAC is still ``mac``, when given, so a fresh rewrite survives)."""
        with self._write() as conn:
            if mac is None:
                cursor = conn.execute("DELETE FROM entries WHERE key = ?", (key,))
            else:
                cursor = conn.execute("DELETE FROM entries WHERE key = ? AND mac = ?", (key, mac))
            return cursor.rowcount > 0

    def delete_many(self, keys: Iterable[Any]) -> int:
        """Delete the entries with these keys; returns the rows deleted (not counting the triggers' changes)."""
        with self._write() as conn:
            return max(
                0, conn.executemany("DELETE FROM entries WHERE key = ?", ((k,) for k in keys)).rowcount
            )

    def delete_rows(self, rows: Iterable[tuple[int, Any]]) -> int:
        """Delete rows by ``(rowid, mac)``, each only if its MAC is unchanged (a fresh rewrite keeps its rowid)."""
        with self._write() as conn:
            cursor = conn.executemany("DELETE FROM entries WHERE rowid = ? AND mac IS ?", rows)
            return max(0, cursor.rowcount)

    def clear(self) -> int:
        with self._write() as conn:
            removed = int(conn.execute("DELETE FROM entries").rowcount)
            conn.execute("DELETE FROM agent_usage")
        self._vacuum()
        return removed

    def prune(self, *, now: float, limits: StoreLimits) -> list[str]:
        """Remove expired entries, then evict down to the limits (each agent's quota, then the total); return the
        removed keys."""
        with self._write() as conn:
            removed = delete_expired(conn, now=now, ttl_seconds=limits.ttl_seconds)
            if limits.agent_quota is not None:
                over = conn.execute(
                    "SELECT agent FROM agent_usage WHERE bytes > ?", (limits.agent_quota,)
                ).fetchall()
                for (agent,) in over:
                    removed += enforce_quota(conn, agent=agent, limits=limits)
            removed += enforce(conn, agent=None, now=now, limits=limits)
        self._vacuum()
        return removed

    def _vacuum(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.connection().execute("PRAGMA incremental_vacuum")

    # --- lifecycle -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Delete the database files and start afresh (for a database file that is not SQLite at all)."""
        self.close()
        for candidate in (self.path, *(Path(f"{self.path}{s}") for s in DB_SIDE_SUFFIXES)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(candidate)
        self._closed = False
        self._ready = False
        self._local = threading.local()

    def _forget_inherited(self) -> None:
        """In a forked child: never use the parent's connections, and never close them either (SQLite must
        not carry a connection across fork(); closing one in the child could drop this process's own locks on
        the file), so they are kept referenced, unused, until the process exits."""
        _INHERITED.extend(conn for _, conn in self._conns)
        self._local = threading.local()
        self._conns = []
        self._lock = threading.Lock()  # it may have been held by another thread at the fork
        self._pid = os.getpid()

    def close(self) -> None:
        if self._pid != os.getpid():
            self._forget_inherited()
        with self._lock:
            conns, self._conns = self._conns, []
            self._closed = True
        for _, conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def __repr__(self) -> str:
        return (
            f"SQLiteStore(path={str(self.path)!r}, connections={len(self._conns)}, "
            f"busy_timeout_ms={self._busy_ms}, closed={self._closed})"
        )
