"""``claude-force cache stats|clear|prune|verify``: inspect and maintain the response cache.

The cache dir comes from ``--cache-dir``, else ``CLAUDE_FORCE_CACHE_DIR``, else ``orchestrator.cache.dir`` in the
config (when ``--config`` exists), else the platform default. The secret comes from ``CLAUDE_CACHE_SECRET``, else
the config's ``cache_secret``, else the per-user key file. The size limits (``cache.max_disk_mb``,
``cache.agent_quota_mb``, ``cache.max_entry_bytes``) come from the config, as for ``run``. Exit codes: 0 done; 1
``verify`` found (and deleted) corrupt entries; 2 an error, reported as one line on stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table
from rich.text import Text

from claude_force.cache.core import ResponseCache
from claude_force.cli.common import STATE, err, out
from claude_force.config import load_config
from claude_force.errors import ClaudeForceError
from claude_force.security.sanitize import safe
from claude_force.settings import CacheSettings, resolve_settings

__all__ = ["register"]

CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="CLAUDE_FORCE_CACHE_DIR",
        help="Cache directory (default: the platform's user cache dir for claude-force).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
#: ``prune`` without ``--ttl-hours`` removes only entries past the expiry they were stored with.
_NO_TTL_HOURS = 24.0 * 365 * 100


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


@contextmanager
def _opened(cache_dir: Path | None, *, ttl_hours: float = _NO_TTL_HOURS) -> Iterator[ResponseCache]:
    """Open the cache; any claude-force error becomes one line on stderr and exit code 2."""
    try:
        secret: str | None = None
        limits = CacheSettings()
        if STATE.config.is_file():
            cfg = load_config(STATE.config)
            settings = resolve_settings(
                flags={"cache_dir": cache_dir},
                config_block=cfg.orchestrator_block,
                config_path=cfg.path,
                flag_names={"cache_dir": "--cache-dir"},
            )
            limits = settings.cache
            cache_dir = limits.dir
            secret = settings.cache_secret.get_secret_value() if settings.cache_secret else None
        cache = ResponseCache(
            cache_dir=cache_dir,
            secret=secret,
            ttl_hours=ttl_hours,
            max_memory_mb=0,
            max_disk_mb=limits.max_disk_mb,
            max_entry_bytes=limits.max_entry_bytes,
            agent_quota_mb=limits.agent_quota_mb,
        )
        try:
            yield cache
        finally:
            cache.close()
    except ClaudeForceError as exc:
        err.print(f"error: {safe(exc.message, 500)}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def stats(cache_dir: CacheDirOption = None, json: JsonOption = False) -> None:
    """Show how many entries the cache holds and how big it is, per agent."""
    with _opened(cache_dir) as cache:
        snapshot = cache.stats()
        agents = cache.agent_usage()
        where = str(cache.cache_dir)
    if json:
        doc = {
            "dir": where,
            "entries": snapshot.entries,
            "bytes": snapshot.bytes,
            "agents": [{"agent": a, "entries": n, "bytes": b} for a, n, b in agents],
        }
        out.print(orjson.dumps(doc).decode(), markup=False, highlight=False, soft_wrap=True)
        return
    out.print(f"cache dir: {safe(where, 500)}", markup=False, highlight=False, soft_wrap=True)
    out.print(
        f"entries: {snapshot.entries}   size: {_human(snapshot.bytes)}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if agents:
        table = Table("agent", "entries", "size")
        for agent, entries, size in agents:
            table.add_row(Text(safe(agent)), str(entries), _human(size))
        out.print(table)


def clear(cache_dir: CacheDirOption = None) -> None:
    """Delete every cached response."""
    with _opened(cache_dir) as cache:
        removed = cache.clear()
    out.print(f"cleared {removed} entries", markup=False, highlight=False, soft_wrap=True)


def prune(
    cache_dir: CacheDirOption = None,
    ttl_hours: Annotated[
        float | None,
        typer.Option(
            "--ttl-hours", min=0.0, help="Also remove entries older than this (default: stored expiry only)."
        ),
    ] = None,
) -> None:
    """Remove expired entries and evict down to the size limit."""
    if ttl_hours is not None and ttl_hours <= 0:
        err.print("error: --ttl-hours must be > 0", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    with _opened(cache_dir, ttl_hours=_NO_TTL_HOURS if ttl_hours is None else ttl_hours) as cache:
        removed = cache.prune()
    out.print(f"pruned {removed} entries", markup=False, highlight=False, soft_wrap=True)


def verify(cache_dir: CacheDirOption = None, json: JsonOption = False) -> None:
    """Check every entry's signature and format; delete corrupt ones. Exit code 1 if any were found."""
    with _opened(cache_dir) as cache:
        report = cache.verify()
    if json:
        doc = {
            "checked": report.checked,
            "ok": report.ok,
            "corrupt": report.corrupt,
            "expired": report.expired,
        }
        out.print(orjson.dumps(doc).decode(), markup=False, highlight=False, soft_wrap=True)
    else:
        out.print(
            f"checked {report.checked}: {report.ok} ok, {report.corrupt} corrupt (deleted), "
            f"{report.expired} expired",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if not report.clean:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``cache`` command group to ``app``."""
    cache_app = typer.Typer(
        name="cache", help="Inspect and maintain the response cache.", no_args_is_help=True
    )
    cache_app.command("stats")(stats)
    cache_app.command("clear")(clear)
    cache_app.command("prune")(prune)
    cache_app.command("verify")(verify)
    app.add_typer(cache_app, name="cache")
