"""``claude-force list|info|validate|init``: look at and create agent configs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table
from rich.text import Text

from claude_force.cache.secret import ENV_VAR as SECRET_ENV_VAR
from claude_force.cache.secret import resolve_secret
from claude_force.cli.common import STATE, fail, load_project, out, plain
from claude_force.cli.templates import AGENTS, CONTRACT, HOUSE_RULES, config_document
from claude_force.config import load_config
from claude_force.errors import ConfigError, SecretError
from claude_force.security.sanitize import safe
from claude_force.settings import Settings

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
        cfg, settings = load_project()  # the orchestrator block (and environment) as `run` resolves them
    except ConfigError as exc:
        problems.append(exc.message)
    else:
        problems += _secret_problems(settings)
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


def _secret_problems(settings: Settings) -> list[str]:
    """The cache secret that ``run`` would refuse, when one is given (setting or variable). The per-user key file
    is not read here: ``validate`` creates nothing."""
    given = settings.cache_secret.get_secret_value() if settings.cache_secret is not None else None
    if not settings.cache.enabled or (given is None and not os.environ.get(SECRET_ENV_VAR)):
        return []
    try:
        resolve_secret(given)
    except SecretError as exc:
        return [exc.message]
    return []


def write_project(directory: Path, *, force: bool = False) -> Path:
    """Write a working ``.claude/`` under ``directory``; returns the config path.

    Without ``force`` nothing is written if any of the files exists. With it, the files are replaced, each
    atomically (a temporary file renamed over it), so a symlink is replaced, never written through; a symlinked
    ``.claude``, ``agents`` or ``contracts`` directory is refused.
    """
    root = directory / ".claude"
    config_path = root / "claude.json"
    files: dict[Path, bytes] = {
        root / "agents" / f"{name}.md": (body + HOUSE_RULES).encode("utf-8")
        for name, (_, body) in AGENTS.items()
    }
    files[root / "contracts" / "code-reviewer.contract"] = CONTRACT.encode("utf-8")
    doc = config_document(directory.resolve().name or "project")
    files[config_path] = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    for d in (root, root / "agents", root / "contracts"):
        if d.is_symlink():
            fail(f"{safe(os.fspath(d))} is a symlink; init writes only into real directories")
    if not force:
        for path in files:
            if os.path.lexists(path):
                fail(f"{safe(os.fspath(path))} already exists (use --force to overwrite)")
    try:
        (root / "agents").mkdir(parents=True, exist_ok=True)
        (root / "contracts").mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            _replace(path, data)
    except OSError as exc:
        fail(f"cannot create {safe(os.fspath(root))}: {exc.strerror or type(exc).__name__}")
    return config_path


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file in its directory and a rename: never through a symlink."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "xb") as fh:  # exclusive: a file already there (or a link) is never opened, nor removed
        try:
            fh.write(data)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def init(
    directory: Annotated[Path, typer.Argument(help="Where to create .claude/ (default: here).")] = Path(),
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace existing files (the config, the example agents and contract)."),
    ] = False,
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
        soft_wrap=True,
    )
