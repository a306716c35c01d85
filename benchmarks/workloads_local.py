"""Workloads without the emulator: W7 cache operations, W8 memory, and the injection-screen figures.

The micro-benchmarks themselves belong to other modules (``benchmarks.bench_cache``, ``bench_tracker``,
``bench_injection``); each is called in a fresh process so its memory and crashes stay out of the harness. A
module that does not exist yet is reported as not available.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any

from benchmarks.harness import run_module
from benchmarks.workloads import Context, target

#: W8's large-cache run: how many entries, and the most time it may spend writing them.
CACHE_RSS_ENTRIES = 1_000_000
CACHE_RSS_WRITE_BUDGET_S = 150.0


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def call(module: str, function: str, *, timeout: float, **kwargs: Any) -> dict[str, Any]:
    """``module.function(**kwargs)`` in a fresh process; ``{"error": ...}`` if it is missing or fails."""
    if not _available(module):
        return {"error": f"{module} is not available"}
    argv = [module, function, "--kwargs", json.dumps(kwargs)]
    return run_module("benchmarks.clients.call", argv, timeout=timeout)


def _has(module: str, name: str) -> bool:
    """Whether ``module`` defines ``name`` (read from its source: importing it here would cost the harness)."""
    if not _available(module):
        return False
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return False
    with open(spec.origin, encoding="utf-8") as fh:
        return f"def {name}(" in fh.read()


def w7(ctx: Context) -> dict[str, Any]:
    """W7 cache operations: ``benchmarks.bench_cache.run()`` and ``hammer(seconds=20)`` (vs diskcache)."""
    result = _blank("w7", "Cache operations (vs diskcache)")
    module = "benchmarks.bench_cache"
    ops = call(module, "run", timeout=300)
    result["bench_cache_run"] = ops
    ctx.log(f"    bench_cache.run: {_brief(ops)}")
    if _has(module, "hammer"):
        seconds = 5 if ctx.quick else 20
        hammer = call(module, "hammer", timeout=seconds + 120, seconds=seconds)
        result["bench_cache_hammer"] = hammer
        ctx.log(f"    bench_cache.hammer({seconds}): {_brief(hammer)}")
    else:
        result["notes"].append("bench_cache.hammer() is not available.")
    return result


def w8(ctx: Context) -> dict[str, Any]:
    """W8 memory: tracker RSS over 100k tasks; RSS over a large disk cache behind a 50 MB memory tier."""
    result = _blank("w8", "Memory: tracker over 100k tasks, large disk cache with a 50 MB memory tier")
    tracker = call("benchmarks.bench_tracker", "run", timeout=300)
    result["bench_tracker"] = tracker
    ctx.log(f"    bench_tracker.run: {_brief(tracker)}")
    growth = tracker.get("result", {}).get("rss_growth_mb")
    entries = CACHE_RSS_ENTRIES // 10 if ctx.quick else CACHE_RSS_ENTRIES
    rss = run_module(
        "benchmarks.clients.cache_rss",
        ["--entries", str(entries), "--memory-mb", "50", "--time-budget-s", str(CACHE_RSS_WRITE_BUDGET_S)],
        timeout=CACHE_RSS_WRITE_BUDGET_S + 120,
    )
    result["cache_rss"] = rss
    ctx.log(f"    cache_rss: {_brief(rss)}")
    result["targets"] = [target("tracker RSS growth over 100k tasks (MB)", growth, 30)]
    samples = rss.get("samples") or []
    if len(samples) >= 2:
        half = samples[len(samples) // 2 - 1]["rss_mb"]
        plateau = round(samples[-1]["rss_mb"] - half, 1)
        result["cache_rss_second_half_growth_mb"] = plateau
        result["targets"].append(
            target("cache RSS growth over the second half of the writes (MB)", plateau, 5)
        )
    per_entry = rss.get("write_us_per_entry")
    written = rss.get("entries_written", 0)
    result["notes"].append(
        f"{written:,} of {entries:,} entries written through `ResponseCache.store_later` (the pipeline's "
        f"write-behind path: batched transactions, a byte-bounded queue) in {per_entry} us each, wall, "
        f"disk-bound; writing stops after {CACHE_RSS_WRITE_BUDGET_S:.0f} s if the disk is slower than that."
    )
    return result


def security(ctx: Context) -> dict[str, Any]:
    """Injection screen: detection and false-positive rates per split (``benchmarks.bench_injection.run()``)."""
    result = _blank("security", "Injection screen: detection / false positives")
    out = call("benchmarks.bench_injection", "run", timeout=300)
    result["bench_injection"] = out
    splits = out.get("result", {}).get("splits", {})

    def pct(split: str, key: str) -> float | None:
        value = splits.get(split, {}).get("levels", {}).get("flag", {}).get(key)
        return None if value is None else round(100 * float(value), 1)

    result["targets"] = [
        *(
            target(f"{s} detection (%)", pct(s, "detection_rate"), 95, op=">=")
            for s in ("heldout", "external", "wave2_heldout")
        ),
        *(
            target(f"{s} false-positive rate (%)", pct(s, "fp_rate"), 1)
            for s in ("heldout", "external", "wave2_heldout")
        ),
        target("authored_nl false-positive rate (%)", pct("authored_nl", "fp_rate"), 1),
    ]
    ctx.log(f"    bench_injection.run: {_brief(out)}")
    return result


def _brief(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"ERROR {str(r['error'])[:200]}"
    return f"ok in {r.get('elapsed_s', '?')} s (process {r.get('process_s', '?')} s)"


def _blank(wid: str, title: str) -> dict[str, Any]:
    return {"id": wid, "title": title, "params": {}, "clients": {}, "ratios": {}, "targets": [], "notes": []}
