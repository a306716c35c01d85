from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from claude_force.cli.metrics import register
from claude_force.models import AgentResult
from claude_force.tracking import PerformanceTracker


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test root (the real root app is the lead's cli/app.py)."""

    register(app)
    return app


def invoke(*args: str) -> Any:
    return CliRunner().invoke(make_app(), ["metrics", *args])


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    d = tmp_path / "metrics"
    t = PerformanceTracker(sink_dir=d, clock=iter(range(1_700_000_000, 1_800_000_000, 60)).__next__)
    names = [
        "code-reviewer",
        "[bold red]markup[/]",
        "=HYPERLINK(1)",
        "x\x1b]0;title\x07\n2026-01-01 CRITICAL forged",
    ]
    for i in range(30):
        ok = i % 10 != 0
        t.record(
            AgentResult(
                agent_name=names[i % 4],
                success=ok,
                output="PRIVATE OUTPUT",
                error_code=None if ok else "overloaded",
                metadata={
                    "model": "claude-sonnet-5-5" if i % 2 else "claude-haiku-4-5",
                    "latency_ms": 100.0 + i,
                    "attempts": 1,
                    "input_tokens": 10,
                    "output_tokens": 5,
                    "cost_usd": 0.01,
                    "cached": i % 4 == 0,
                },
            )
        )
    t.close()
    return d


def test_summary(metrics_dir: Path) -> None:
    res = invoke("summary", "--metrics-dir", str(metrics_dir))
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "30" in out and "27 / 3" in out and "90.0%" in out
    assert "$0.3000" in out and "overloaded" in out


def test_agents_prints_names_literally(metrics_dir: Path) -> None:
    res = invoke("agents", "--metrics-dir", str(metrics_dir))
    assert res.exit_code == 0, res.output
    assert "code-reviewer" in res.stdout
    assert "[bold red]markup[/]" in res.stdout  # rich markup in a name is shown, not interpreted


def test_models_and_costs(metrics_dir: Path) -> None:
    res = invoke("models", "--metrics-dir", str(metrics_dir))
    assert res.exit_code == 0 and "claude-sonnet-5-5" in res.stdout and "claude-haiku-4-5" in res.stdout
    res = invoke("costs", "--metrics-dir", str(metrics_dir))
    assert res.exit_code == 0 and "total: $0.3000" in res.stdout


def test_export_json_to_stdout(metrics_dir: Path) -> None:
    res = invoke("export", "--metrics-dir", str(metrics_dir))
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert len(rows) == 30 and rows[0]["agent"] == "code-reviewer"
    assert "PRIVATE OUTPUT" not in res.stdout


def test_export_csv_to_file_neutralises_formulas(metrics_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    res = invoke("export", "--metrics-dir", str(metrics_dir), "--format", "csv", "-o", str(out))
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 30
    agents = {r["agent"] for r in rows}
    assert "'=HYPERLINK(1)" in agents and "=HYPERLINK(1)" not in agents


def test_export_csv_escapes_control_characters(metrics_dir: Path) -> None:
    res = invoke("export", "--metrics-dir", str(metrics_dir), "--format", "csv")
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout
    lines = res.stdout.splitlines()
    assert len(lines) == 31  # the header and one line per record: no newline inside a field
    assert not any(line.startswith("2026-01-01 CRITICAL") for line in lines)


def test_report_writes_html(metrics_dir: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    res = invoke("report", "--html", str(page), "--metrics-dir", str(metrics_dir), "--title", "CI run")
    assert res.exit_code == 0, res.output
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 6 and "CI run" in html


@pytest.mark.parametrize(
    "args",
    [
        ("summary",),
        ("agents",),
        ("export", "--format", "xml"),
        ("report", "--html", "{tmp}/no/such/dir/report.html"),
    ],
)
def test_errors_are_one_line_and_exit_2(args: tuple[str, ...], metrics_dir: Path, tmp_path: Path) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    where = str(tmp_path / "missing") if args[0] in ("summary", "agents") else str(metrics_dir)
    res = invoke(*argv, "--metrics-dir", where)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in res.output


def test_empty_metrics_dir_is_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    res = invoke("summary", "--metrics-dir", str(tmp_path / "m"))
    assert res.exit_code == 0 and "tasks" in res.stdout
