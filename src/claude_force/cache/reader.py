"""Batched disk reads for the response cache, so the event loop never blocks on disk and wakes once per batch.

``asyncio``'s ``run_in_executor`` costs a work item, a concurrent future and one loop wake-up per call. Under a
burst of misses this thread instead drains every queued lookup, answers them in one pass (SQLite reads and MAC
checks happen here, off the loop), and hands all the answers back with a single ``call_soon_threadsafe``.

A reader refuses lookups once closed (:class:`~claude_force.errors.CacheError`, as the closed cache does), so a
lookup racing ``close()`` can never wait on a thread that has stopped; one inherited through ``os.fork()`` is
not :meth:`~BatchReader.usable` in the child, which makes a new one (see :mod:`.workers`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from claude_force.cache.writer import drain
from claude_force.errors import CacheError

log = logging.getLogger("claude_force.cache")

T = TypeVar("T")
#: The most lookups answered per wake-up.
MAX_BATCH = 256


def _resolve(answers: list[tuple[asyncio.Future[T], T | None, BaseException | None]]) -> None:
    for fut, value, exc in answers:
        if fut.cancelled():
            continue  # the waiting task was cancelled; nobody wants the answer
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)  # type: ignore[arg-type]


class BatchReader(Generic[T]):
    """One owned reader thread; ``lookup(key, now)`` runs on it.

    Example::

        reader = BatchReader(lookup=cache._disk_get)
        response = await reader.submit(key, now)
        reader.close()
    """

    __slots__ = ("_lock", "_lookup", "_pid", "_queue", "_stopped", "_thread")

    def __init__(self, *, lookup: Callable[[str, float], T | None]) -> None:
        self._lookup = lookup
        self._lock = threading.Lock()
        self._stopped = False
        self._pid = os.getpid()
        self._queue: queue.SimpleQueue[
            tuple[str, float, asyncio.Future[T | None], asyncio.AbstractEventLoop] | None
        ]
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="claude-force-cache-reader", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"BatchReader(queued={self._queue.qsize()}, alive={self._thread.is_alive()})"

    def usable(self) -> bool:
        """True while this process's reader thread runs (False once closed, or in a forked child)."""
        return self._pid == os.getpid() and not self._stopped and self._thread.is_alive()

    def submit(self, key: str, now: float) -> asyncio.Future[T | None]:
        """Queue one lookup; await the returned future for its answer. Raises ``CacheError`` once closed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T | None] = loop.create_future()
        # close() sets _stopped under this lock before it queues its sentinel: nothing queues behind that.
        with self._lock:
            if not self.usable():
                raise CacheError("the response cache is closed")
            self._queue.put((key, now, fut, loop))
        return fut

    def close(self) -> None:
        """Answer what is queued, then stop the thread. A reader made in another process is left alone."""
        if self._pid != os.getpid():
            return  # forked: its thread is not in this process, and its lock may have been held at the fork
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            alive = self._thread.is_alive()
            if alive:
                self._queue.put(None)
        if alive:
            self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = drain(self._queue, first, MAX_BATCH)
            by_loop: dict[
                asyncio.AbstractEventLoop,
                list[tuple[asyncio.Future[T | None], T | None, BaseException | None]],
            ] = {}
            for key, now, fut, loop in batch:
                try:
                    answer: tuple[asyncio.Future[T | None], T | None, BaseException | None] = (
                        fut,
                        self._lookup(key, now),
                        None,
                    )
                except Exception as exc:  # handed to the waiting task, which owns the error
                    answer = (fut, None, exc)
                by_loop.setdefault(loop, []).append(answer)
            for loop, answers in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_resolve, answers)
                except RuntimeError:  # that loop is closed; its tasks are gone
                    log.debug("cache reader: dropping %d answers for a closed event loop", len(answers))
            if stop:
                return
