"""Real processes on one cache: a short multi-process hammer, and SIGKILL in the middle of writes.

The 20-second, 4-process x 8-thread version of the hammer is ``benchmarks/bench_cache.py:hammer``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from claude_force.cache import ResponseCache
from claude_force.cache.dirs import DB_NAME
from claude_force.models import Response, Usage

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and POSIX modes"),
]

SECRET = "process-test-secret-0123456789abcdef-x"
MB = 1024 * 1024
LIMIT_MB = 0.5


def response_for(key: str, size: int) -> Response:
    return Response(text=f"{key}|" + "x" * size, model="m", usage=Usage(1, 2), stop_reason="end_turn")


def valid(key: str, got: Response | None) -> bool:
    return got is None or (got.text.startswith(f"{key}|") and got.usage == Usage(1, 2))


def hammer_worker(cache_dir: str, seconds: float, threads: int, seed: int, out: Any) -> None:
    """One process: ``threads`` threads of mixed get/set/delete on a shared key space."""
    cache = ResponseCache(cache_dir=Path(cache_dir), secret=SECRET, max_disk_mb=LIMIT_MB, max_memory_mb=0.1)
    exceptions: list[str] = []
    bad = [0]
    ops = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        done = 0
        try:
            while time.monotonic() < deadline and done < 20_000:
                key = f"k{rng.randrange(400)}"
                roll = rng.random()
                if roll < 0.35:
                    cache.set(key, response_for(key, rng.randrange(100, 4000)), agent=f"agent{n % 3}")
                elif roll < 0.45:
                    cache.delete(key)
                elif not valid(key, cache.get(key)):
                    with lock:
                        bad[0] += 1
                done += 1
        except BaseException as exc:  # reported to the parent
            with lock:
                exceptions.append(repr(exc))
        with lock:
            ops[0] += done

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stats = cache.stats()
    cache.close()
    out.put(
        {
            "exceptions": exceptions,
            "bad": bad[0],
            "ops": ops[0],
            "integrity_failures": stats.integrity_failures,
            "errors": stats.errors,
        }
    )


def writer_worker(cache_dir: str, ready: Any, seed: int) -> None:
    """Write large entries forever, so that a SIGKILL lands in the middle of transactions."""
    cache = ResponseCache(cache_dir=Path(cache_dir), secret=SECRET, max_disk_mb=4, max_memory_mb=0)
    rng = random.Random(seed)
    i = 0
    while True:
        key = f"w{rng.randrange(200)}"
        cache.set(key, response_for(key, rng.randrange(10_000, 200_000)), agent="writer")
        i += 1
        if i == 10:
            ready.set()


def test_hammer_from_threads_in_several_processes(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    cache_dir = tmp_path / "cache"
    procs = [ctx.Process(target=hammer_worker, args=(str(cache_dir), 2.0, 4, seed, out)) for seed in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert [r["exceptions"] for r in results] == [[], []]
    assert sum(r["bad"] for r in results) == 0
    assert sum(r["integrity_failures"] for r in results) == 0
    assert sum(r["ops"] for r in results) > 0
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, max_disk_mb=LIMIT_MB) as cache:
        assert cache.stats().bytes <= LIMIT_MB * MB
        report = cache.verify()
        assert report.clean
        assert report.checked > 0


def test_sigkill_mid_write_never_leads_to_a_corrupt_entry_being_served(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    cache_dir = tmp_path / "cache"
    for round_ in range(2):
        ready = ctx.Event()
        child = ctx.Process(target=writer_worker, args=(str(cache_dir), ready, round_))
        child.start()
        assert ready.wait(timeout=60), "the writer never got going"
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
        assert child.exitcode == -signal.SIGKILL
    conn = sqlite3.connect(cache_dir / DB_NAME)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, max_memory_mb=0) as cache:
        for i in range(200):
            key = f"w{i}"
            assert valid(key, cache.get(key))
        report = cache.verify()
        assert report.corrupt == 0
        assert report.checked > 0
        assert cache.stats().integrity_failures == 0
