"""The emulator workloads W1-W6 and W9: each starts its own emulator and runs the clients in turn.

Each workload returns a dict: ``id``, ``title``, ``params``, ``emulator`` (its options), ``clients`` (per
client: ``median`` and ``runs``), ``ratios``, ``targets`` (``name``, ``value``, ``target``, ``pass``) and
``notes``. Repetitions interleave the clients (floor, sdk, ..., floor, sdk, ...) to spread machine noise.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks.harness import Emulator, EmulatorOptions, median_of, ratio, run_client

#: The agent every throughput workload uses (written by ``claude_force.cli.project.write_project``).
AGENT = "code-reviewer"
#: W6's agent: an 8,000-character definition.
LONG_AGENT = "bench-long"
LONG_AGENT_CHARS = 8000


@dataclass(kw_only=True)
class Context:
    """Shared by all workloads of one run: the project and the system texts the peers send."""

    workdir: Path
    config: Path
    system_file: Path
    long_system_file: Path
    reps: int = 3
    ablation_reps: int = 2
    quick: bool = False
    log: Callable[[str], None] = print
    extra: dict[str, Any] = field(default_factory=dict)

    def scale(self, n: int) -> int:
        """Task counts shrink 5x in ``--quick`` mode (a smoke test, not a measurement)."""
        return max(20, n // 5) if self.quick else n


def prepare_project(workdir: Path) -> Context:
    """Write a ``.claude/`` project plus W6's long agent; write the exact system text each agent sends."""
    from claude_force.cli.project import write_project
    from claude_force.config import load_config
    from claude_force.prompt import build_system

    config_path = write_project(workdir)
    root = config_path.parent
    unit = "Review code for correctness, security and performance; cite the line and propose a concrete fix. "
    text = "# Long reviewer\n\n" + (unit * (LONG_AGENT_CHARS // len(unit) + 1))
    (root / "agents" / f"{LONG_AGENT}.md").write_text(text[:LONG_AGENT_CHARS], encoding="utf-8")
    doc = orjson.loads(config_path.read_bytes())
    doc["agents"][LONG_AGENT] = {"file": f"agents/{LONG_AGENT}.md", "domains": ["review"]}
    config_path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    cfg = load_config(config_path)
    system_file = workdir / "system.txt"
    system_file.write_text(build_system(cfg.agent(AGENT)), encoding="utf-8")
    long_file = workdir / "system-long.txt"
    long_file.write_text(build_system(cfg.agent(LONG_AGENT)), encoding="utf-8")
    return Context(workdir=workdir, config=config_path, system_file=system_file, long_system_file=long_file)


def client_args(ctx: Context, name: str, *, long: bool = False) -> list[str]:
    """Arguments that make every client send the same system prompt and tasks."""
    if name.startswith("claude_force"):
        return ["--config", str(ctx.config), "--agent", LONG_AGENT if long else AGENT]
    return ["--system-file", str(ctx.long_system_file if long else ctx.system_file)]


def run_clients(
    ctx: Context,
    emu: Emulator,
    clients: Sequence[str],
    *,
    n: int,
    concurrency: int,
    reps: int,
    extra: dict[str, list[str]] | None = None,
    timeout: float = 180.0,
) -> dict[str, dict[str, Any]]:
    """Interleaved repetitions; per client ``{"median": ..., "runs": [...]}``."""
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    for rep in range(reps):
        for name in clients:
            argv = [*client_args(ctx, name), *(extra or {}).get(name, [])]
            result = run_client(name, emu, n=n, concurrency=concurrency, extra=argv, timeout=timeout)
            runs[name].append(result)
            ctx.log(f"    {name} rep {rep + 1}/{reps}: {brief(result)}")
    return {name: {"median": median_of(rs), "runs": rs} for name, rs in runs.items()}


def brief(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"ERROR {str(r['error'])[:200]}"
    emu = r.get("emulator", {})
    return (
        f"ok={r.get('ok')} failed={r.get('failed')} wall={r.get('wall_s')}s cpu/call={r.get('cpu_ms_per_call')}ms "
        f"requests={emu.get('requests')} 429s={emu.get('status_429')} process={r.get('process_s')}s"
    )


def add_ratios(result: dict[str, Any]) -> None:
    """CPU/call and wall of each client relative to the floor and to claude-force (medians)."""
    meds = {name: c["median"] for name, c in result["clients"].items()}
    floor, cf = meds.get("floor", {}), meds.get("claude_force", {})
    result["ratios"] = {
        name: {
            "cpu_vs_floor": ratio(m.get("cpu_ms_per_call"), floor.get("cpu_ms_per_call")),
            "wall_vs_floor": ratio(m.get("wall_s"), floor.get("wall_s")),
            "cpu_vs_claude_force": ratio(m.get("cpu_ms_per_call"), cf.get("cpu_ms_per_call")),
            "wall_vs_claude_force": ratio(m.get("wall_s"), cf.get("wall_s")),
        }
        for name, m in meds.items()
    }


def target(name: str, value: float | None, limit: float, *, op: str = "<=") -> dict[str, Any]:
    """One target: ``value op limit`` with ``op`` one of ``<=``, ``>=``, ``==``; pass is None when unmeasured."""
    checks = {
        "<=": value is not None and value <= limit,
        ">=": value is not None and value >= limit,
        "==": value is not None and value == limit,
    }
    return {
        "name": name,
        "value": value,
        "target": f"{op} {limit:g}",
        "pass": None if value is None else checks[op],
    }


def _med(result: dict[str, Any], client: str, key: str) -> Any:
    return result["clients"].get(client, {}).get("median", {}).get(key)


def _emu_med(result: dict[str, Any], client: str, key: str) -> Any:
    return result["clients"].get(client, {}).get("median", {}).get("emulator", {}).get(key)


PEERS = ("floor", "sdk", "litellm", "claude_force")


def w1(ctx: Context) -> dict[str, Any]:
    """W1 overhead: 0 ms latency, so wall and CPU are the clients' own cost."""
    n, conc = ctx.scale(1000), 50
    opts = EmulatorOptions(latency_ms=0)
    reps = min(ctx.reps, 2)  # W1 carries no target; two repetitions keep a full `make bench` under 10 minutes
    with Emulator(opts) as emu:
        clients = run_clients(
            ctx, emu, PEERS, n=n, concurrency=conc, reps=reps, extra=warm(PEERS), timeout=240
        )
    result = new_result("w1", "Overhead: 1000 calls, 0 ms latency, concurrency 50", n, conc, opts, clients)
    add_ratios(result)
    return result


def w2(ctx: Context) -> dict[str, Any]:
    """W2 throughput: 100 +/- 20 ms latency, concurrency 100; ideal wall 1.0 s."""
    n, conc = ctx.scale(1000), 100
    names = (*PEERS, "claude_force_screen", "claude_force_sdk")
    opts = EmulatorOptions(latency_ms=100, jitter_ms=20)
    # The W2 pipeline: limiter, breaker, cache miss, tracker (plus retry, single-flight, warm-up, canary).
    # The injection screen is measured separately (claude_force_screen, the default configuration).
    extra = warm(names)
    for name in ("claude_force", "claude_force_sdk"):
        extra[name] = [*extra.get(name, []), "--set", "injection_policy_override=off"]
    with Emulator(opts) as emu:
        clients = run_clients(ctx, emu, names, n=n, concurrency=conc, reps=ctx.reps, extra=extra, timeout=240)
    result = new_result(
        "w2", "Throughput: 1000 calls, 100 +/- 20 ms latency, concurrency 100", n, conc, opts, clients
    )
    result["params"]["ideal_wall_s"] = n / conc * 0.1
    add_ratios(result)
    r = result["ratios"].get("claude_force", {})
    result["targets"] = [
        target("claude-force CPU/call vs floor", r.get("cpu_vs_floor"), 1.5),
        target(
            "claude-force CPU/call vs raw SDK",
            ratio(_med(result, "claude_force", "cpu_ms_per_call"), _med(result, "sdk", "cpu_ms_per_call")),
            0.25,
        ),
        target("claude-force wall vs floor", r.get("wall_vs_floor"), 1.15),
        target("claude-force ok", _med(result, "claude_force", "ok"), n, op=">="),
    ]
    return result


def w3(ctx: Context) -> dict[str, Any]:
    """W3: the server allows 1200 rpm (20/s, burst 20); peers use their defaults, claude-force rpm=1200."""
    n, conc = ctx.scale(200), 50
    names = ("sdk", "litellm", "claude_force")
    opts = EmulatorOptions(latency_ms=50, rpm=1200)
    extra = {"claude_force": ["--limits", "none", "--rpm", "1200"]}
    with Emulator(opts) as emu:
        clients = run_clients(ctx, emu, names, n=n, concurrency=conc, reps=1, extra=extra, timeout=240)
    result = new_result(
        "w3", "Rate-limited server: 1200 rpm, 200 tasks, concurrency 50", n, conc, opts, clients
    )
    ideal = n / 20.0
    result["params"]["ideal_wall_s"] = ideal
    result["targets"] = [
        target("claude-force ok", _med(result, "claude_force", "ok"), n, op=">="),
        target("claude-force 429s", _emu_med(result, "claude_force", "status_429"), 2),
        target("claude-force wall vs ideal", ratio(_med(result, "claude_force", "wall_s"), ideal), 1.1),
    ]
    return result


def w4(ctx: Context) -> dict[str, Any]:
    """W4 fault storm: 10% 429 (retry-after 1), 5% 529, 5% 500, 1% null content; default settings."""
    n, conc = ctx.scale(1000), 50
    names = ("sdk", "litellm", "claude_force")
    opts = EmulatorOptions(latency_ms=50, p429=0.10, retry_after=1, p529=0.05, p500=0.05, pnull=0.01)
    extra = {"claude_force": ["--limits", "none"]}
    with Emulator(opts) as emu:
        clients = run_clients(ctx, emu, names, n=n, concurrency=conc, reps=1, extra=extra, timeout=300)
    result = new_result("w4", "Fault storm: 1000 tasks, 21% faults, concurrency 50", n, conc, opts, clients)
    result["targets"] = [target("claude-force ok", _med(result, "claude_force", "ok"), n, op=">=")]
    return result


def w5(ctx: Context) -> dict[str, Any]:
    """W5 duplicates: 500 tasks, 251 distinct; claude-force twice on one cache dir + secret."""
    n, distinct, conc = ctx.scale(500), ctx.scale(251), 100
    names = ("floor", "sdk", "litellm", "claude_force")
    opts = EmulatorOptions(latency_ms=50)
    common = ["--distinct", str(distinct)]
    with tempfile.TemporaryDirectory(prefix="cf-w5-") as tmp:
        cf = ["--cache-dir", str(Path(tmp) / "cache"), "--cache-secret", secrets.token_hex(32)]
        extra = {name: [*common] for name in names}
        extra["floor"].append("--dedup")
        extra["claude_force"] += cf
        with Emulator(opts) as emu:
            clients = run_clients(ctx, emu, names, n=n, concurrency=conc, reps=1, extra=extra, timeout=240)
            second = run_clients(ctx, emu, ("claude_force",), n=n, concurrency=conc, reps=1, extra=extra)
    clients["claude_force_second_run"] = second["claude_force"]
    result = new_result("w5", "Duplicates: 500 tasks, 251 distinct, concurrency 100", n, conc, opts, clients)
    result["params"]["distinct"] = distinct
    result["targets"] = [
        target(
            "claude-force upstream calls, first run",
            _emu_med(result, "claude_force", "requests"),
            distinct,
            op="==",
        ),
        target(
            "claude-force upstream calls, second run",
            _emu_med(result, "claude_force_second_run", "requests"),
            0,
            op="==",
        ),
        target("claude-force ok (second run)", _med(result, "claude_force_second_run", "ok"), n, op=">="),
    ]
    result["notes"].append(
        "The floor here coalesces identical tasks in memory (--dedup): the lean lower bound."
    )
    return result


def billed_input(emu: dict[str, Any]) -> float | None:
    """Input cost in units of the input price: uncached x1 + cache writes x1.25 + cache reads x0.1."""
    if not emu:
        return None
    units = (
        float(emu.get("input_tokens", 0))
        + 1.25 * float(emu.get("cache_creation_input_tokens", 0))
        + 0.1 * float(emu.get("cache_read_input_tokens", 0))
    )
    return round(units, 1)


def w6(ctx: Context) -> dict[str, Any]:
    """W6 prompt caching: 100 tasks to one agent with an 8,000-character definition, concurrency 50."""
    n, conc = ctx.scale(100), 50
    names = ("floor", "sdk", "litellm", "claude_force")
    opts = EmulatorOptions(latency_ms=50)
    clients: dict[str, dict[str, Any]] = {}
    with Emulator(opts) as emu:
        for label, name, extra in (
            *((c, c, []) for c in names),
            ("claude_force_prompt_cache_off", "claude_force", ["--prompt-cache", "off"]),
        ):
            argv = [*client_args(ctx, name, long=True), *extra]
            r = run_client(name, emu, n=n, concurrency=conc, extra=argv, timeout=180)
            r["client"] = label
            r["billed_input_units"] = None if "error" in r else billed_input(r.get("emulator", {}))
            ctx.log(f"    {label}: {brief(r)} billed={r['billed_input_units']}")
            med = median_of([r])
            med["billed_input_units"] = r["billed_input_units"]
            clients[label] = {"median": med, "runs": [r]}
    result = new_result(
        "w6", "Prompt caching: 100 tasks, 8,000-character agent, concurrency 50", n, conc, opts, clients
    )
    on = clients["claude_force"]["median"].get("billed_input_units")
    off = clients["claude_force_prompt_cache_off"]["median"].get("billed_input_units")
    result["ratios"] = {
        label: {"billed_vs_claude_force": ratio(c["median"].get("billed_input_units"), on)}
        for label, c in clients.items()
    }
    result["targets"] = [target("billed input, default vs prompt caching off", ratio(on, off), 0.15)]
    return result


def warm(names: Sequence[str]) -> dict[str, list[str]]:
    return {name: ["--warmup", "5"] for name in names}


def new_result(
    wid: str, title: str, n: int, conc: int, opts: EmulatorOptions, clients: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": wid,
        "title": title,
        "params": {"n": n, "concurrency": conc},
        "emulator": opts.as_dict(),
        "clients": clients,
        "ratios": {},
        "targets": [],
        "notes": [],
    }
