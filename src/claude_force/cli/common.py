"""Shared CLI plumbing: global state, the run options every ``run`` command takes, error reporting."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from claude_force import constants as C
from claude_force.security.sanitize import safe

out = Console()
err = Console(stderr=True)


@dataclass
class GlobalState:
    config: Path = Path(C.DEFAULT_CONFIG_PATH)
    debug: bool = False


STATE = GlobalState()


def setup_logging(debug: bool) -> None:
    """Only the CLI configures logging; the library just logs."""
    handler = RichHandler(console=err, show_path=debug, markup=False, rich_tracebacks=debug)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        handlers=[handler],
        format="%(message)s",
        force=True,
    )
    if not debug:
        logging.getLogger("aiohttp").setLevel(logging.ERROR)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one readable line to stderr and exit (2 = usage or config error)."""
    err.print(f"[bold red]error:[/] {escape(safe(message, 500))}", highlight=False)
    raise typer.Exit(code)


# --- options shared by the run commands -------------------------------------------------------------

ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Model id (default: config or built-in Sonnet).")
]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", min=1, help="Max output tokens per call.")]
ConcOpt = Annotated[int | None, typer.Option("--max-concurrency", min=1, help="Max requests in flight.")]
TimeoutOpt = Annotated[
    float | None, typer.Option("--timeout", min=0.001, help="Per-attempt timeout, seconds.")
]
TransportOpt = Annotated[str | None, typer.Option("--transport", help="native | sdk")]
BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", help="API base URL (default: ANTHROPIC_BASE_URL).")
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Disable the response cache.")]
CacheDirOpt = Annotated[Path | None, typer.Option("--cache-dir", help="Response cache directory.")]
RpmOpt = Annotated[float | None, typer.Option("--rpm", min=0.001, help="Client requests per minute.")]
ItpmOpt = Annotated[float | None, typer.Option("--input-tpm", min=1, help="Client input tokens per minute.")]
OtpmOpt = Annotated[
    float | None, typer.Option("--output-tpm", min=1, help="Client output tokens per minute.")
]
BudgetOpt = Annotated[
    float | None, typer.Option("--budget-usd", min=0, help="Stop spending past this many USD.")
]
PolicyOpt = Annotated[str | None, typer.Option("--injection-policy", help="off | flag | block")]
PromptCacheOpt = Annotated[str | None, typer.Option("--prompt-cache", help="5m | 1h | off")]
MetricsDirOpt = Annotated[Path | None, typer.Option("--metrics-dir", help="Where task records are written.")]


def run_flags(
    *,
    model: str | None,
    max_tokens: int | None,
    max_concurrency: int | None,
    timeout: float | None,
    transport: str | None,
    base_url: str | None,
    no_cache: bool,
    cache_dir: Path | None,
    rpm: float | None,
    input_tpm: float | None,
    output_tpm: float | None,
    budget_usd: float | None,
    injection_policy: str | None,
    prompt_cache: str | None,
    metrics_dir: Path | None,
) -> dict[str, Any]:
    """Map CLI options onto settings keys (``None`` = not given)."""
    return {
        "default_model": model,
        "max_tokens": max_tokens,
        "max_concurrency": max_concurrency,
        "timeout_seconds": timeout,
        "transport": transport,
        "base_url": base_url,
        "enable_cache": False if no_cache else None,
        "cache_dir": cache_dir,
        "rpm": rpm,
        "input_tpm": input_tpm,
        "output_tpm": output_tpm,
        "budget_usd": budget_usd,
        "injection_policy_override": injection_policy,
        "prompt_cache_ttl": prompt_cache,
        "metrics_dir": metrics_dir,
    }


def read_task(task: str | None, task_file: Path | None) -> str:
    """The task from --task, --task-file, or standard input."""
    if task is not None and task_file is not None:
        fail("give either --task or --task-file, not both")
    if task is not None:
        return task
    if task_file is not None:
        try:
            return task_file.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read task file {task_file}: {exc.strerror}")
        except UnicodeDecodeError:
            fail(f"task file {task_file} is not valid UTF-8")
    if sys.stdin is None or sys.stdin.isatty():
        fail("no task: pass --task, --task-file, or pipe the task on standard input")
    return sys.stdin.read()
