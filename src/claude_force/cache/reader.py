"""Batched disk reads for the response cache, so the event loop never blocks on disk and wakes once per batch.

``asyncio``'s ``run_in_executor`` costs a work item, a concurrent future and one loop wake-up per call. Under a
burst of misses this thread instead drains every queued lookup, answers them in one pass (SQLite reads and MAC
checks happen here, off the loop), and hands all the answers back with a single ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from claude_force.cache.writer import drain

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

    __slots__ = ("_lookup", "_queue", "_thread")

    def __init__(self, *, lookup: Callable[[str, float], T | None]) -> None:
        self._lookup = lookup
        self._queue: queue.SimpleQueue[
            tuple[str, float, asyncio.Future[T | None], asyncio.AbstractEventLoop] | None
        ]
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="claude-force-cache-reader", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"BatchReader(queued={self._queue.qsize()}, alive={self._thread.is_alive()})"

    def submit(self, key: str, now: float) -> asyncio.Future[T | None]:
        """Queue one lookup; await the returned future for its answer."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T | None] = loop.create_future()
        self._queue.put((key, now, fut, loop))
        return fut

    def close(self) -> None:
        """Answer what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
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
