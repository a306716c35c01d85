"""Shared CLI plumbing: global state, the run options every ``run`` command takes, error reporting.

Anything user-controlled (names and paths from the config, task text, error messages) is printed as plain text,
never as Rich markup: :func:`plain` wraps it in a :class:`rich.text.Text`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from claude_force import constants as C
from claude_force.config import ProjectConfig, load_config
from claude_force.security.sanitize import safe
from claude_force.settings import Settings, resolve_settings

out = Console()
err = Console(stderr=True)

#: Libraries that log whole requests (task text, system prompt, canary) at DEBUG: kept quiet even with --debug.
THIRD_PARTY_LOGGERS = ("anthropic", "httpx", "httpx2", "httpcore", "aiohttp", "urllib3", "asyncio")


@dataclass
class GlobalState:
    config: Path = Path(C.DEFAULT_CONFIG_PATH)
    debug: bool = False


STATE = GlobalState()


class _PlainFormatter(logging.Formatter):
    """Plain log lines; a logged traceback follows on lines of its own, each escaped and redacted like a
    message (its exception text may quote user input or an API error)."""

    def formatException(self, ei: Any) -> str:
        return "\n".join(escaped_traceback(ei[1]))


def escaped_traceback(exc: BaseException) -> list[str]:
    """``exc``'s traceback as lines, each escaped and redacted. The frames are split into their lines; an
    exception's own message stays one line, so a newline inside it cannot start a forged line."""
    lines: list[str] = []
    for chunk in traceback.TracebackException.from_exception(exc).format():
        text = chunk.rstrip("\n")
        if chunk.startswith(("Traceback", "  File")) or text.strip().startswith(_CHAIN_LINES):
            lines += [safe(line, 2000) for line in text.splitlines()]
        else:  # "ValueError: <message>" (or a note): whatever it holds, one line
            lines.append(safe(text, 4000))
    return lines


_CHAIN_LINES = ("The above exception was the direct cause", "During handling of the above exception")


def setup_logging(debug: bool) -> None:
    """Only the CLI configures logging; the library just logs.

    ``--debug`` turns on DEBUG for the ``claude_force`` loggers only: the root logger stays at WARNING, and the
    HTTP libraries are pinned at WARNING, because the anthropic SDK logs every request body at DEBUG.
    """
    handler: logging.Handler
    if err.is_terminal:
        handler = RichHandler(console=err, show_path=debug, markup=False, rich_tracebacks=debug)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:  # a pipe or a file: one plain line per record, never wrapped at a width, easy to grep
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("claude_force").setLevel(logging.DEBUG if debug else logging.NOTSET)
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if not debug:
        logging.getLogger("aiohttp").setLevel(logging.ERROR)


def plain(value: object, limit: int = 500) -> Text:
    """``value`` made safe (one line, redacted, bounded) as plain text: never parsed as Rich markup."""
    return Text(safe(value, limit))


def error_line(message: str) -> Text:
    """``error: <message>`` as plain text (the message is never parsed as markup)."""
    return Text.assemble(("error:", "bold red"), " ", safe(message, 500))


