"""``claude-force metrics``: tables, exports and an HTML report from the tracker's JSONL sink.

The directory is the one ``run`` writes to: ``--metrics-dir``, else ``CLAUDE_FORCE_METRICS_DIR``, else the
config's ``orchestrator.metrics_dir``, else ``<config dir>/metrics`` (the config is ``--config``). Errors print
one readable line and exit with code 2.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TextIO

import orjson
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from claude_force.cli.common import STATE
from claude_force.config import load_config
from claude_force.errors import ClaudeForceError
from claude_force.security.sanitize import safe
from claude_force.settings import resolve_settings
from claude_force.tracking.aggregate import GroupStats
from claude_force.tracking.report import render_report
from claude_force.tracking.sink import FIELDS, Record, load_records, record_to_dict
from claude_force.tracking.tracker import PerformanceTracker

__all__ = ["metrics_app", "register"]

EXIT_ERROR = 2
#: Leading characters that make a spreadsheet treat a CSV cell as a formula.
_FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")

metrics_app = typer.Typer(help="Inspect recorded task metrics (latency, tokens, cost).", no_args_is_help=True)

MetricsDir = Annotated[
    Path | None,
    typer.Option(
        "--metrics-dir",
        help="Directory the tracker's sink writes to (default: the one `run` uses with this --config).",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add the ``metrics`` command group to the main CLI app."""
    app.add_typer(metrics_app, name="metrics")


def _out() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, highlight=False, soft_wrap=True).print(Text(f"error: {message}"))
    return typer.Exit(EXIT_ERROR)


def metrics_dir_for(flag: Path | None) -> Path:
    """The directory ``run`` writes records to, with the same precedence (flag > env > config > default)."""
    if flag is not None:
        return flag
    if not STATE.config.is_file():
        env = os.environ.get("CLAUDE_FORCE_METRICS_DIR")
        return Path(env) if env else Path(os.path.abspath(STATE.config)).parent / "metrics"
    try:
        cfg = load_config(STATE.config)
        settings = resolve_settings(config_block=cfg.orchestrator_block, config_path=cfg.path)
    except ClaudeForceError as exc:
        raise _fail(safe(exc.message, 500)) from None
    return settings.metrics_dir if settings.metrics_dir is not None else cfg.root / "metrics"


def _records(flag: Path | None) -> Iterator[Record]:
    """Check the directory now (before any output is opened), then stream its records."""
    metrics_dir = metrics_dir_for(flag)
    if not metrics_dir.is_dir():
        raise _fail(f"no metrics directory at {safe(metrics_dir)} (set --metrics-dir)")

    def stream() -> Iterator[Record]:
        try:
            yield from load_records(metrics_dir)
        except OSError as exc:
            raise _fail(f"cannot read metrics in {safe(metrics_dir)}: {type(exc).__name__}") from None

    return stream()


def _tracker(metrics_dir: Path | None) -> PerformanceTracker:
    return PerformanceTracker.from_records(_records(metrics_dir), ring_size=1)


def _name(value: str) -> Text:
    return Text(safe(value or "(none)", 80))


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.1f}")


def _pct(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v * 100:.{digits}f}%"


def _dur(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f}ms" if ms < 1000 else f"{ms / 1000:.1f}s" if ms < 60_000 else f"{ms / 60_000:.1f}m"


def _usd(v: float) -> str:
    return f"${v:,.4f}"


# --- tables -------------------------------------------------------------------------------------------------


@metrics_app.command()
def summary(metrics_dir: MetricsDir = None) -> None:
    """Totals over every recorded task."""
    t = _tracker(metrics_dir)
    s = t.summary()
    g = s.total
    table = Table(title="claude-force metrics", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("tasks", f"{g.count:,}"),
        ("succeeded / failed", f"{g.successes:,} / {g.failures:,}"),
        ("success rate", _pct(g.success_rate)),
        ("agents / models", f"{s.agents} / {s.models}"),
        (
            "latency p50 / p95 / p99 (ms)",
            f"{_ms(g.latency.p50_ms)} / {_ms(g.latency.p95_ms)} / {_ms(g.latency.p99_ms)}",
        ),
        ("attempts", f"{g.attempts:,}"),
        ("response-cache hits", f"{g.cached:,} ({_pct(g.cache_hit_rate)})"),
        ("coalesced", f"{g.coalesced:,}"),
        ("input / output tokens", f"{g.input_tokens:,} / {g.output_tokens:,}"),
        (
            "prompt-cache write / read tokens",
            f"{g.cache_creation_input_tokens:,} / {g.cache_read_input_tokens:,}",
        ),
        ("prompt-cache read share", _pct(g.prompt_cache_read_share)),
        ("cost", _usd(g.cost_usd) + (f" (+{g.unpriced} unpriced)" if g.unpriced else "")),
    ]
    for k, v in rows:
        table.add_row(k, v)
    for code, n in g.errors[:10]:
        table.add_row(Text(f"error: {safe(code, 60)}"), f"{n:,}")
    _out().print(table)


