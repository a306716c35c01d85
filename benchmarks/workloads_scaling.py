"""Where the time goes and how it scales: W2X (ablation of claude-force's pipeline) and W9 (concurrency).

W2X runs claude-force under W2's load with one part of the pipeline off at a time. W9 runs the floor and
claude-force at concurrency 10, 100 and 1000 and checks that CPU per call does not grow with concurrency or
with the number of tasks already done.
"""

from __future__ import annotations

from typing import Any

from benchmarks.harness import Emulator, EmulatorOptions, median_of, ratio, run_client
from benchmarks.workloads import Context, brief, client_args, new_result, run_clients, target, warm

#: W2X: claude-force under W2's load with one part of the pipeline off at a time (label -> client arguments).
ABLATIONS: dict[str, list[str]] = {
    "full pipeline": [],
    "no response cache": ["--no-cache"],
    "no injection screen": ["--set", "injection_policy_override=off"],
    "no cache, screen, canary or limits": [
        "--no-cache",
        "--set",
        "injection_policy_override=off",
        "--set",
        "canary=false",
        "--limits",
        "none",
    ],
}


def w2x(ctx: Context) -> dict[str, Any]:
    """W2X: where claude-force's CPU per call goes under W2's load (one run per variant, plus the floor)."""
    n, conc = ctx.scale(1000), 100
    opts = EmulatorOptions(latency_ms=100, jitter_ms=20)
    clients: dict[str, dict[str, Any]] = {}
    with Emulator(opts) as emu:
        for rep in range(ctx.ablation_reps):
            for label, extra in (("floor", []), *((f"claude_force: {k}", v) for k, v in ABLATIONS.items())):
                name = "floor" if label == "floor" else "claude_force"
                argv = [*client_args(ctx, name), "--warmup", "5", *extra]
                r = run_client(name, emu, n=n, concurrency=conc, extra=argv, timeout=180)
                r["client"] = label
                ctx.log(f"    {label} rep {rep + 1}: {brief(r)}")
                clients.setdefault(label, {"runs": []})["runs"].append(r)
    for c in clients.values():
        c["median"] = median_of(c["runs"])
    result = new_result(
        "w2x", "Ablation: claude-force at W2's load with parts of the pipeline off", n, conc, opts, clients
    )
    floor_cpu = clients["floor"]["median"].get("cpu_ms_per_call")
    full_cpu = clients["claude_force: full pipeline"]["median"].get("cpu_ms_per_call")
    result["ratios"] = {
        label: {
            "cpu_vs_floor": ratio(c["median"].get("cpu_ms_per_call"), floor_cpu),
            "cpu_saved_ms": None
            if full_cpu is None or c["median"].get("cpu_ms_per_call") is None
            else round(full_cpu - c["median"]["cpu_ms_per_call"], 3),
        }
        for label, c in clients.items()
    }
    return result


def w9(ctx: Context) -> dict[str, Any]:
    """W9 scaling: CPU/call and wall at concurrency 10, 100, 1000 (100 ms latency)."""
    plan = ((10, ctx.scale(500)), (100, ctx.scale(2000)), (1000, ctx.scale(5000)))
    names = ("floor", "claude_force")
    opts = EmulatorOptions(latency_ms=100, jitter_ms=20)
    clients: dict[str, dict[str, Any]] = {}
    with Emulator(opts) as emu:
        for conc, n in plan:
            out = run_clients(ctx, emu, names, n=n, concurrency=conc, reps=1, extra=warm(names), timeout=240)
            for name, c in out.items():
                c["median"]["n"] = n
                clients[f"{name}@{conc}"] = c
    result = new_result("w9", "Scaling: concurrency 10 / 100 / 1000, 100 ms latency", 0, 0, opts, clients)
    result["params"] = {"plan": [{"concurrency": c, "n": n} for c, n in plan]}
    slopes: dict[str, Any] = {}
    for name in names:
        cpu = {conc: clients[f"{name}@{conc}"]["median"].get("cpu_ms_per_call") for conc, _ in plan}
        lo, hi = cpu.get(plan[0][0]), cpu.get(plan[-1][0])
        slopes[name] = {
            "cpu_ms_per_call": cpu,
            "slope_ms_per_decade": None if lo is None or hi is None else round((hi - lo) / 2.0, 4),
            "cpu_1000_vs_10": ratio(hi, lo),
        }
    result["slopes"] = slopes
    # Growth with tasks done: CPU per call in the last third of the completions against the first. Measured on
    # the concurrency-100 run, which is in steady state: at 1000 every connection opens in the first third and
    # the tail only drains, which shapes both clients' thirds more than any growth would.
    steady = plan[1][0] if len(plan) > 1 else plan[-1][0]
    last_first = {}
    for name in names:
        t = clients.get(f"{name}@{steady}", {}).get("median", {}).get("thirds_cpu_ms_per_call")
        last_first[name] = ratio(t[2], t[0]) if t else None
    result["growth"] = {"concurrency": steady, "last_vs_first_third": last_first}
    growth = last_first.get("claude_force")
    result["targets"] = [
        target(
            "claude-force CPU/call at 1000 vs at 10 (flat or better)",
            slopes["claude_force"]["cpu_1000_vs_10"],
            1.1,
        ),
        target(
            f"claude-force CPU/call, last vs first third of the concurrency-{steady} run (no growth)",
            growth,
            1.1,
        ),
    ]
    return result
