"""``claude-force list|info|validate|init``: look at and create agent configs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table
from rich.text import Text

from claude_force.cli.common import STATE, fail, load_project, out, plain
from claude_force.cli.templates import AGENTS, CONTRACT, HOUSE_RULES, config_document
from claude_force.config import load_config
from claude_force.errors import ConfigError
from claude_force.security.sanitize import safe

list_app = typer.Typer(help="List agents or workflows.", no_args_is_help=True)


@list_app.command("agents")
def list_agents() -> None:
    """List the agents in the config."""
    cfg = load_config(STATE.config)
    table = Table(title=plain(f"Agents in {STATE.config}"))
    for col in ("name", "file", "contract", "domains", "priority"):
        table.add_column(col)
    for name, entry in cfg.data.agents.items():
        table.add_row(
            plain(name, 64),
            plain(entry.file),
            plain(entry.contract or "-"),
            plain(", ".join(entry.domains) or "-"),
            str(entry.priority if entry.priority is not None else "-"),
        )
    out.print(table)


@list_app.command("workflows")
def list_workflows() -> None:
    """List the workflows in the config."""
    cfg = load_config(STATE.config)
    table = Table(title=plain(f"Workflows in {STATE.config}"))
    table.add_column("name")
    table.add_column("steps")
    for name, steps in cfg.workflows.items():
        table.add_row(plain(name, 64), Text(" -> ".join(safe(s, 64) for s in steps)))
    out.print(table)


def info(agent: Annotated[str, typer.Argument(help="Agent name.")]) -> None:
    """Show one agent: its entry, file sizes and the first lines of its definition."""
    cfg, _ = load_project()  # the configured max_file_bytes, as `run` applies it
    loaded = cfg.agent(agent)
    table = Table(show_header=False, title=plain(f"Agent {safe(agent, 64)}"))
    table.add_column("key", style="bold")
    table.add_column("value")
    entry = loaded.entry
    table.add_row("file", plain(entry.file))
    table.add_row("contract", plain(entry.contract or "-"))
    table.add_row("domains", plain(", ".join(entry.domains) or "-"))
    table.add_row("priority", str(entry.priority if entry.priority is not None else "-"))
    table.add_row(
        "definition", f"{len(loaded.definition):,} chars (~{(len(loaded.definition) + 3) // 4:,} tokens)"
    )
    if loaded.contract:
        table.add_row("contract size", f"{len(loaded.contract):,} chars")
    table.add_row("injection policy", entry.injection_policy or "(global)")
    table.add_row("prompt cache", entry.prompt_cache or "(global)")
    first = next((ln for ln in loaded.definition.splitlines() if ln.strip()), "")
    table.add_row("first line", plain(first, 120))
    out.print(table)


def validate() -> None:
    """Check the whole config, its settings and every file it names. Exit 2 on any problem."""
    cfg = load_config(STATE.config)
    problems: list[str] = []
    try:
        cfg, _ = load_project()  # the orchestrator block (and environment) as `run` resolves them
    except ConfigError as exc:
        problems.append(exc.message)
    problems += cfg.validate_all()
    if problems:
        for p in problems:
            out.print(Text.assemble(("x", "red"), " ", safe(p, 500)), highlight=False, soft_wrap=True)
        fail(f"{len(problems)} problem(s) in {STATE.config}")
    out.print(
        Text.assemble(
            ("ok", "green"),
            " ",
            safe(STATE.config),
            f": {len(cfg.agent_names)} agents, {len(cfg.workflows)} workflows",
        ),
        highlight=False,
        soft_wrap=True,
    )


def write_project(directory: Path, *, force: bool = False) -> Path:
    """Write a working ``.claude/`` under ``directory``; returns the config path."""
    root = directory / ".claude"
    config_path = root / "claude.json"
    if config_path.exists() and not force:
        fail(f"{config_path} already exists (use --force to overwrite)")
    try:
        (root / "agents").mkdir(parents=True, exist_ok=True)
        (root / "contracts").mkdir(parents=True, exist_ok=True)
        for name, (_, body) in AGENTS.items():
            (root / "agents" / f"{name}.md").write_text(body + HOUSE_RULES, encoding="utf-8")
        (root / "contracts" / "code-reviewer.contract").write_text(CONTRACT, encoding="utf-8")
        doc = config_document(directory.resolve().name or "project")
        config_path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as exc:
        fail(f"cannot create {root}: {exc.strerror or type(exc).__name__}")
    return config_path


def init(
    directory: Annotated[Path, typer.Argument(help="Where to create .claude/ (default: here).")] = Path(),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.")] = False,
) -> None:
    """Create a small working .claude/ with three example agents and one workflow."""
    path = write_project(directory, force=force)
    out.print(
        Text.assemble(
            ("created", "green"),
            " ",
            safe(os.fspath(path)),
            f" (agents: {', '.join(AGENTS)}; workflow: bug-fix)",
        ),
        highlight=False,
    )
