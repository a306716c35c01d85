"""RSS of a process holding a large disk cache behind a bounded memory tier (``ResponseCache``).

Writes ``--entries`` responses (about 600-byte payloads) through ``ResponseCache.store_later`` (the write-behind
path the pipeline uses on every miss: batched transactions, a byte-bounded queue) with a ``--memory-mb`` memory
tier, sampling the current RSS every 10%, flushes, then reads a random sample back. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.clients._common import emit, peak_rss_mb

_MB = 1024 * 1024


def rss_mb() -> float:
    """Current resident set size from /proc (Linux), else the peak."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / _MB
    except (OSError, ValueError):
        return peak_rss_mb()


def run(entries: int, memory_mb: float, reads: int, time_budget_s: float) -> dict[str, Any]:
    from claude_force.cache import ResponseCache
    from claude_force.models import Response, Usage

    text = "x" * 120
    with tempfile.TemporaryDirectory(prefix="cf-cache-rss-") as tmp:
        cache = ResponseCache(
            cache_dir=Path(tmp),
            secret=secrets.token_hex(32),
            max_memory_mb=memory_mb,
            max_disk_mb=100_000,
            ttl_hours=24,
        )
        rss0 = rss_mb()
        samples: list[dict[str, float]] = []
        step = max(1, entries // 10)
        start = time.perf_counter()
        written = 0
        for i in range(entries):
            key = f"{i:064x}"
            response = Response(
                text=f"{i} {text}", model="claude-sonnet-5-5", usage=Usage(100, 120), request_id=f"req_{i}"
            )
            cache.store_later(key, response, agent="bench")
            written += 1
            if written % step == 0:
                samples.append({"entries": written, "rss_mb": round(rss_mb(), 1)})
                if time.perf_counter() - start > time_budget_s:
                    break
        cache.flush()  # every entry is on disk before the clock stops
        write_s = time.perf_counter() - start
        rss_written = rss_mb()
        rng = random.Random(1)
        start = time.perf_counter()
        hits = 0
        for _ in range(reads):
            hits += cache.get(f"{rng.randrange(written):064x}") is not None
        read_s = time.perf_counter() - start
        stats = cache.stats().to_dict()
        db_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.is_file())
        cache.close()
    return {
        "entries_requested": entries,
        "entries_written": written,
        "memory_tier_mb": memory_mb,
        "rss_start_mb": round(rss0, 1),
        "rss_after_writes_mb": round(rss_written, 1),
        "rss_after_reads_mb": round(rss_mb(), 1),
        "rss_growth_mb": round(rss_written - rss0, 1),
        "samples": samples,
        "write_us_per_entry": round(write_s * 1e6 / max(1, written), 1),
        "reads": reads,
        "read_hits": hits,
        "read_us_per_get": round(read_s * 1e6 / max(1, reads), 1),
        "disk_mb": round(db_bytes / _MB, 1),
        "memory_entries": stats.get("memory_entries"),
        "memory_bytes_mb": round(stats.get("memory_bytes", 0) / _MB, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--memory-mb", type=float, default=50.0)
    p.add_argument("--reads", type=int, default=20_000)
    p.add_argument("--time-budget-s", type=float, default=120.0, help="stop writing after this long")
    args = p.parse_args()
    emit(run(args.entries, args.memory_mb, args.reads, args.time_budget_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
