"""Maintenance operations of the response cache: ``clear``, ``prune``, ``verify`` and per-agent usage.

These are explicit user actions (the ``claude-force cache`` commands), so unlike ``get``/``set`` a storage
failure raises :class:`~claude_force.errors.CacheError` instead of degrading quietly.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from claude_force.cache.envelope import Envelope, open_envelope
from claude_force.cache.memory import MemoryTier
from claude_force.cache.stats import CacheStats, Counters, VerifyReport, error_kind
from claude_force.cache.store import SQLiteStore, StoreLimits
from claude_force.errors import CacheError, CacheIntegrityError
from claude_force.models import Response
from claude_force.security.sanitize import safe

__all__ = ["MaintenanceMixin", "parse_payload"]

log = logging.getLogger("claude_force.cache")


def parse_payload(envelope: Envelope) -> Response:
    """The response inside a MAC-checked envelope; a bad shape is an integrity failure too."""
    try:
        data = orjson.loads(envelope.payload)
        if not isinstance(data, dict):
            raise TypeError("payload is not an object")
        response = Response.from_json(data)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CacheIntegrityError(f"bad payload: {type(exc).__name__}") from None
    if not math.isfinite(envelope.expires):
        raise CacheIntegrityError("bad expiry")
    return response


class MaintenanceMixin:
    """``clear``/``prune``/``verify``/``agent_usage`` for :class:`~claude_force.cache.core.ResponseCache`."""

    __slots__ = ()

    _c: Counters
    _clock: Callable[[], float]
    _lock: threading.Lock
    _memory: MemoryTier | None
    _secret: bytes
    _store: SQLiteStore | None
    _ttl: float
    _closed: bool

    def _error(self, op: str, exc: BaseException) -> None:
        raise NotImplementedError

    def _check_open(self) -> None:
        raise NotImplementedError

    def _limits(self) -> StoreLimits:
        raise NotImplementedError

    def _take_touches(self) -> list[tuple[float, str]]:
        raise NotImplementedError

    def _evicted(self, keys: list[str]) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by WriteBehindMixin (declared for the type checker only)

        def flush(self) -> None: ...

    def _maintenance_store(self) -> SQLiteStore:
        self._check_open()
        if self._store is None:
            raise CacheError("the response cache is disabled")
        return self._store

    def clear(self) -> int:
        """Delete every entry; returns how many. A database file that is not SQLite at all is recreated.

        Writes still queued by ``store_later`` land first (and are deleted too), so none survives the clear.
        """
        store = self._maintenance_store()
        self.flush()
        if self._memory is not None:
            self._memory.clear()
        self._take_touches()
        try:
            return store.clear()
        except sqlite3.DatabaseError as exc:
            if error_kind(exc) != "corrupt_file":
                raise CacheError(f"cannot clear the cache: {safe(exc)}") from None
        log.warning("cache database %s was not a valid SQLite file; recreated it", safe(store.path))
        store.reset()
        try:
            store.connection()
        except sqlite3.Error as exc:
            raise CacheError(f"cannot recreate the cache database: {safe(exc)}") from None
        return 0

    def prune(self) -> int:
        """Remove expired entries and evict down to the limits; returns how many were removed."""
        store = self._maintenance_store()
        try:
            removed = store.prune(now=self._clock(), limits=self._limits())
        except sqlite3.Error as exc:
            raise CacheError(f"cannot prune the cache: {safe(exc)}") from None
        self._evicted(removed)
        return len(removed)

    def verify(self) -> VerifyReport:
        """Check every entry's MAC and format; delete the bad ones (``integrity_failures`` counts them)."""
        store = self._maintenance_store()
        now = self._clock()
        checked = ok = expired = 0
        bad: list[Any] = []
        bad_rows: list[tuple[int, Any]] = []
        try:
            for rowid, row in store.rows():
                checked += 1
                key = row[1]  # bytes if it is not valid UTF-8 text: then it fails the check below
                try:
                    envelope = open_envelope(
                        self._secret, row, expect_key=key if isinstance(key, str) else ""
                    )
                    parse_payload(envelope)
                except CacheIntegrityError:
                    bad.append(key)
                    bad_rows.append((rowid, row[6]))
                    continue
                ok += 1
                if now >= min(envelope.expires, envelope.created + self._ttl):
                    expired += 1
            if bad_rows:
                store.delete_rows(bad_rows)  # by rowid and MAC: undecodable keys too, never a fresh rewrite
        except sqlite3.Error as exc:
            raise CacheError(f"cannot verify the cache: {safe(exc)}") from None
        if bad:
            with self._lock:
                self._c.integrity_failures += len(bad)
            if self._memory is not None:
                for key in bad:
                    if isinstance(key, str):
                        self._memory.delete(key)
            log.warning("cache verify deleted %d corrupt entries", len(bad))
        return VerifyReport(checked=checked, ok=ok, corrupt=len(bad), expired=expired)

    def agent_usage(self) -> list[tuple[str, int, int]]:
        """``(agent, entries, bytes)`` per agent, largest first; raises ``CacheError`` if the store fails."""
        store = self._maintenance_store()
        try:
            return store.agent_usage()
        except sqlite3.Error as exc:
            raise CacheError(f"cannot read the cache: {safe(exc)}") from None

    def stats(self) -> CacheStats:
        """Exact counters of this instance plus the store's current size (0 if the store cannot be read)."""
        entries = size = 0
        if self._store is not None and not self._closed:
            try:
                entries, size = self._store.totals()
            except sqlite3.Error as exc:
                self._error("stats", exc)
        with self._lock:
            c = self._c
            hits = c.memory_hits + c.disk_hits
            lookups = hits + c.misses
            return CacheStats(
                entries=entries,
                bytes=size,
                hits=hits,
                misses=c.misses,
                hit_rate=hits / lookups if lookups else 0.0,
                memory_hits=c.memory_hits,
                disk_hits=c.disk_hits,
                evictions=c.evictions,
                integrity_failures=c.integrity_failures,
                errors=c.errors,
                memory_entries=len(self._memory) if self._memory is not None else 0,
                memory_bytes=self._memory.bytes if self._memory is not None else 0,
                oversize_skips=c.oversize_skips,
            )
