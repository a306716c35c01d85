"""The ``claude-force`` typer app: global options, command registration, and clean errors.

Exit codes: 0 all succeeded, 1 some task failed, 2 usage or config error (one line, no traceback unless --debug).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from claude_force import __version__
from claude_force.cli import demo as demo_mod
from claude_force.cli import project, run
from claude_force.cli.common import STATE, err, os_error, print_error, setup_logging
from claude_force.errors import ClaudeForceError

app = typer.Typer(
    name="claude-force",
    help="Run fleets of Claude agents concurrently: fast, within rate limits, never paying twice.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"claude-force {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    config: Annotated[Path, typer.Option("--config", "-c", help="Path to claude.json.")] = Path(
        ".claude/claude.json"
    ),
    debug: Annotated[bool, typer.Option("--debug", help="Debug logging and full tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    STATE.config = config
    STATE.debug = debug
    setup_logging(debug)


app.add_typer(run.app, name="run")
app.add_typer(project.list_app, name="list")
app.command("info")(project.info)
app.command("validate")(project.validate)
app.command("init")(project.init)
app.command("demo")(demo_mod.demo)


def _register_optional() -> None:
    from claude_force.cli import cache as cache_cli
    from claude_force.cli import emulate, metrics

    emulate.register(app)
    cache_cli.register(app)
    metrics.register(app)


_register_optional()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: maps claude-force errors (and, as a backstop, any OSError) to one line and exit 2."""
    try:
        app(args=argv, standalone_mode=True)
    except ClaudeForceError as exc:
        if STATE.debug:
            raise
        print_error(exc.message)
        sys.exit(2)
    except OSError as exc:
        if STATE.debug:
            raise
        print_error(os_error(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False, highlight=False)
        sys.exit(130)
