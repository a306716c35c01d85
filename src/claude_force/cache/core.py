"""``ResponseCache``: a signed SQLite store behind a byte-bounded memory tier, with exact stats.

The cache never fails a task: a storage failure (disk full, read-only, locked past ``busy_timeout``,
unreadable file) degrades to a miss or a skipped write, is counted in ``stats().errors`` and logged once per
kind. A row that fails its MAC, type or format checks is deleted, counted in ``integrity_failures`` and
never served.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

import orjson

from claude_force import constants as C
from claude_force.cache.dirs import DB_NAME, ensure_cache_dir
from claude_force.cache.envelope import Envelope, seal
from claude_force.cache.maintenance import MaintenanceMixin
from claude_force.cache.memory import MemoryTier
from claude_force.cache.presence import KeyPresence
from claude_force.cache.reader import BatchReader
from claude_force.cache.reads import ReadPathMixin
from claude_force.cache.secret import resolve_secret
from claude_force.cache.stats import CacheStats, Counters, VerifyReport, error_kind
from claude_force.cache.store import DEFAULT_BUSY_TIMEOUT_MS, SQLiteStore, StoreLimits
from claude_force.cache.workers import WorkersMixin
from claude_force.cache.writer import BatchWriter, Pending, WriteBehindMixin
from claude_force.errors import CacheError
from claude_force.models import Response
from claude_force.security.sanitize import safe

__all__ = ["CacheStats", "ResponseCache", "VerifyReport"]

log = logging.getLogger("claude_force.cache")

_MB: Final = 1024 * 1024
#: Per-row bytes counted on top of the payload (key, agent, MAC, timestamps, index entries).
ROW_OVERHEAD_BYTES: Final = 256


class ResponseCache(ReadPathMixin, WorkersMixin, WriteBehindMixin, MaintenanceMixin):
    """Signed, bounded, multi-process response cache.

    Example::

        cache = ResponseCache(cache_dir=Path("~/.cache/claude-force"), ttl_hours=24)
        key = cache_key(request)
        response = await cache.aget(key)
        if response is None:
            response = await call_api(request)
            await cache.aset(key, response, agent=request.agent_name)
        await cache.aclose()

    ``secret`` falls back to ``CLAUDE_CACHE_SECRET``, then to a per-user key file (see
    :func:`resolve_secret`). ``max_size_mb`` is the seed's name for ``max_disk_mb``; ``enabled=False`` gives a
    cache that stores nothing and touches no disk.
    """

    __slots__ = (
        "_c",
        "_clock",
        "_lock",
        "_max_disk",
        "_max_entry",
        "_memory",
        "_presence",
        "_quota",
        "_secret",
        "_store",
        "_touches",
        "_ttl",
        "_warned",
        "cache_dir",
        "enabled",
    )

    def __init__(
        self,
        *,
        cache_dir: Path | str | None = None,
        secret: str | bytes | None = None,
        ttl_hours: float = C.DEFAULT_CACHE_TTL_HOURS,
        max_memory_mb: float = C.DEFAULT_CACHE_MAX_MEMORY_MB,
        max_disk_mb: float = C.DEFAULT_CACHE_MAX_DISK_MB,
        max_entry_bytes: int = C.DEFAULT_CACHE_MAX_ENTRY_BYTES,
        agent_quota_mb: float | None = None,
        clock: Callable[[], float] = time.time,
        enabled: bool = True,
        max_size_mb: float | None = None,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        key_file: Path | None = None,
        env: Mapping[str, str] | None = None,
        store_factory: Callable[..., SQLiteStore] = SQLiteStore,
    ) -> None:
        if max_size_mb is not None:
            max_disk_mb = max_size_mb
        if not (ttl_hours > 0):
            raise ValueError("ttl_hours must be > 0")
        sizes = (max_disk_mb, max_memory_mb, max_entry_bytes, agent_quota_mb or 1)
        if (
            not (max_disk_mb > 0)
            or max_memory_mb < 0
            or max_entry_bytes <= 0
            or not all(map(math.isfinite, sizes))
        ):
            raise ValueError(
                "max_disk_mb and max_entry_bytes must be finite and > 0, max_memory_mb finite and >= 0"
            )
        if agent_quota_mb is not None and not (agent_quota_mb > 0):
            raise ValueError("agent_quota_mb must be > 0")
        self.enabled = enabled
        self._clock = clock
        self._ttl = ttl_hours * 3600.0
        self._max_disk = int(max_disk_mb * _MB)
        self._max_entry = int(max_entry_bytes)
        self._quota = None if agent_quota_mb is None else int(agent_quota_mb * _MB)
        self._memory = MemoryTier(max_bytes=int(max_memory_mb * _MB)) if max_memory_mb > 0 else None
        self._lock = threading.Lock()
        self._c = Counters()
        self._touches: dict[str, float] = {}
        self._warned: set[str] = set()
        self._executor = None
        self._writer: BatchWriter | None = None
        self._reader: BatchReader[Response] | None = None
        self._presence: KeyPresence | None = None
        self._closed = False
        self._store: SQLiteStore | None = None
        self._secret = b""
        self.cache_dir: Path | None = None
        if not enabled:
            return
        self.cache_dir = ensure_cache_dir(None if cache_dir is None else Path(cache_dir))
        self._secret = resolve_secret(
            secret, env=os.environ if env is None else env, key_file=key_file, cache_dir=self.cache_dir
        )
        self._store = store_factory(path=self.cache_dir / DB_NAME, busy_timeout_ms=busy_timeout_ms)
        self._presence = KeyPresence()
        try:  # checks the database file first: a symlinked one is an attack, not a disk error (UnsafeCacheDir)
            self._store.connection()
        except sqlite3.Error as exc:  # OSErrors arrive as sqlite3.OperationalError: counted, degrades
            self._error("open", exc)

    # --- bookkeeping -----------------------------------------------------------------------------

    def _limits(self) -> StoreLimits:
        return StoreLimits(max_bytes=self._max_disk, agent_quota=self._quota, ttl_seconds=self._ttl)

    def _warn_once(self, kind: str, message: str, *args: object) -> None:
        with self._lock:
            first = kind not in self._warned
            self._warned.add(kind)
        log.log(logging.WARNING if first else logging.DEBUG, message, *args)

    def _error(self, op: str, exc: BaseException) -> None:
        kind = error_kind(exc)
        with self._lock:
            self._c.errors += 1
        self._warn_once(
            f"error:{kind}",
            "response cache %s failed (%s): %s; continuing without the cache for this call",
            op,
            kind,
            safe(exc),
        )

    def _check_open(self) -> None:
        if self._closed:
            raise CacheError("the response cache is closed")

    def _miss(self) -> None:
        with self._lock:
            self._c.misses += 1

    def _take_touches(self) -> list[tuple[float, str]]:
        with self._lock:
            touches, self._touches = self._touches, {}
        return [(t, k) for k, t in touches.items()]

    # --- writes ----------------------------------------------------------------------------------

    def _admit(self, key: str, response: Response, agent: str) -> Pending | None:
        """Size-check an entry and put it in the memory tier; None if it is too large to cache."""
        # orjson hands back its whole write buffer (4 KiB for a small response); the copy is exact-size, and it
        # is what the memory tier and the write queue keep (without it a 50 MB tier held ~240 MB).
        payload = bytes(memoryview(orjson.dumps(response.to_json())))
        size = len(payload) + len(key) + len(agent.encode("utf-8")) + ROW_OVERHEAD_BYTES
        limit = min(self._max_entry, self._max_disk, self._quota or self._max_disk)
        if len(payload) > self._max_entry or size > limit:
            with self._lock:
                self._c.oversize_skips += 1
            self._warn_once(
                "oversize",
                "response of %d bytes for agent %s not cached: above the %d-byte entry limit",
                len(payload),
                safe(agent),
                limit,
            )
            return None
        now = self._clock()
        pending = Pending(key, agent, payload, now, now + self._ttl, size)
        if self._presence is not None:
            self._presence.add(key)  # before the write is queued, so this process never skips its own entry
        if self._memory is not None:
            self._memory.put(key, response, size=len(payload), expires=pending.expires, payload=payload)
        return pending

    def _seal(self, p: Pending) -> Envelope:
        return seal(
            self._secret, key=p.key, agent=p.agent, created=p.created, expires=p.expires, payload=p.payload
        )

    def _prepare(self, key: str, response: Response, agent: str) -> tuple[Envelope, int] | None:
        pending = self._admit(key, response, agent)
        return None if pending is None else (self._seal(pending), pending.size)

    def set(self, key: str, response: Response, *, agent: str) -> bool:
        """Store ``response``; False if not stored durably (oversize, disabled, or the store failed)."""
        self._check_open()
        if not self.enabled:
            return False
        prepared = self._prepare(key, response, agent)
        return prepared is not None and self._write(*prepared)

    async def aset(self, key: str, response: Response, *, agent: str) -> bool:
        """Like :meth:`set`: the memory tier is filled at once, the disk write runs on the cache's threads."""
        self._check_open()
        if not self.enabled:
            return False
        prepared = self._prepare(key, response, agent)
        if prepared is None:
            return False
        return await asyncio.wrap_future(self._on_pool(self._write, *prepared))

    def _write(self, envelope: Envelope, size: int) -> bool:
        if self._store is None:
            return False
        touches = self._take_touches()
        try:
            evicted = self._store.put(
                envelope, size=size, now=envelope.created, limits=self._limits(), touches=touches
            )
        except sqlite3.Error as exc:
            self._error("write", exc)
            return False
        self._evicted(evicted)
        return True

    def _evicted(self, keys: list[str]) -> None:
        if not keys:
            return
        with self._lock:
            self._c.evictions += len(keys)
        if self._memory is not None:
            for key in keys:
                if isinstance(key, str):
                    self._memory.delete(key)

    def contains(self, key: str) -> bool:
        """True if a fresh entry is in the memory tier (cheap; never touches the disk)."""
        return self._memory is not None and self._memory.contains(key, now=self._clock())

    def delete(self, key: str) -> bool:
        """Remove ``key`` from both tiers (after queued writes land, so none of them brings it back)."""
        self._check_open()
        self.flush()
        in_memory = self._memory.delete(key) if self._memory is not None else False
        if self._store is None:
            return in_memory
        try:
            return self._store.delete(key) or in_memory
        except sqlite3.Error as exc:
            self._error("delete", exc)
            return in_memory

    # --- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush pending recency updates, stop the cache's threads and close every connection. Idempotent."""
        if self._closed:
            return
        self._stop_workers()
        if self._store is not None:
            self._flush_touches()
            self._store.close()
        if self._memory is not None:
            self._memory.clear()

    async def aclose(self) -> None:
        # close() joins the cache's own threads, so it runs on the loop's default executor, not on theirs.
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> ResponseCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        # Live state only; never the secret.
        c = self._c
        return (
            f"ResponseCache(dir={str(self.cache_dir)!r}, enabled={self.enabled}, closed={self._closed}, "
            f"memory={self._memory!r}, hits={c.memory_hits + c.disk_hits}, misses={c.misses}, "
            f"integrity_failures={c.integrity_failures}, errors={c.errors})"
        )
