"""Tracker cost: RSS growth over 100,000 records and time per ``record()`` call, with and without the sink.

Targets: RSS growth <= 30 MB over 100k records; well under 20 us per record (it runs on the hot path).
Run alone with ``python -m benchmarks.bench_tracker``.
"""

from __future__ import annotations

import gc
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from claude_force.models import AgentResult
from claude_force.tracking import PerformanceTracker

RECORDS = 100_000
AGENTS = [f"agent-{i}" for i in range(20)]
MODELS = ["claude-sonnet-5-5", "claude-haiku-4-5", "claude-opus-5"]


def rss_bytes() -> int:
    """Current resident set size (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def make_results(n: int, seed: int = 1) -> list[AgentResult]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ok = rng.random() > 0.05
        out.append(
            AgentResult(
                agent_name=rng.choice(AGENTS),
                success=ok,
                error_code=None if ok else "overloaded",
                metadata={
                    "model": rng.choice(MODELS),
                    "latency_ms": rng.lognormvariate(6.0, 0.7),
                    "attempts": 1 if ok else 3,
                    "input_tokens": rng.randint(100, 5_000),
                    "output_tokens": rng.randint(50, 1_000),
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": rng.randint(0, 2_000),
                    "cost_usd": rng.uniform(0.0001, 0.02),
                    "cached": rng.random() < 0.1,
                    "coalesced": False,
                },
            )
        )
    return out


def time_per_record(tracker: PerformanceTracker, results: list[AgentResult], rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean microseconds per ``record()``."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for r in results:
            tracker.record(r)
        samples.append((time.perf_counter() - start) / len(results) * 1e6)
    return statistics.median(samples)


def run() -> dict[str, Any]:
    results = make_results(RECORDS)
    gc.collect()
    before = rss_bytes()
    tracker = PerformanceTracker()
    start = time.perf_counter()
    for r in results:
        tracker.record(r)
    elapsed = time.perf_counter() - start
    gc.collect()
    growth = rss_bytes() - before
    summary = tracker.summary()

    sample = results[:20_000]
    plain_us = time_per_record(PerformanceTracker(), sample)
    with tempfile.TemporaryDirectory() as tmp:
        sinked = PerformanceTracker(sink_dir=Path(tmp) / "metrics")
        sink_us = time_per_record(sinked, sample)
        close_start = time.perf_counter()
        sinked.close()
        close_s = time.perf_counter() - close_start
        s = sinked.summary()
        sink_stats = {"written": s.sink_written, "dropped": s.sink_dropped, "errors": s.sink_errors}

    return {
        "records": RECORDS,
        "rss_growth_mb": round(growth / 1e6, 2),
        "rss_growth_target_mb": 30,
        "ring_len": summary.ring_len,
        "agents": summary.agents,
        "models": summary.models,
        "first_pass_us_per_record": round(elapsed / RECORDS * 1e6, 2),
        "us_per_record": round(plain_us, 2),
        "us_per_record_with_sink": round(sink_us, 2),
        "us_per_record_target": 20,
        "sink_close_seconds": round(close_s, 3),
        "sink": sink_stats,
        "p95_ms": summary.total.latency.p95_ms,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
