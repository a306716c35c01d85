"""Write-behind for the response cache: one owned thread seals queued entries and commits them in batches.

A miss costs the event loop a queue put instead of an HMAC and a thread hop per entry, and the disk sees one
transaction per batch instead of one per entry. The memory tier already holds each entry when it is queued, so
this process serves it at once; other processes see it after the batch commits (within about
``GATHER_SECONDS``). ``flush()`` waits until everything queued so far is on disk, and cuts the gathering short
so it does not wait out the window; ``close()`` flushes and stops the thread.

``submit`` never queues what no thread will write: once the writer is closed, or in a child process that
inherited it through ``os.fork()`` (the thread is not there), it returns False and ``store_later`` reports the
entry as not stored. A fork child gets a writer of its own (see :mod:`.workers`); the parent's queued entries
stay the parent's to write.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

from claude_force.errors import CacheError

if TYPE_CHECKING:
    from claude_force.cache.envelope import Envelope
    from claude_force.cache.store import SQLiteStore, StoreLimits
    from claude_force.models import Response

log = logging.getLogger("claude_force.cache")

ItemT = TypeVar("ItemT")
ItemT_co = TypeVar("ItemT_co", covariant=True)

#: The most entries committed in one transaction.
MAX_BATCH = 256
#: Bytes of entries queued and not yet written before ``submit`` waits for the writer (backpressure): a
#: burst of misses faster than the disk can take cannot grow memory without bound.
MAX_QUEUED_BYTES = 8 * 1024 * 1024
#: After the first queued entry, wait up to this long for more: fewer, larger transactions, and fewer moments
#: where this thread competes with the event loop for the GIL. Each transaction has a fixed cost (waking the
#: thread, BEGIN, COMMIT, the limit checks) of a few hundred microseconds of CPU under load, so at W2's 1,000
#: misses a second 0.1 s (about 100 entries a batch) costs about 16 us less per entry than 0.02 s did. There is no
#: wait (or it ends) while a flush, ``close`` or a submit waiting for room waits, or while ``MAX_BATCH`` entries or
#: half of ``max_queued_bytes`` are still on the queue (see ``BatchWriter._urgent``).
GATHER_SECONDS = 0.1


class _Getter(Protocol[ItemT_co]):
    def get_nowait(self) -> ItemT_co | None: ...


def drain(source: _Getter[ItemT], first: ItemT, limit: int) -> tuple[list[ItemT], bool]:
    """``first`` plus whatever is queued, up to ``limit`` items; True as well if the stop sentinel was met."""
    batch = [first]
    while len(batch) < limit:
        try:
            item = source.get_nowait()
        except queue.Empty:
            return batch, False
        if item is None:
            return batch, True
        batch.append(item)
    return batch, False


class Pending(NamedTuple):
    """One entry waiting to be sealed and written."""

    key: str
    agent: str
    payload: bytes
    created: float
    expires: float
    size: int


class BatchWriter:
    """A single writer thread fed by a FIFO queue, holding at most ``max_queued_bytes`` of entries.

    Example::

        writer = BatchWriter(write_batch=lambda batch: store_all(batch))
        writer.submit(Pending(...))
        writer.flush()
        writer.close()
    """

    __slots__ = (
        "_blocked",
        "_flush_target",
        "_hurry",
        "_max_bytes",
        "_on_error",
        "_pid",
        "_queue",
        "_queued_bytes",
        "_room",
        "_stopped",
        "_submitted",
        "_taken",
        "_taken_bytes",
        "_thread",
        "_write_batch",
        "_written",
    )

    def __init__(
        self,
        *,
        write_batch: Callable[[list[Pending]], None],
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._write_batch = write_batch
        self._on_error = on_error
        self._max_bytes = max_queued_bytes
        self._stopped = False
        self._pid = os.getpid()
        # Entries queued / taken off the queue by the writer / done (written or failed), all in FIFO order.
        self._submitted = self._taken = self._written = 0
        self._queued_bytes = 0  # of the entries not yet done, the batch being written included
        self._taken_bytes = 0  # of the batch being written
        # A flush waits until _written reaches _flush_target, a submit with _blocked > 0 for room: no gathering then.
        self._flush_target = 0
        self._blocked = 0
        self._room = threading.Condition()
        self._hurry = threading.Event()  # wakes the writer from gathering; _urgent() says whether to gather
        # SimpleQueue: put and get are C calls, with no Python-level lock of their own (submit holds _room).
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="claude-force-cache-writer", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return (
            f"BatchWriter(queued={self._queue.qsize()}, queued_bytes={self._queued_bytes}, "
            f"alive={self._thread.is_alive()})"
        )

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def usable(self) -> bool:
        """True while this process's writer thread runs (False once closed, or in a forked child)."""
        return self._pid == os.getpid() and not self._stopped and self._thread.is_alive()

    def submit(self, item: Pending) -> bool:
        """Queue ``item``; False (not queued) once closed or if the thread is gone, so nothing is silently lost.

        Blocks while the queue already holds ``max_queued_bytes`` (the writer is behind): backpressure.
        """
        with self._room:
            while True:
                if not self.usable():
                    return False  # nothing will write it (and nothing will make room: never block forever)
                if self._queued_bytes == 0 or self._queued_bytes + item.size <= self._max_bytes:
                    break
                self._blocked += 1
                self._hurry.set()  # make room now: gathering more cannot help a caller that is waiting
                try:
                    self._room.wait(timeout=1.0)
                finally:
                    self._blocked -= 1
            self._queued_bytes += item.size
            self._submitted += 1
            self._queue.put(item)  # under the lock: close() cannot slip its sentinel in ahead of this item
            if not self._hurry.is_set() and self._urgent():
                self._hurry.set()  # a full batch is waiting: no point gathering longer
        return True

    def _urgent(self) -> bool:
        """Whether waiting for more entries cannot help: closing, a flush or a submit waiting, or a full batch (by
        count or by half the byte bound) still on the queue. Only the entries not yet taken count: the batch being
        written already is one."""
        return (
            self._stopped
            or self._blocked > 0
            or self._written < self._flush_target
            or self._submitted - self._taken >= MAX_BATCH
            or 2 * (self._queued_bytes - self._taken_bytes) >= self._max_bytes
        )

    def flush(self) -> None:
        """Block until every entry submitted so far has been written (or has failed and been counted).

        Entries submitted after the call began are not waited for, so other threads that keep submitting cannot
        keep it (or ``delete``/``clear``, which flush first) waiting.
        """
        if self._pid != os.getpid():
            return  # forked: the parent's queue; nothing in this process would ever drain it
        with self._room:
            target = self._submitted
            if self._written < target:
                self._flush_target = max(self._flush_target, target)
                self._hurry.set()
            while self._written < target and self._thread.is_alive():
                self._room.wait(timeout=1.0)

    def close(self) -> None:
        """Write what is queued, then stop the thread. A writer made in another process is left alone."""
        if self._pid != os.getpid():
            return  # forked: its thread is not in this process, and its lock may have been held at the fork
        with self._room:
            if self._stopped:
                return
            self._stopped = True
            self._room.notify_all()  # a submit waiting for room gives up (returns False)
            alive = self._thread.is_alive()
            if alive:
                self._queue.put(None)
                self._hurry.set()
        if alive:
            self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            # The event only wakes this thread; whether to gather is decided from the state, checked again after
            # the clear so that a wake-up between the check and the clear is not lost.
            if not self._urgent():
                self._hurry.clear()
                if not self._urgent():
                    self._hurry.wait(GATHER_SECONDS)
            batch, stop = drain(self._queue, first, MAX_BATCH)
            with self._room:
                self._taken += len(batch)
                self._taken_bytes = sum(p.size for p in batch)
            try:
                self._write_batch(batch)
            except Exception as exc:  # write_batch counts storage errors; anything else is a bug: log it
                log.exception("response cache writer failed on a batch of %d entries", len(batch))
                if self._on_error is not None:
                    self._on_error(exc)  # and count it: the batch is lost
            finally:
                with self._room:
                    self._queued_bytes -= self._taken_bytes
                    self._taken_bytes = 0
                    self._written += len(batch)
                    self._room.notify_all()  # submits waiting for room, and flushes waiting for their entries
            if stop:
                return


