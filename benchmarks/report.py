"""Write ``benchmarks/results/latest.json``, ``benchmarks/results/chart.svg`` and ``docs/benchmarks.md``.

``docs/benchmarks.md`` keeps its hand-written text: only what lies between ``<!-- BEGIN GENERATED -->`` and
``<!-- END GENERATED -->`` is replaced. Results of workloads not run this time (``--only``) are kept from the
previous ``latest.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from benchmarks.chart import chart_svg
from benchmarks.harness import ROOT

RESULTS = ROOT / "benchmarks" / "results"
LATEST = RESULTS / "latest.json"
CHART = RESULTS / "chart.svg"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- BEGIN GENERATED -->", "<!-- END GENERATED -->"

#: The seed claude-force's figures; it is not installed here, so they are quoted, never measured or ratioed.
DESIGN_ANCHORS = (
    ("client CPU per call, 1000 calls at 100 ms, conc 100", "5.4 ms", "15.6 ms", "24.8 ms", "0.77 ms"),
    ("wall for that workload (ideal 1.0 s)", "5.5 s", "15.9 s", "24.4 s", "1.45 s"),
    ("server capped at 20 req/s, 200 tasks: succeeded / 429s", "122 / 283", "118 / 346", "200 / 296", "-"),
    ("1000 tasks, 20% transient faults + 1% null content: succeeded", "980", "985", "986", "-"),
    ("500 tasks with 251 distinct: upstream calls", "500", "500", "500", "251"),
)


def merge(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> dict[str, Any]:
    """The new document: this run's workloads replace the previous run's, the others are kept."""
    workloads = dict((previous or {}).get("workloads", {}))
    workloads.update(current["workloads"])
    return {**current, "workloads": workloads}


def load_previous() -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(LATEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def write_all(doc: Mapping[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    LATEST.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    w2 = doc["workloads"].get("w2")
    if w2 is not None:
        CHART.write_text(chart_svg(w2), encoding="utf-8")
    write_doc(render(doc))


# --- markdown ------------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _pct(x: Any) -> str:
    return "-" if not isinstance(x, (int, float)) else f"{100 * x:.1f}%"


def _pass(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**PASS**" if ok else "**MISS**")


def _clients(w: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out = []
    for name, c in w.get("clients", {}).items():
        med = c.get("median", {})
        out.append((name, med, med.get("emulator", {})))
    return out


def _crashed(med: Mapping[str, Any]) -> str | None:
    if med.get("runs_ok", 1) == 0:
        return f"failed: {str(med.get('error', '?'))[:120]}"
    return None


def render_speed(w: Mapping[str, Any]) -> list[str]:
    rows = []
    ratios = w.get("ratios", {})
    for name, med, emu in _clients(w):
        crash = _crashed(med)
        r = ratios.get(name, {})
        rows.append(
            [
                name,
                crash or _fmt(med.get("ok")),
                med.get("wall_s"),
                med.get("cpu_ms_per_call"),
                med.get("peak_rss_mb"),
                r.get("cpu_vs_floor"),
                r.get("wall_vs_floor"),
                r.get("cpu_vs_claude_force"),
                r.get("wall_vs_claude_force"),
                emu.get("requests"),
                f"{med.get('runs_ok', 0)}/{med.get('runs', 0)}",
            ]
        )
    headers = [
        "client",
        "ok",
        "wall s",
        "CPU ms/call",
        "peak RSS MB",
        "CPU vs floor",
        "wall vs floor",
        "CPU vs claude-force",
        "wall vs claude-force",
        "upstream requests",
        "runs",
    ]
    return table(headers, rows)


def render_faults(w: Mapping[str, Any]) -> list[str]:
    rows = []
    for name, med, emu in _clients(w):
        rows.append(
            [
                name,
                _crashed(med) or _fmt(med.get("ok")),
                med.get("failed"),
                emu.get("requests"),
                emu.get("status_429"),
                emu.get("status_529"),
                emu.get("status_500"),
                med.get("wall_s"),
                med.get("cpu_ms_per_call"),
            ]
        )
    return table(
        ["client", "ok", "failed", "upstream requests", "429s", "529s", "500s", "wall s", "CPU ms/call"], rows
    )


def render_dupes(w: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            name,
            _crashed(med) or _fmt(med.get("ok")),
            emu.get("requests"),
            emu.get("duplicate_bodies"),
            med.get("wall_s"),
        ]
        for name, med, emu in _clients(w)
    ]
    return table(["client", "ok", "upstream calls", "duplicate bodies seen", "wall s"], rows)


def render_prompt_cache(w: Mapping[str, Any]) -> list[str]:
    ratios = w.get("ratios", {})
    rows = [
        [
            name,
            _crashed(med) or _fmt(med.get("ok")),
            emu.get("input_tokens"),
            emu.get("cache_creation_input_tokens"),
            emu.get("cache_read_input_tokens"),
            med.get("billed_input_units"),
            ratios.get(name, {}).get("billed_vs_claude_force"),
        ]
        for name, med, emu in _clients(w)
    ]
    return table(
        [
            "client",
            "ok",
            "uncached input tokens",
            "cache writes",
            "cache reads",
            "billed input (x input price)",
            "vs claude-force",
        ],
        rows,
    )


def render_scaling(w: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            name,
            med.get("n"),
            _crashed(med) or _fmt(med.get("ok")),
            med.get("wall_s"),
            med.get("cpu_ms_per_call"),
            " / ".join(_fmt(t) for t in med.get("thirds_cpu_ms_per_call", [])) or "-",
            med.get("peak_rss_mb"),
        ]
        for name, med, _ in _clients(w)
    ]
    lines = table(
        [
            "client@concurrency",
            "calls",
            "ok",
            "wall s",
            "CPU ms/call",
            "CPU ms/call by thirds",
            "peak RSS MB",
        ],
        rows,
    )
    slopes = w.get("slopes", {})
    lines += table(
        ["client", "slope (ms/call per decade of concurrency)", "CPU/call at 1000 vs at 10"],
        [[n, s.get("slope_ms_per_decade"), s.get("cpu_1000_vs_10")] for n, s in slopes.items()],
    )
    return lines


def render_ablation(w: Mapping[str, Any]) -> list[str]:
    ratios = w.get("ratios", {})
    rows = [
        [
            name,
            _crashed(med) or _fmt(med.get("ok")),
            med.get("wall_s"),
            med.get("cpu_ms_per_call"),
            ratios.get(name, {}).get("cpu_vs_floor"),
            ratios.get(name, {}).get("cpu_saved_ms"),
            f"{med.get('runs_ok', 0)}/{med.get('runs', 0)}",
        ]
        for name, med, _ in _clients(w)
    ]
    return table(
        ["variant", "ok", "wall s", "CPU ms/call", "CPU vs floor", "CPU saved vs full (ms/call)", "runs"],
        rows,
    )


def flatten(data: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    """Nested results as ``(dotted.key, scalar)`` rows (lists longer than 6 are summarised)."""
    if isinstance(data, Mapping) and depth < 5:
        rows: list[tuple[str, Any]] = []
        for key, value in data.items():
            rows += flatten(value, f"{prefix}.{key}" if prefix else str(key), depth + 1)
        return rows
    if isinstance(data, list):
        if len(data) <= 6 and all(not isinstance(v, (dict, list)) for v in data):
            return [(prefix, ", ".join(_fmt(v) for v in data))]
        return [(prefix, f"[{len(data)} items]")]
    return [(prefix, data)]


def render_kv(title: str, result: Mapping[str, Any]) -> list[str]:
    if "error" in result:
        return [f"{title}: not measured ({_fmt(result['error'])}).", ""]
    body = result.get("result", result)
    return [f"{title}:", "", *table(["figure", "value"], flatten(body))]


def render_security(w: Mapping[str, Any]) -> list[str]:
    out = w.get("bench_injection", {})
    if "error" in out:
        return [f"Not measured: {_fmt(out['error'])}.", ""]
    res = out.get("result", {})
    rows = []
    for split, s in res.get("splits", {}).items():
        lv = s.get("levels", {}).get("flag", {})
        ro = s.get("rules_only", {})
        rows.append(
            [
                split,
                lv.get("attacks"),
                lv.get("detected"),
                _pct(lv.get("detection_rate")),
                lv.get("benign"),
                lv.get("false_positives"),
                _pct(lv.get("fp_rate")),
                f"{_pct(ro.get('detection_rate'))} / {_pct(ro.get('fp_rate'))}",
                s.get("scan_ms_mean"),
            ]
        )
    lines = [
        f"Rule threshold {_fmt(res.get('threshold'))}, {_fmt(res.get('rules'))} rules, then the classifier "
        f"({_fmt(res.get('classifier'))}); `flag` and `block` act on the same verdict. *dev* is the classifier's "
        "training split; *dev* and *wave2_dev* are the rules' tuning splits; *authored_nl* is benign only; "
        "*wave2_heldout* is whole sources of the "
        "second wave, never trained or tuned on.",
        "",
    ]
    return lines + table(
        [
            "split",
            "attacks",
            "detected",
            "detection rate",
            "benign",
            "false positives",
            "FP rate",
            "rules alone (det / FP)",
            "scan ms",
        ],
        rows,
    )


RENDERERS = {
    "w1": render_speed,
    "w2": render_speed,
    "w2x": render_ablation,
    "w3": render_faults,
    "w4": render_faults,
    "w5": render_dupes,
    "w6": render_prompt_cache,
    "w9": render_scaling,
}


def render_workload(w: Mapping[str, Any]) -> list[str]:
    wid = w["id"]
    lines = [f"### {wid.upper()}: {w['title']}", ""]
    emu = w.get("emulator")
    if emu:
        lines += [
            f"Emulator: {', '.join(f'{k}={v}' for k, v in emu.items())}. Run took {_fmt(w.get('duration_s'), 1)} s"
            f" ({w.get('date', '?')}).",
            "",
        ]
    if wid in RENDERERS:
        lines += RENDERERS[wid](w)
    elif wid == "w7":
        lines += render_kv("`bench_cache.run()`", w.get("bench_cache_run", {}))
        if "bench_cache_hammer" in w:
            lines += render_kv("`bench_cache.hammer()`", w["bench_cache_hammer"])
    elif wid == "w8":
        lines += render_kv("`bench_tracker.run()`", w.get("bench_tracker", {}))
        rss = dict(w.get("cache_rss", {}))
        rss.pop("samples", None)
        lines += render_kv("Large disk cache, 50 MB memory tier (`ResponseCache`)", rss)
    elif wid == "security":
        lines += render_security(w)
    if w.get("targets"):
        lines += table(
            ["target", "value", "goal", "result"],
            [[t["name"], t["value"], t["target"], _pass(t["pass"])] for t in w["targets"]],
        )
    lines += [f"- {n}" for n in w.get("notes", [])]
    return [*lines, ""] if w.get("notes") else lines


def render_profile(profile: Mapping[str, Any] | None) -> list[str]:
    """Top functions by self time in claude-force's process under load (idle event-loop waits left out)."""
    if not profile:
        return []
    lines = ["## Where claude-force's client time goes (pyinstrument)", ""]
    if "error" in profile:
        return [*lines, f"Not measured: {_fmt(profile['error'])}.", ""]
    lines += [
        f"{_fmt(profile.get('ok'))} calls at 0 ms latency, concurrency 100, whole pipeline on; "
        f"{_fmt(profile.get('cpu_ms_per_call'))} ms CPU per call under the profiler. Self time is wall-clock "
        "sampled on the event-loop thread, so a C call that gives up the GIL (socket send, `os.urandom`, "
        "`SimpleQueue.put`) also shows the time spent waiting to get it back from the cache's threads. Full "
        "tree: `benchmarks/results/profile_w2.txt`.",
        "",
    ]
    prof = profile.get("profile", {})
    mods = [[f"`{r['module']}`", r["self_s"], _pct(r["share"])] for r in prof.get("by_module", [])[:15]]
    lines += ["Self time by module (C functions count towards the module that called them):", ""]
    lines += table(["module", "self s", "share of busy time"], mods)
    top = prof.get("top_self", [])
    rows = [[f"`{r['function']}`", f"{r['file']}:{r['line']}", r["self_s"], _pct(r["share"])] for r in top]
    return [*lines, "Top functions by self time:", "", *table(["function", "where", "self s", "share"], rows)]


