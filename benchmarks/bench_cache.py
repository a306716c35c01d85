"""Response cache speed and robustness: median get (memory tier), get (disk tier), set, with a 2 KB response,
beside diskcache's JSONDisk on the same data; and a multi-process hammer.

Targets: memory-tier hit median <= 20 us, disk-tier hit <= 100 us, set <= 300 us. Hammer: 8 threads in each of 4
processes doing mixed get/set/delete for 20 s -> 0 exceptions, 0 integrity failures, size within the limit.
Run alone with ``python -m benchmarks.bench_cache [--hammer SECONDS]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from claude_force.cache import ResponseCache
from claude_force.models import Response, Usage

SECRET = "benchmark-cache-secret-0123456789abcdef"
N = 5_000
RESPONSE_BYTES = 2048
TARGETS_US = {"get_memory": 20.0, "get_disk": 100.0, "set": 300.0}
HAMMER_LIMIT_MB = 8.0


def make_response(key: str, size: int = RESPONSE_BYTES) -> Response:
    text = (f"{key}|" + "lorem ipsum dolor sit amet " * (size // 27 + 1))[:size]
    return Response(text=text, model="claude-sonnet-5-5", usage=Usage(1200, 480), stop_reason="end_turn")


def timed(op: Callable[[int], object], n: int) -> dict[str, float]:
    samples = []
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        op(i)
        samples.append(clock() - start)
    samples.sort()
    return {
        "median_us": round(statistics.median(samples) / 1000, 2),
        "p99_us": round(samples[int(len(samples) * 0.99)] / 1000, 2),
        "n": n,
    }


def bench_claude_force(root: Path, keys: list[str], responses: list[Response]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with ResponseCache(cache_dir=root / "cf", secret=SECRET) as cache:
        out["set"] = timed(lambda i: cache.set(keys[i], responses[i], agent="bench"), len(keys))
        rng = random.Random(1)
        order = [rng.randrange(len(keys)) for _ in range(len(keys))]
        out["get_memory"] = timed(lambda i: cache.get(keys[order[i]]), len(keys))
    # A fresh instance with the memory tier disabled: every hit reads, checks and parses from SQLite.
    with ResponseCache(cache_dir=root / "cf", secret=SECRET, max_memory_mb=0) as cache:
        rng = random.Random(2)
        order = [rng.randrange(len(keys)) for _ in range(len(keys))]
        out["get_disk"] = timed(lambda i: cache.get(keys[order[i]]), len(keys))
        stats = cache.stats()
        assert stats.disk_hits == len(keys) and stats.integrity_failures == 0
    return out


def bench_diskcache(root: Path, keys: list[str], responses: list[Response]) -> dict[str, Any] | None:
    try:
        import diskcache  # type: ignore[import-untyped]
    except ImportError:
        return None
    out: dict[str, Any] = {}
    cache = diskcache.Cache(str(root / "dc"), disk=diskcache.JSONDisk)
    try:
        out["set"] = timed(lambda i: cache.set(keys[i], responses[i].to_json()), len(keys))
        rng = random.Random(2)
        order = [rng.randrange(len(keys)) for _ in range(len(keys))]
        # Includes Response.from_json, so both sides hand back a Response.
        out["get_disk"] = timed(lambda i: Response.from_json(cache.get(keys[order[i]])), len(keys))
    finally:
        cache.close()
    out["note"] = "diskcache JSONDisk (no signature, no memory tier); get includes Response.from_json"
    return out


def run(n: int = N) -> dict[str, Any]:
    """Medians for memory-tier get, disk-tier get and set, for claude-force and (if importable) diskcache."""
    keys = [f"{i:064x}" for i in range(n)]
    responses = [make_response(k) for k in keys]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cf = bench_claude_force(root, keys, responses)
        dc = bench_diskcache(root, keys, responses)
    met = {name: cf[name]["median_us"] <= target for name, target in TARGETS_US.items()}
    return {
        "response_bytes": RESPONSE_BYTES,
        "claude_force": cf,
        "diskcache": dc,
        "targets_us": TARGETS_US,
        "targets_met": met,
    }


def _hammer_process(cache_dir: str, seconds: float, threads: int, seed: int, out: Any) -> None:
    cache = ResponseCache(cache_dir=Path(cache_dir), secret=SECRET, max_disk_mb=HAMMER_LIMIT_MB)
    lock = threading.Lock()
    totals = {"ops": 0, "bad": 0}
    exceptions: list[str] = []
    deadline = time.monotonic() + seconds

    def work(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        ops = bad = 0
        try:
            while time.monotonic() < deadline:
                key = f"k{rng.randrange(2000)}"
                roll = rng.random()
                if roll < 0.3:
                    cache.set(key, make_response(key, rng.randrange(200, 8000)), agent=f"agent{n % 4}")
                elif roll < 0.4:
                    cache.delete(key)
                else:
                    got = cache.get(key)
                    if got is not None and not got.text.startswith(f"{key}|"):
                        bad += 1
                ops += 1
        except BaseException as exc:  # counted, reported to the parent
            with lock:
                exceptions.append(repr(exc))
        with lock:
            totals["ops"] += ops
            totals["bad"] += bad

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    stats = cache.stats()
    cache.close()
    out.put({**totals, "exceptions": exceptions, **stats.to_dict()})


def hammer(seconds: float = 20, processes: int = 4, threads: int = 8) -> dict[str, Any]:
    """``threads`` threads in each of ``processes`` spawned processes doing mixed get/set/delete."""
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = str(Path(tmp) / "cache")
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=_hammer_process, args=(cache_dir, seconds, threads, seed, queue))
            for seed in range(processes)
        ]
        for p in procs:
            p.start()
        results = [queue.get(timeout=seconds + 120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        with ResponseCache(cache_dir=Path(cache_dir), secret=SECRET, max_disk_mb=HAMMER_LIMIT_MB) as cache:
            final = cache.stats()
            report = cache.verify()
    return {
        "seconds": seconds,
        "processes": processes,
        "threads_per_process": threads,
        "ops": sum(r["ops"] for r in results),
        "exceptions": sum(len(r["exceptions"]) for r in results),
        "wrong_values": sum(r["bad"] for r in results),
        "integrity_failures": sum(r["integrity_failures"] for r in results) + report.corrupt,
        "storage_errors": sum(r["errors"] for r in results),
        "hit_rate": round(
            sum(r["hits"] for r in results) / max(1, sum(r["hits"] + r["misses"] for r in results)), 3
        ),
        "final_bytes": final.bytes,
        "limit_bytes": int(HAMMER_LIMIT_MB * 1024 * 1024),
        "within_limit": final.bytes <= HAMMER_LIMIT_MB * 1024 * 1024,
        "exit_codes": [p.exitcode for p in procs],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_cache", description=__doc__)
    p.add_argument("--n", type=int, default=N, help="operations per measurement")
    p.add_argument("--hammer", type=float, default=0.0, help="also run the hammer for this many seconds")
    args = p.parse_args(argv)
    result: dict[str, Any] = {"speed": run(args.n)}
    if args.hammer > 0:
        result["hammer"] = hammer(args.hammer)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
