"""``claude-force list|info|validate|init``: look at and create agent configs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from claude_force.cli.common import STATE, fail, out
from claude_force.cli.templates import AGENTS, CONTRACT, HOUSE_RULES, config_document
from claude_force.config import load_config
from claude_force.security.sanitize import safe

list_app = typer.Typer(help="List agents or workflows.", no_args_is_help=True)


@list_app.command("agents")
def list_agents() -> None:
    """List the agents in the config."""
    cfg = load_config(STATE.config)
    table = Table(title=f"Agents in {safe(STATE.config)}")
    for col in ("name", "file", "contract", "domains", "priority"):
        table.add_column(col)
    for name, entry in cfg.data.agents.items():
        table.add_row(
            safe(name, 64),
            safe(entry.file),
            safe(entry.contract or "-"),
            safe(", ".join(entry.domains) or "-"),
            str(entry.priority if entry.priority is not None else "-"),
        )
    out.print(table)


@list_app.command("workflows")
def list_workflows() -> None:
    """List the workflows in the config."""
    cfg = load_config(STATE.config)
    table = Table(title=f"Workflows in {safe(STATE.config)}")
    table.add_column("name")
    table.add_column("steps")
    for name, steps in cfg.workflows.items():
        table.add_row(escape(safe(name, 64)), " -> ".join(escape(safe(s, 64)) for s in steps))
    out.print(table)


def info(agent: Annotated[str, typer.Argument(help="Agent name.")]) -> None:
    """Show one agent: its entry, file sizes and the first lines of its definition."""
    cfg = load_config(STATE.config)
    loaded = cfg.agent(agent)
    table = Table(show_header=False, title=f"Agent {safe(agent, 64)}")
    table.add_column("key", style="bold")
    table.add_column("value")
    entry = loaded.entry
    table.add_row("file", escape(safe(entry.file)))
    table.add_row("contract", escape(safe(entry.contract or "-")))
    table.add_row("domains", escape(safe(", ".join(entry.domains) or "-")))
    table.add_row("priority", str(entry.priority if entry.priority is not None else "-"))
    table.add_row(
        "definition", f"{len(loaded.definition):,} chars (~{(len(loaded.definition) + 3) // 4:,} tokens)"
    )
    if loaded.contract:
        table.add_row("contract size", f"{len(loaded.contract):,} chars")
    table.add_row("injection policy", entry.injection_policy or "(global)")
    table.add_row("prompt cache", entry.prompt_cache or "(global)")
    first = next((ln for ln in loaded.definition.splitlines() if ln.strip()), "")
    table.add_row("first line", escape(safe(first, 120)))
    out.print(table)


def validate() -> None:
    """Check the whole config and every file it names. Exit 2 on any problem."""
    cfg = load_config(STATE.config)
    problems = cfg.validate_all()
    if problems:
        for p in problems:
            out.print(f"[red]x[/] {escape(safe(p, 500))}", highlight=False)
        fail(f"{len(problems)} problem(s) in {STATE.config}")
    out.print(
        f"[green]ok[/] {safe(STATE.config)}: {len(cfg.agent_names)} agents, {len(cfg.workflows)} workflows"
    )


def write_project(directory: Path, *, force: bool = False) -> Path:
    """Write a working ``.claude/`` under ``directory``; returns the config path."""
    root = directory / ".claude"
    config_path = root / "claude.json"
    if config_path.exists() and not force:
        fail(f"{config_path} already exists (use --force to overwrite)")
    (root / "agents").mkdir(parents=True, exist_ok=True)
    (root / "contracts").mkdir(parents=True, exist_ok=True)
    for name, (_, body) in AGENTS.items():
        (root / "agents" / f"{name}.md").write_text(body + HOUSE_RULES, encoding="utf-8")
    (root / "contracts" / "code-reviewer.contract").write_text(CONTRACT, encoding="utf-8")
    doc = config_document(directory.resolve().name or "project")
    config_path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    return config_path


def init(
    directory: Annotated[Path, typer.Argument(help="Where to create .claude/ (default: here).")] = Path(),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.")] = False,
) -> None:
    """Create a small working .claude/ with three example agents and one workflow."""
    path = write_project(directory, force=force)
    out.print(
        f"[green]created[/] {escape(safe(os.fspath(path)))} (agents: {', '.join(AGENTS)}; workflow: bug-fix)"
    )
