"""``python -m benchmarks [--only w2[,w5]] [--reps N] [--quick] [--profile]``: run the suite, write the report.

Results go to ``benchmarks/results/latest.json`` (merged with the previous file for workloads not run),
``benchmarks/results/chart.svg`` and the generated block of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks import report, workloads, workloads_local, workloads_scaling
from benchmarks.harness import Emulator, EmulatorOptions, machine_info, run_module
from benchmarks.workloads import AGENT, Context, prepare_project

WORKLOADS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "w1": workloads.w1,
    "w2": workloads.w2,
    "w2x": workloads_scaling.w2x,
    "w3": workloads.w3,
    "w4": workloads.w4,
    "w5": workloads.w5,
    "w6": workloads.w6,
    "w7": workloads_local.w7,
    "w8": workloads_local.w8,
    "w9": workloads_scaling.w9,
    "security": workloads_local.security,
}


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def profile_w2(ctx: Context, out: Path, *, n: int = 3000) -> dict[str, Any]:
    """claude-force under pyinstrument at 0 ms latency (CPU-bound), W2's concurrency; top self time."""
    with Emulator(EmulatorOptions(latency_ms=0)) as emu:
        argv = [
            "--url",
            emu.url,
            "--n",
            str(n),
            "--concurrency",
            "100",
            "--warmup",
            "5",
            "--config",
            str(ctx.config),
            "--agent",
            AGENT,
            "--profile",
            str(out),
        ]
        return run_module("benchmarks.clients.claude_force_client", argv, timeout=300)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--only", default=None, help=f"comma-separated workloads: {', '.join(WORKLOADS)}")
    p.add_argument("--reps", type=int, default=3, help="repetitions of W1 and W2 (W2X runs 2, others 1)")
    p.add_argument(
        "--quick", action="store_true", help="5x fewer tasks, 1 rep, nothing written: a smoke test"
    )
    p.add_argument(
        "--profile", action="store_true", help="also profile claude-force (pyinstrument) under load"
    )
    p.add_argument("--profile-only", action="store_true", help="only the pyinstrument profile (no workloads)")
    p.add_argument("--report-only", action="store_true", help="rewrite the chart and docs from latest.json")
    p.add_argument("--no-write", action="store_true", help="do not write results or docs")
    return p


def run_workloads(chosen: list[str], ctx: Context) -> dict[str, Any]:
    """Run each chosen workload; one that raises is recorded with its error and the rest still run."""
    results: dict[str, Any] = {}
    for wid in chosen:
        log(f"== {wid}")
        t0 = time.perf_counter()
        try:
            result = WORKLOADS[wid](ctx)
        except Exception as exc:  # one broken workload must not lose the others
            log(traceback.format_exc())
            result = {"id": wid, "title": wid, "error": f"{type(exc).__name__}: {exc}", "targets": []}
        result["duration_s"] = round(time.perf_counter() - t0, 1)
        result["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        results[wid] = result
        log(f"   {wid} took {result['duration_s']} s")
    return results


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.report_only:
        previous = report.load_previous()
        if previous is None:
            p.error(f"no results in {report.LATEST}; run the benchmarks first")
        report.write_all(previous)
        log(f"wrote {report.CHART} and {report.DOC} from {report.LATEST}")
        return 0
    if args.profile_only:
        chosen: list[str] = []
    elif args.only:
        chosen = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    else:
        chosen = list(WORKLOADS)
    unknown = [w for w in chosen if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    full_run = chosen == list(WORKLOADS) and not args.quick
    started = time.perf_counter()
    profile: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="cf-bench-") as tmp:
        ctx = prepare_project(Path(tmp))
        ctx.reps = 1 if args.quick else max(1, args.reps)
        ctx.quick = args.quick
        ctx.ablation_reps = 1 if args.quick else 2
        ctx.log = log
        results = run_workloads(chosen, ctx)
        if args.profile or args.profile_only:
            log("== profile (claude-force, pyinstrument)")
            profile = profile_w2(ctx, report.RESULTS / "profile_w2.txt")
    total = round(time.perf_counter() - started, 1)
    log(f"== total {total} s")
    doc: dict[str, Any] = {
        "machine": machine_info(),
        "total_s": total if full_run else None,
        "this_run": {"workloads": chosen, "seconds": total, "quick": args.quick, "reps": ctx.reps},
        "workloads": results,
    }
    if profile is not None:
        doc["profile"] = profile
    if not (args.no_write or args.quick):
        previous = report.load_previous() or {}
        merged = report.merge(previous, doc)
        for key in ("total_s", "profile"):
            if merged.get(key) is None and previous.get(key) is not None:
                merged[key] = previous[key]
        report.write_all(merged)
        log(f"wrote {report.LATEST}, {report.CHART} and {report.DOC}")
    for w in results.values():
        for t in w.get("targets", []):
            mark = "n/a" if t["pass"] is None else ("PASS" if t["pass"] else "MISS")
            log(f"{w['id']:>8}  {mark:4}  {t['name']}: {t['value']} ({t['target']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
