"""The response cache's read path: the memory tier, then the disk (verified before it is parsed), recency.

``aget`` is what the cache layer calls: a memory hit returns inline; a key the presence filter has never seen
skips the disk; anything else is read on the cache's own reader thread. A row that fails its MAC, type or format
checks is deleted, counted in ``integrity_failures`` and never served. Reads record recency in memory and
write it in batches (:data:`TOUCH_FLUSH_AT`), never one write per hit.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from claude_force.cache.envelope import open_envelope
from claude_force.cache.maintenance import parse_payload
from claude_force.cache.presence import KeyPresence, sync_presence
from claude_force.errors import CacheIntegrityError
from claude_force.models import Response
from claude_force.security.sanitize import safe

if TYPE_CHECKING:
    from claude_force.cache.memory import MemoryTier
    from claude_force.cache.reader import BatchReader
    from claude_force.cache.stats import Counters
    from claude_force.cache.store import SQLiteStore

__all__ = ["TOUCH_FLUSH_AT", "TOUCH_GRANULARITY_S", "ReadPathMixin"]

#: Reads record recency in memory and write it in batches of this many (or with the next write).
TOUCH_FLUSH_AT: Final = 512
#: LRU resolution: a disk hit on an entry used less than this many seconds ago records no new access time.
TOUCH_GRANULARITY_S: Final = 60.0


class ReadPathMixin:
    """``get``/``aget`` and what they need, for :class:`~claude_force.cache.core.ResponseCache`."""

    __slots__ = ()

    _c: Counters
    _clock: Callable[[], float]
    _lock: threading.Lock
    _memory: MemoryTier | None
    _presence: KeyPresence | None
    _secret: bytes
    _store: SQLiteStore | None
    _touches: dict[str, float]
    _ttl: float

    def _check_open(self) -> None:
        raise NotImplementedError

    def _error(self, op: str, exc: BaseException) -> None:
        raise NotImplementedError

    def _miss(self) -> None:
        raise NotImplementedError

    def _take_touches(self) -> list[tuple[float, str]]:
        raise NotImplementedError

    def _warn_once(self, kind: str, message: str, *args: object) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by WorkersMixin (declared here only for the type checker)

        def _background_reader(self) -> BatchReader[Response]: ...

    def _memory_get(self, key: str, now: float) -> Response | None:
        if self._memory is None:
            return None
        hit = self._memory.get(key, now=now)
        if hit is not None:
            with self._lock:
                self._c.memory_hits += 1
                if len(self._touches) < TOUCH_FLUSH_AT * 4:
                    self._touches[key] = now
        return hit

    def get(self, key: str) -> Response | None:
        """The cached response for ``key``, or None (absent, expired, corrupt, or the store failed)."""
        self._check_open()
        now = self._clock()
        hit = self._memory_get(key, now)
        if hit is None:
            hit = self._disk_get(key, now)
        if hit is None:
            self._miss()
        return hit

    async def aget(self, key: str) -> Response | None:
        """Like :meth:`get`; a memory hit returns inline, a disk read runs on the cache's own threads.

        After a disk miss the memory tier is checked once more, so a response that another task stored while
        this one was reading the disk is still found (single-flight relies on that to pay once).
        """
        self._check_open()
        now = self._clock()
        hit = self._memory_get(key, now)
        presence = self._presence
        if hit is None and presence is not None and presence.fresh(now) and not presence.might_contain(key):
            pass  # certainly not on disk as of a sync less than max_age ago: skip the disk lookup
        elif hit is None and self._store is not None:
            hit = await self._background_reader().submit(key, now)
            if hit is None:
                hit = self._memory_get(key, self._clock())
        if hit is None:
            self._miss()
        return hit

    def _synced_disk_get(self, key: str, now: float) -> Response | None:
        """``_disk_get`` on the reader thread, after bringing the presence filter up to date if it is stale.

        A key the just-synced filter rules out is not read: the lookup came here only because the filter was
        stale, and once synced it answers as it would have on the event loop.
        """
        self._sync_presence(now)
        presence = self._presence
        if presence is not None and presence.fresh(now) and not presence.might_contain(key):
            return None
        return self._disk_get(key, now)

    def _sync_presence(self, now: float) -> None:
        if self._presence is not None and self._store is not None and not self._presence.fresh(now):
            try:
                sync_presence(self._presence, self._store, now=now)
            except sqlite3.Error as exc:
                self._error("read", exc)

    def _disk_get(self, key: str, now: float) -> Response | None:
        """A verified, fresh response from disk (counted as a disk hit), or None; misses are the caller's."""
        if self._store is None:
            return None
        try:
            row = self._store.read(key)
        except sqlite3.Error as exc:
            self._error("read", exc)
            return None
        if row is None:
            return None
        try:
            envelope = open_envelope(self._secret, row[:7], expect_key=key)
            response = parse_payload(envelope)
        except CacheIntegrityError as exc:
            self._integrity_failure(key, row[6], str(exc))
            return None
        expires = min(envelope.expires, envelope.created + self._ttl)
        if now >= expires:
            return None  # expired entries are never served; prune() or the next eviction removes them
        if self._memory is not None:
            self._memory.put(
                key, response, size=len(envelope.payload), expires=expires, payload=envelope.payload
            )
        last_access = row[7]
        stale = not isinstance(last_access, (int, float)) or now - last_access >= TOUCH_GRANULARITY_S
        with self._lock:
            self._c.disk_hits += 1
            if stale:
                self._touches[key] = now
            flush = len(self._touches) >= TOUCH_FLUSH_AT
        if flush:
            self._flush_touches()
        return response

    def _integrity_failure(self, key: Any, mac: Any, reason: str) -> None:
        with self._lock:
            self._c.integrity_failures += 1
        self._warn_once(
            "integrity",
            "response cache entry %s failed its integrity check (%s); deleted, not served",
            safe(str(key)[:16]),
            reason,
        )
        if self._memory is not None and isinstance(key, str):
            self._memory.delete(key)
        if self._store is not None:
            try:
                self._store.delete(key, mac=mac)
            except sqlite3.Error as exc:
                self._error("delete", exc)

    def _flush_touches(self) -> None:
        touches = self._take_touches()
        if touches and self._store is not None:
            try:
                self._store.touch(touches)
            except sqlite3.Error as exc:
                self._error("write", exc)
