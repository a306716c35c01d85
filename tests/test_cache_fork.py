"""A cache used before ``os.fork()`` keeps working in the child: the child gets threads of its own.

A real fork, so the child really lacks the parent's reader and writer threads. The child reports through its
exit status (it must never return into pytest), and arms ``SIGALRM`` so that a regression that hangs kills it
instead of hanging the test run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import warnings
from pathlib import Path

import pytest

from cache_support import Clock, key, resp
from claude_force.cache import ResponseCache
from claude_force.cache.presence import DEFAULT_MAX_AGE
from claude_force.cache.writer import Pending
from claude_force.models import Response

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or sys.platform == "win32", reason="os.fork() exists only on POSIX"
)

SECRET = "fork-test-secret-0123456789abcdef-xyzw"
#: A bound on the child's lifetime and on each awaited lookup: a guard against a hang, never a timing assertion.
GUARD_S = 30

# The child's exit statuses.
OK, STORE_REFUSED, AGET_HUNG, AGET_WRONG, CRASHED, QUEUED_ON_DEAD_THREAD = 0, 10, 11, 12, 13, 14


def child(cache: ResponseCache, clock: Clock) -> int:
    """Runs in the forked child: store an entry, read one from disk through the reader thread, close."""
    inherited = cache._writer  # the parent's writer object; its thread did not survive the fork
    assert inherited is not None
    if inherited.submit(Pending(key("lost"), "a", b"{}", 0.0, 1.0, 10)):
        return QUEUED_ON_DEAD_THREAD  # it would never be written
    if not cache.store_later(key("child"), resp("from the child"), agent="a"):
        return STORE_REFUSED
    clock.now += DEFAULT_MAX_AGE + 1.0  # the filter is stale, so the lookup goes to the reader thread

    async def lookup() -> Response | None:
        return await asyncio.wait_for(cache.aget(key("parent")), GUARD_S)

    try:
        hit = asyncio.run(lookup())
    except asyncio.TimeoutError:
        return AGET_HUNG
    if hit is None or hit.text != "from the parent":
        return AGET_WRONG
    cache.close()  # flushes the child's queued write
    return OK


def test_a_forked_child_reads_and_writes_through_threads_of_its_own(tmp_path: Path) -> None:
    clock = Clock()
    cache = ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, max_memory_mb=0)
    try:
        assert asyncio.run(cache.aget(key("warm"))) is None  # starts the reader thread
        assert cache.store_later(key("parent"), resp("from the parent"), agent="a")  # starts the writer
        cache.flush()
        with warnings.catch_warnings():
            # Python 3.12+ warns that forking a process with threads may deadlock: that risk is what the
            # cache's fork handling exists for, so the warning is expected here.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; coverage is not collected there
            status = CRASHED
            try:
                signal.alarm(GUARD_S)
                status = child(cache, clock)
            finally:
                os._exit(status)
        _, raw_status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(raw_status) == OK
        # The parent's own threads were not disturbed by the child.
        assert cache.store_later(key("after"), resp("after the fork"), agent="a")
        cache.flush()
    finally:
        cache.close()
    with ResponseCache(cache_dir=tmp_path / "c", secret=SECRET, clock=clock, max_memory_mb=0) as reopened:
        written = reopened.get(key("child"))
        assert written is not None and written.text == "from the child"
        assert reopened.get(key("after")) is not None