ORDER = ("w1", "w2", "w2x", "w3", "w4", "w5", "w6", "w7", "w8", "w9", "security")


def render(doc: Mapping[str, Any]) -> str:
    m = doc.get("machine", {})
    pk = m.get("packages", {})
    lines = [
        f"Generated {m.get('date', '?')} on {m.get('cpu', '?')} ({m.get('cpu_count', '?')} cores), Python "
        f"{m.get('python', '?')}; aiohttp {pk.get('aiohttp')}, anthropic {pk.get('anthropic')}, "
        f"litellm {pk.get('litellm')}. Last full run: {_fmt(doc.get('total_s'), 0)} s.",
        "",
        "## Summary of targets",
        "",
    ]
    rows = []
    workloads = doc.get("workloads", {})
    for wid in ORDER:
        for t in workloads.get(wid, {}).get("targets", []):
            rows.append([wid.upper(), t["name"], t["value"], t["target"], _pass(t["pass"])])
    lines += table(["workload", "target", "value", "goal", "result"], rows)
    lines += [
        "## Seed claude-force: reported in DESIGN.md, not measured in this run",
        "",
        "The seed is not installed here. These are its published figures on the same emulator; they are never",
        "used in a ratio below.",
        "",
    ]
    lines += table(["workload", "raw SDK", "LiteLLM", "seed claude-force", "lean floor"], DESIGN_ANCHORS)
    lines += ["## Results per workload", ""]
    for wid in ORDER:
        if wid in workloads:
            lines += render_workload(workloads[wid])
    lines += render_profile(doc.get("profile"))
    return "\n".join(lines).rstrip() + "\n"


DOC_TEMPLATE = f"""# Benchmarks

Hand-written text lives outside the generated block; `python -m benchmarks` rewrites only the block.

{BEGIN}
{END}
"""


def write_doc(generated: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else DOC_TEMPLATE
    if BEGIN not in text or END not in text:
        text = text.rstrip() + "\n\n" + BEGIN + "\n" + END + "\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(f"{head}{BEGIN}\n{generated}{END}{tail}", encoding="utf-8")
