"""The response cache's own threads: the batched reader, the write-behind writer and the pool ``aset`` uses.

Each is made on first use, under the cache's lock, and is:

- **never made after** ``close()``: a call that raced ``close()`` gets the closed cache's ``CacheError`` (which
  ``store_later`` turns into False) instead of a new thread that nobody would stop;
- **made afresh after** ``os.fork()``: a child inherits the objects but not their threads, so one made by
  another process is dropped (neither joined nor closed: its locks may have been held at the fork) and a new
  one is made. Entries the parent had queued stay the parent's to write; the child's own are written by its
  own writer, and ``close()`` in the child flushes them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from claude_force.cache.reader import BatchReader
from claude_force.cache.writer import BatchWriter
from claude_force.errors import CacheError

if TYPE_CHECKING:
    from claude_force.cache.writer import Pending
    from claude_force.models import Response

__all__ = ["WorkersMixin"]

T = TypeVar("T")


class _Pool(ThreadPoolExecutor):
    """The cache's two-thread pool, remembering the process that made it."""

    def __init__(self) -> None:
        super().__init__(max_workers=2, thread_name_prefix="claude-force-cache")
        self.pid = os.getpid()


class WorkersMixin:
    """Thread factories and shutdown for :class:`~claude_force.cache.core.ResponseCache`."""

    __slots__ = ("_closed", "_executor", "_reader", "_writer")

    _lock: threading.Lock
    _closed: bool
    _reader: BatchReader[Response] | None
    _writer: BatchWriter | None
    _executor: _Pool | None

    if TYPE_CHECKING:  # provided by ResponseCache and WriteBehindMixin (declared for the type checker only)

        def _synced_disk_get(self, key: str, now: float) -> Response | None: ...

        def _write_batch(self, batch: list[Pending]) -> None: ...

        def _error(self, op: str, exc: BaseException) -> None: ...

    def _refuse_if_closed(self) -> None:
        """Under ``_lock``: ``close()`` sets ``_closed`` before it takes the workers under the same lock."""
        if self._closed:
            raise CacheError("the response cache is closed")

    def _background_reader(self) -> BatchReader[Response]:
        with self._lock:
            self._refuse_if_closed()
            reader = self._reader
            if reader is None or not reader.usable():
                reader = self._reader = BatchReader(lookup=self._synced_disk_get)
            return reader

    def _background_writer(self) -> BatchWriter:
        with self._lock:
            self._refuse_if_closed()
            writer = self._writer
            if writer is None or not writer.usable():
                writer = self._writer = BatchWriter(
                    write_batch=self._write_batch, on_error=self._writer_failed
                )
            return writer

    def _writer_failed(self, exc: BaseException) -> None:
        self._error("write", exc)

    def _on_pool(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the cache's pool; submitted under the lock, so never to a pool ``close()`` shut."""
        with self._lock:
            self._refuse_if_closed()
            if self._executor is None or self._executor.pid != os.getpid():
                self._executor = _Pool()
            return self._executor.submit(fn, *args)

    def _stop_workers(self) -> None:
        """Mark the cache closed, then finish and stop this process's threads (what they hold is written)."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
            writer, self._writer = self._writer, None
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()  # each close() leaves alone a worker made by another process
        if writer is not None:
            writer.close()
        if executor is not None and executor.pid == os.getpid():
            executor.shutdown(wait=True)