def _group_table(title: str, key: str, groups: Iterable[GroupStats]) -> Table:
    rows = list(groups)
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    # Names never wrap or get cut: the numeric columns give way on a narrow terminal.
    width = min(40, max([len(key)] + [len(safe(g.name or "(none)", 80)) for g in rows]))
    table.add_column(key, no_wrap=True, min_width=width)
    for col in ("tasks", "ok", "p50", "p95", "p99", "tok in/out", "cache rd", "cost"):
        table.add_column(col, justify="right", no_wrap=True)
    for g in rows:
        table.add_row(
            _name(g.name),
            f"{g.count:,}",
            _pct(g.success_rate, 0),
            _dur(g.latency.p50_ms),
            _dur(g.latency.p95_ms),
            _dur(g.latency.p99_ms),
            f"{_short(g.input_tokens)}/{_short(g.output_tokens)}",
            _pct(g.prompt_cache_read_share, 0),
            _usd(g.cost_usd),
        )
    return table


def _short(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


@metrics_app.command()
def agents(metrics_dir: MetricsDir = None) -> None:
    """One row per agent."""
    _out().print(_group_table("agents", "agent", _tracker(metrics_dir).by_agent()))


@metrics_app.command()
def models(metrics_dir: MetricsDir = None) -> None:
    """One row per model."""
    _out().print(_group_table("models", "model", _tracker(metrics_dir).by_model()))


@metrics_app.command()
def costs(metrics_dir: MetricsDir = None) -> None:
    """Spend by agent and by model."""
    c = _tracker(metrics_dir).costs()
    console = _out()
    for title, lines in (("cost by agent", c.by_agent), ("cost by model", c.by_model)):
        table = Table(title=title)
        table.add_column("name")
        table.add_column("tasks", justify="right")
        table.add_column("unpriced", justify="right")
        table.add_column("cost", justify="right")
        for line in lines:
            table.add_row(_name(line.name), f"{line.count:,}", f"{line.unpriced:,}", _usd(line.cost_usd))
        console.print(table)
    tail = f" ({c.unpriced} tasks had no price)" if c.unpriced else ""
    console.print(Text(f"total: {_usd(c.total_usd)}{tail}"))


# --- export and report --------------------------------------------------------------------------------------


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        fh = path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise _fail(f"cannot write {safe(path)}: {exc.strerror or type(exc).__name__}") from None
    with fh:
        yield fh


def _csv_cell(value: object) -> object:
    """A CSV cell: strings escaped like log values (no raw control characters, newlines or terminal escapes
    reach a terminal or a spreadsheet; a value is bounded), and a leading formula character defused."""
    if isinstance(value, str):
        value = safe(value, 1000)
        return "'" + value if value.startswith(_FORMULA_CHARS) else value
    return "" if value is None else value


@metrics_app.command()
def export(
    metrics_dir: MetricsDir = None,
    fmt: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Every record, as a JSON array or CSV (no task or output text is ever recorded)."""
    if fmt not in ("json", "csv"):
        raise _fail(f"unknown --format {safe(fmt, 20)!r}; use json or csv")
    records = _records(metrics_dir)
    with _output(output) as fh:
        if fmt == "csv":
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(FIELDS)
            for rec in records:
                writer.writerow([_csv_cell(v) for v in rec])
        else:
            fh.write("[")
            for i, rec in enumerate(records):
                fh.write((",\n" if i else "\n") + orjson.dumps(record_to_dict(rec)).decode())
            fh.write("\n]\n")


@metrics_app.command()
def report(
    html_path: Annotated[Path, typer.Option("--html", help="HTML file to write (self-contained).")],
    metrics_dir: MetricsDir = None,
    title: Annotated[str, typer.Option(help="Report title.")] = "claude-force metrics",
) -> None:
    """Write one self-contained HTML report with charts (works offline; no external resources)."""
    page = render_report(_records(metrics_dir), title=title)
    with _output(html_path) as fh:
        fh.write(page)
    _out().print(Text(f"wrote {safe(html_path)}"))