def print_error(message: str) -> None:
    """One line on stderr, never wrapped (soft_wrap) even when stderr is not a terminal."""
    err.print(error_line(message), highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one readable line to stderr and exit (2 = usage or config error)."""
    print_error(message)
    raise typer.Exit(code)


def os_error(exc: OSError) -> str:
    """A short description of an OSError: its strerror (or type) and the file it names."""
    what = exc.strerror or type(exc).__name__
    return f"{what}: {exc.filename}" if exc.filename is not None else what


# --- options shared by the run commands -------------------------------------------------------------

ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Model id (default: config or built-in Sonnet).")
]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", min=1, help="Max output tokens per call.")]
ConcOpt = Annotated[int | None, typer.Option("--max-concurrency", min=1, help="Max requests in flight.")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", help="Per-attempt timeout, seconds.")]
TransportOpt = Annotated[str | None, typer.Option("--transport", help="native | sdk | mock (offline)")]
BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", help="API base URL (default: ANTHROPIC_BASE_URL).")
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Disable the response cache.")]
CacheDirOpt = Annotated[Path | None, typer.Option("--cache-dir", help="Response cache directory.")]
RpmOpt = Annotated[float | None, typer.Option("--rpm", help="Client requests per minute.")]
ItpmOpt = Annotated[float | None, typer.Option("--input-tpm", help="Client input tokens per minute.")]
OtpmOpt = Annotated[float | None, typer.Option("--output-tpm", help="Client output tokens per minute.")]
BudgetOpt = Annotated[float | None, typer.Option("--budget-usd", help="Stop spending past this many USD.")]
PolicyOpt = Annotated[str | None, typer.Option("--injection-policy", help="off | flag | block")]
PromptCacheOpt = Annotated[str | None, typer.Option("--prompt-cache", help="5m | 1h | off")]
MetricsDirOpt = Annotated[Path | None, typer.Option("--metrics-dir", help="Where task records are written.")]


#: The CLI flag that sets each settings key, so a bad value is reported as ``--max-tokens: ...``.
FLAG_NAMES: dict[str, str] = {
    "default_model": "--model",
    "max_tokens": "--max-tokens",
    "max_concurrency": "--max-concurrency",
    "timeout_seconds": "--timeout",
    "transport": "--transport",
    "base_url": "--base-url",
    "enable_cache": "--no-cache",
    "cache_dir": "--cache-dir",
    "rpm": "--rpm",
    "input_tpm": "--input-tpm",
    "output_tpm": "--output-tpm",
    "budget_usd": "--budget-usd",
    "injection_policy_override": "--injection-policy",
    "prompt_cache_ttl": "--prompt-cache",
    "metrics_dir": "--metrics-dir",
}


def load_project(flags: dict[str, Any] | None = None) -> tuple[ProjectConfig, Settings]:
    """The config at ``--config`` and the settings a run with ``flags`` would use (flag > env > config).

    The config's ``max_file_bytes`` is applied, so every command reads agent files under the same limit as
    ``run``. Raises :class:`~claude_force.errors.ConfigError` naming the flag, variable or key at fault.
    """
    cfg = load_config(STATE.config)
    settings = resolve_settings(
        flags=flags, config_block=cfg.orchestrator_block, config_path=cfg.path, flag_names=FLAG_NAMES
    )
    cfg.max_file_bytes = settings.max_file_bytes
    return cfg, settings


class OutputFile:
    """A ``-o`` file, opened (created, not yet truncated) before any paid call and written once at the end.

    A path that cannot be written fails here, in one line, instead of after the API call has been paid for. A
    file this created but never wrote is removed on close.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        existed = os.path.lexists(path)
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags, 0o666)
        except OSError as exc:
            fail(f"cannot write {safe(path)}: {exc.strerror or type(exc).__name__}")
        self._fh: IO[str] = os.fdopen(fd, "w", encoding="utf-8")
        self._created = not existed
        self._written = False

    def write(self, data: str) -> None:
        try:
            if stat.S_ISREG(
                os.fstat(self._fh.fileno()).st_mode
            ):  # not /dev/null or a pipe: they cannot truncate
                self._fh.seek(0)
                self._fh.truncate()
            self._fh.write(data)
            self._fh.flush()
        except OSError as exc:
            fail(f"cannot write {safe(self.path)}: {exc.strerror or type(exc).__name__}")
        self._written = True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        if self._created and not self._written:
            self.path.unlink(missing_ok=True)


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
    """The task from --task, --task-file, or standard input; always valid UTF-8 (else exit 2)."""
    if task is not None and task_file is not None:
        fail("give either --task or --task-file, not both")
    if task is not None:
        # Python hands undecodable argv bytes over as lone surrogates (surrogateescape): refuse them here.
        try:
            task.encode("utf-8")
        except UnicodeEncodeError:
            fail("--task is not valid UTF-8")
        return task
    if task_file is not None:
        try:
            return task_file.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read task file {task_file}: {exc.strerror or type(exc).__name__}")
        except UnicodeDecodeError:
            fail(f"task file {task_file} is not valid UTF-8")
    if sys.stdin is None or sys.stdin.isatty():
        fail("no task: pass --task, --task-file, or pipe the task on standard input")
    try:
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is not None:
            return bytes(buffer.read()).decode("utf-8")
        text = sys.stdin.read()
        text.encode("utf-8")
        return text
    except (UnicodeDecodeError, UnicodeEncodeError):
        fail("standard input is not valid UTF-8")
    except OSError as exc:
        fail(f"cannot read standard input: {exc.strerror or type(exc).__name__}")
