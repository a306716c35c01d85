"""The in-memory tier: a thread-safe LRU bounded in bytes, in front of the SQLite store.

Entries hold already-verified responses, so a memory hit costs one dict lookup under a lock and one JSON
decode: no disk, no thread hop, no MAC check. An entry is kept as its serialised payload (``bytes``), not as
a ``Response`` object: bytes are invisible to the garbage collector, so a tier of tens of thousands of
entries adds nothing to every collection's work, and each hit decodes a fresh object the caller may mutate.
The byte size of an entry is the length of its payload plus a fixed overhead, so the bound holds for many
small entries as well as for few large ones.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

import orjson

from claude_force.models import Response, Usage

__all__ = ["ENTRY_OVERHEAD_BYTES", "MemoryTier"]

#: Rough cost of the key, the Response object and the dict slot, added to every entry's payload size.
ENTRY_OVERHEAD_BYTES: Final = 512


def copy_response(r: Response) -> Response:
    """A copy the caller may mutate without touching the cached original."""
    u = r.usage
    return Response(
        text=r.text,
        model=r.model,
        usage=Usage(
            u.input_tokens, u.output_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens
        ),
        stop_reason=r.stop_reason,
        message_id=r.message_id,
        request_id=r.request_id,
        headers=dict(r.headers),
    )


class MemoryTier:
    """A byte-bounded LRU of ``key -> (response, size, expires)``.

    Example::

        tier = MemoryTier(max_bytes=64 * 1024 * 1024)
        tier.put(key, response, size=len(payload), expires=now + ttl)
        hit = tier.get(key, now=clock())
    """

    __slots__ = ("_bytes", "_data", "_evictions", "_lock", "max_bytes")

    def __init__(self, *, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, tuple[bytes, int, float]] = OrderedDict()
        self._bytes = 0
        self._evictions = 0
        self._lock = threading.Lock()

    def get(self, key: str, *, now: float) -> Response | None:
        """A copy of the cached response, or None if absent or expired (an expired entry is dropped)."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            payload, size, expires = item
            if now >= expires:
                del self._data[key]
                self._bytes -= size
                return None
            self._data.move_to_end(key)
        return Response.from_json(orjson.loads(payload))

    def contains(self, key: str, *, now: float) -> bool:
        with self._lock:
            item = self._data.get(key)
            return item is not None and now < item[2]

    def put(
        self, key: str, response: Response, *, size: int, expires: float, payload: bytes | None = None
    ) -> bool:
        """Insert or replace; evict least-recently-used entries to stay within ``max_bytes``.

        ``payload`` is ``response`` already serialised (the cache has it at hand); it is computed if omitted.
        """
        cost = size + ENTRY_OVERHEAD_BYTES
        if cost > self.max_bytes:
            self.delete(key)
            return False
        stored = payload if payload is not None else orjson.dumps(response.to_json())
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._data[key] = (stored, cost, expires)
            self._bytes += cost
            while self._bytes > self.max_bytes:
                _, (_, evicted_size, _) = self._data.popitem(last=False)
                self._bytes -= evicted_size
                self._evictions += 1
        return True

    def delete(self, key: str) -> bool:
        with self._lock:
            old = self._data.pop(key, None)
            if old is None:
                return False
            self._bytes -= old[1]
            return True

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def evictions(self) -> int:
        return self._evictions

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return (
            f"MemoryTier(entries={len(self._data)}, bytes={self._bytes}, max_bytes={self.max_bytes}, "
            f"evictions={self._evictions})"
        )