class WriteBehindMixin:
    """``store_later``/``flush`` for :class:`~claude_force.cache.core.ResponseCache`."""

    __slots__ = ()

    _lock: threading.Lock
    _store: SQLiteStore | None
    _writer: BatchWriter | None
    _clock: Callable[[], float]
    enabled: bool

    def _check_open(self) -> None:
        raise NotImplementedError

    def _admit(self, key: str, response: Response, agent: str) -> Pending | None:
        raise NotImplementedError

    def _seal(self, p: Pending) -> Envelope:
        raise NotImplementedError

    def _take_touches(self) -> list[tuple[float, str]]:
        raise NotImplementedError

    def _limits(self) -> StoreLimits:
        raise NotImplementedError

    def _error(self, op: str, exc: BaseException) -> None:
        raise NotImplementedError

    def _evicted(self, keys: list[str]) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by WorkersMixin (declared here only for the type checker)

        def _background_writer(self) -> BatchWriter: ...

    def store_later(self, key: str, response: Response, *, agent: str) -> bool:
        """Put ``response`` in the memory tier now and queue its disk write (write-behind, batched).

        No HMAC and no thread hop, so it is meant for the event loop; but it blocks while the writer is
        ``MAX_QUEUED_BYTES`` behind (backpressure), so under a burst faster than the disk it waits for the
        disk. False if it will not be stored on disk (disabled, oversize, or the cache was closed meanwhile).
        :meth:`flush` waits for queued writes; :meth:`close` flushes them.
        """
        self._check_open()
        if not self.enabled:
            return False
        pending = self._admit(key, response, agent)
        if pending is None or self._store is None:
            return False
        try:
            writer = self._background_writer()
        except CacheError:  # close() ran since _check_open: refuse rather than start a thread nobody stops
            return False
        return writer.submit(pending)

    def flush(self) -> None:
        """Block until every write queued by :meth:`store_later` is on disk (or failed and was counted)."""
        if self._writer is not None:
            self._writer.flush()

    def _write_batch(self, batch: list[Pending]) -> None:
        """Seal and commit one batch (runs on the writer thread)."""
        if self._store is None:
            return
        entries = [(self._seal(p), p.size) for p in batch]
        touches = self._take_touches()
        try:
            evicted = self._store.put_many(entries, now=self._clock(), limits=self._limits(), touches=touches)
        except (sqlite3.Error, OSError) as exc:
            self._error("write", exc)
            return
        self._evicted(evicted)
