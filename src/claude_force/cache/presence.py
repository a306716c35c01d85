"""Which keys may be on disk: a Bloom filter that lets a cache miss skip the disk lookup.

Every task in a fresh batch is a miss, and each miss used to cost a trip to the reader thread and an SQLite
query. The filter answers "certainly not on disk" in about a microsecond on the event loop. It never gives a
false "absent" for what it has seen:

- at first use it loads every key already in the database (on the reader thread);
- this process adds each key it stores before the write is queued;
- keys written by other processes are pulled in by :func:`sync_presence`, which the reader thread runs when
  SQLite's ``data_version`` says the database changed, at most ``max_age`` seconds apart: every row whose id
  is above the last one seen. Row ids only grow (the table is ``AUTOINCREMENT``; see :mod:`.schema`), so a row
  added after a delete or a ``clear()`` is never missed. A miss is only skipped while the filter is younger
  than ``max_age``, so another process's entry is seen within about that (plus its own write-behind delay).

False positives only cost the disk lookup we would have made anyway. The one false "absent" is narrow: when
the filter is rebuilt bigger, a key this process added before the rebuild and had not committed yet when the
disk was read (see :meth:`KeyPresence.load`); it is back at the first sync after its commit.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claude_force.cache.store import SQLiteStore

#: Hash functions per key; with 16 bits per key this gives about 0.05% false positives.
K = 7
BITS_PER_KEY = 16
#: The filter's size in bits is a power of two, at least this, so a hash is reduced to a position by a mask.
MIN_BITS = 1 << 20
#: Seconds a sync stays fresh: misses skip the disk only while the last sync is younger than this.
DEFAULT_MAX_AGE = 0.05


_HEX_KEY_CHARS = 64
#: The ``K`` 32-bit hashes of a key, read from its first ``4 * K`` bytes in one C call.
_UNPACK = struct.Struct(f"<{K}I").unpack_from


def _hashes(key: str) -> tuple[int, ...]:
    """``K`` 32-bit hashes of ``key``: its own bytes when it is a SHA-256 hex digest (every cache key is), else
    those of a BLAKE2b digest of it."""
    if len(key) == _HEX_KEY_CHARS:
        try:
            return _UNPACK(bytes.fromhex(key))
        except (ValueError, struct.error):  # not hex, or hex with spaces in it (fewer bytes)
            pass
    return _UNPACK(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=4 * K).digest())


class KeyPresence:
    """A thread-safe Bloom filter of cache keys plus the sync state that keeps it current.

    Example::

        presence = KeyPresence()
        presence.load(["k1", "k2"], max_rowid=2, version=1, now=0.0)
        presence.might_contain("k3")   # False: certainly not on disk
    """

    __slots__ = (
        "_bits",
        "_capacity",
        "_count",
        "_during_load",
        "_lock",
        "_nbits",
        "max_age",
        "max_rowid",
        "ready",
        "synced_at",
        "version",
    )

    def __init__(self, *, max_age: float = DEFAULT_MAX_AGE) -> None:
        self._lock = threading.Lock()
        self._nbits = MIN_BITS
        self._bits = bytearray(MIN_BITS // 8)
        self._capacity = MIN_BITS // BITS_PER_KEY
        self._count = 0
        self._during_load: list[str] | None = None  # keys added while load() reads the disk
        self.max_age = max_age
        self.ready = False
        self.synced_at = float("-inf")
        self.max_rowid = 0
        self.version: object = None

    def __repr__(self) -> str:
        return (
            f"KeyPresence(ready={self.ready}, keys={self._count}, bits={self._nbits}, rowid={self.max_rowid})"
        )

    def fresh(self, now: float) -> bool:
        """True when misses may trust the filter: loaded, and synced less than ``max_age`` ago."""
        return self.ready and now - self.synced_at < self.max_age

    def might_contain(self, key: str) -> bool:
        # Probe by probe, stopping at the first clear bit: a miss (the common case) usually costs one or two.
        bits, mask = self._bits, self._nbits - 1
        for h in _hashes(key):
            p = h & mask
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
        return True

    def add(self, key: str) -> None:
        self.add_many((key,))

    def add_many(self, keys: Iterable[str]) -> None:
        with self._lock:
            bits, mask = self._bits, self._nbits - 1
            during = self._during_load
            for key in keys:
                for h in _hashes(key):
                    p = h & mask
                    bits[p >> 3] |= 1 << (p & 7)
                self._count += 1
                if during is not None:
                    during.append(key)
            if self._count > self._capacity:
                self.ready = False  # too full to be useful: the reader thread reloads it, sized anew

    def load(
        self, keys: Iterable[str], *, max_rowid: int, version: object, now: float, expected: int = 0
    ) -> None:
        """Replace the filter with ``keys`` (every key on disk), sized for at least twice ``expected``."""
        nbits = MIN_BITS
        while nbits < 2 * max(expected, 1) * BITS_PER_KEY:
            nbits *= 2
        fresh = KeyPresence(max_age=self.max_age)
        fresh._nbits, fresh._bits, fresh._capacity = nbits, bytearray(nbits // 8), nbits // BITS_PER_KEY
        with self._lock:
            self._during_load = []
        try:
            fresh.add_many(keys)
        except BaseException:
            with self._lock:
                self._during_load = None
            raise
        with self._lock:
            # Keys this process added while the disk was read may not be in ``keys``. Same size: OR the old bits
            # in (they hold every key added before, too). After a resize the old bits cannot be carried over, so
            # the keys added during the load are re-added. Only a key added before the load and not yet committed
            # when the disk was read is lost: until the first sync after its commit, lookups of it that miss the
            # memory tier skip the disk (a redundant upstream call at worst, never a wrong answer).
            during, self._during_load = self._during_load or [], None
            if nbits == self._nbits:
                merged = int.from_bytes(fresh._bits, "little") | int.from_bytes(self._bits, "little")
                fresh._bits = bytearray(merged.to_bytes(len(self._bits), "little"))
            else:
                fresh.add_many(during)
            self._nbits, self._bits, self._capacity = nbits, fresh._bits, fresh._capacity
            self._count = fresh._count
            self.max_rowid, self.version, self.synced_at = max_rowid, version, now
            self.ready = True

    def synced(self, *, max_rowid: int, version: object, now: float) -> None:
        self.max_rowid, self.version, self.synced_at = max_rowid, version, now


def sync_presence(presence: KeyPresence, store: SQLiteStore, *, now: float) -> None:
    """Load the filter (first use) or pull in rows added since the last sync; runs on the reader thread.

    ``data_version`` is read first: a commit after that read changes it, so the next sync catches it.
    Raises ``sqlite3.Error`` for the caller to count.
    """
    version = store.data_version()
    if not presence.ready:
        last = [0]

        def keys() -> Iterator[str]:
            for row_id, key in store.keys_after(0):
                last[0] = row_id
                yield key

        presence.load(keys(), max_rowid=0, version=version, now=now, expected=store.totals()[0])
        presence.synced(max_rowid=last[0], version=version, now=now)
    elif version != presence.version:
        top = presence.max_rowid
        new: list[str] = []
        for row_id, key in store.keys_after(top):
            top = row_id
            new.append(key)
        presence.add_many(new)
        presence.synced(max_rowid=top, version=version, now=now)
    else:
        presence.synced(max_rowid=presence.max_rowid, version=version, now=now)
