"""The ``claude-force`` typer app: global options, command registration, and clean errors.

Exit codes: 0 all succeeded, 1 some task failed, 2 usage or config error (one line, no traceback unless --debug).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.text import Text

from claude_force import __version__
from claude_force.cli import demo as demo_mod
from claude_force.cli import project, run
from claude_force.cli.common import STATE, err, escaped_traceback, os_error, print_error, setup_logging
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
    """Console entry point: a bad flag or argument, a claude-force error and (as a backstop) any OSError are one
    line on stderr and exit 2; ``--debug`` prints the traceback above that line, redacted, with the same code."""
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Abort as exc:
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):  # click's way of saying Ctrl-C
            err.print("interrupted", markup=False, highlight=False)
            sys.exit(130)
        err.print("aborted", markup=False, highlight=False)
        sys.exit(1)
    except ClaudeForceError as exc:
        _debug_traceback()
        print_error(exc.message)
        sys.exit(2)
    except OSError as exc:
        _debug_traceback()
        print_error(os_error(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False, highlight=False)
        sys.exit(130)
    except Exception as exc:
        if not _is_click_error(exc):
            raise
        _usage_error(exc)
    if code == 130:  # typer's way of saying Ctrl-C
        err.print("interrupted", markup=False, highlight=False)
    sys.exit(code if isinstance(code, int) else 0)


def _is_click_error(exc: BaseException) -> bool:
    """A click ``ClickException`` (a bad flag or argument, ...), whether typer bundles its own click or not."""
    return callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int)


def _usage_error(exc: Exception) -> NoReturn:
    names = {c.__name__ for c in type(exc).__mro__}
    if "NoArgsIsHelpError" in names:  # a bare group (``claude-force run``): its help, as click shows it
        exc.show()  # type: ignore[attr-defined]
        sys.exit(2)
    ctx = getattr(exc, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if "UsageError" in names and ctx is not None else ""
    print_error(" ".join(str(exc.format_message()).split()) + where)  # type: ignore[attr-defined]
    sys.exit(int(exc.exit_code))  # type: ignore[attr-defined]


def _debug_traceback() -> None:
    """With ``--debug``, the exception being handled, line by line, escaped and redacted like every log line."""
    exc = sys.exc_info()[1]
    if STATE.debug and exc is not None:
        for line in escaped_traceback(exc):
            err.print(Text(line), highlight=False, soft_wrap=True)
