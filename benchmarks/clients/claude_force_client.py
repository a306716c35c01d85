"""claude-force through ``AsyncAgentOrchestrator.stream_multiple`` with the whole pipeline on.

Screen, cache (a temporary or given directory, a fresh 32-byte secret), single-flight, prompt-cache warm-up,
retry, breaker, limiter (high limits unless told otherwise), tracker (a temporary metrics directory) and the
native or SDK transport.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.clients._common import Meter, build_parser, main, reset_emulator, task_order, task_text

#: "High enough not to throttle": one second of bucket holds more than any workload sends.
HIGH_LIMITS = {"rpm": 10_000_000.0, "input_tpm": 10_000_000_000.0, "output_tpm": 10_000_000_000.0}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from claude_force import AsyncAgentOrchestrator

    with tempfile.TemporaryDirectory(prefix="cf-bench-") as tmp:
        cache_dir = args.cache_dir or Path(tmp) / "cache"
        limits: dict[str, float | None] = {"rpm": None, "input_tpm": None, "output_tpm": None}
        if args.limits == "high":
            limits.update(HIGH_LIMITS)
        if args.rpm is not None:
            limits["rpm"] = args.rpm
        overrides: dict[str, Any] = {
            "cache_dir": cache_dir,
            "cache_secret": args.cache_secret or secrets.token_hex(32),
            "metrics_dir": Path(tmp) / "metrics",
            "default_model": args.model,
            "max_tokens": args.max_tokens,
            **limits,
        }
        if args.prompt_cache is not None:
            overrides["prompt_cache_ttl"] = args.prompt_cache
        overrides.update(_settings_overrides(args.set))
        orch = AsyncAgentOrchestrator(
            args.config,
            api_key="bench",
            base_url=args.url,
            transport=args.transport,
            max_concurrent=args.concurrency,
            enable_cache=not args.no_cache,
            env={},
            **overrides,
        )
        try:
            if args.warmup > 0:
                warm = [(args.agent, task_text(-1 - i, "warm-up ")) for i in range(args.warmup)]
                await orch.execute_multiple(warm)
                reset_emulator(args.url)
            keys = task_order(args.n, args.distinct, args.seed)
            tasks = [(args.agent, task_text(k, args.task_prefix)) for k in keys]
            counts = {"ok": 0, "failed": 0, "cached": 0, "coalesced": 0, "attempts": 0}
            tokens = {"input": 0, "cache_creation": 0, "cache_read": 0, "output": 0}
            errors: dict[str, int] = {}
            meter = Meter(args.n)
            profiler = _profiler(args.profile)
            meter.start()
            async for _, result in orch.stream_multiple(tasks):
                meter.tick()
                meta = result.metadata
                if result.success:
                    counts["ok"] += 1
                else:
                    counts["failed"] += 1
                    code = result.error_code or "unknown"
                    errors[code] = errors.get(code, 0) + 1
                counts["cached"] += bool(meta.get("cached"))
                counts["coalesced"] += bool(meta.get("coalesced"))
                counts["attempts"] += int(meta.get("attempts") or 0)
                tokens["input"] += int(meta.get("input_tokens") or 0)
                tokens["cache_creation"] += int(meta.get("cache_creation_input_tokens") or 0)
                tokens["cache_read"] += int(meta.get("cache_read_input_tokens") or 0)
                tokens["output"] += int(meta.get("output_tokens") or 0)
            figures = meter.stop()
            profile = _finish_profile(profiler, args.profile)
            cache_stats = orch.cache.stats() if orch.cache is not None else None
        finally:
            await orch.close()
    out: dict[str, Any] = {
        "client": "claude_force" if args.transport == "native" else f"claude_force_{args.transport}",
        **counts,
        "errors": errors,
        **figures,
        "tokens": tokens,
        "transport": args.transport,
        "prompt_cache_ttl": args.prompt_cache or "default",
        "limits": {k: v for k, v in limits.items() if v is not None},
        "settings": {k: v for k, v in _settings_overrides(args.set).items()},
        "response_cache": not args.no_cache,
    }
    if cache_stats is not None:
        stats = cache_stats.to_dict()
        out["cache_stats"] = {
            k: stats.get(k) for k in ("entries", "hits", "misses", "errors", "integrity_failures")
        }
    if profile is not None:
        out["profile"] = profile
    return out


def _settings_overrides(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs (value parsed as JSON when it is JSON, else kept as a string)."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, raw = item.partition("=")
        try:
            out[key.strip()] = json.loads(raw)
        except ValueError:
            out[key.strip()] = raw
    return out


def _profiler(path: Path | None) -> Any:
    if path is None:
        return None
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    return profiler


def _finish_profile(profiler: Any, path: Path | None) -> dict[str, Any] | None:
    if profiler is None or path is None:
        return None
    from benchmarks.clients._profile import self_time_tables

    session = profiler.stop()
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False), encoding="utf-8")
    return {"text": str(path), **self_time_tables(session, top=25)}


def _parser() -> argparse.ArgumentParser:
    p = build_parser(__doc__ or "claude_force")
    p.add_argument("--config", type=Path, required=True, help="a .claude/claude.json")
    p.add_argument("--agent", default="code-reviewer")
    p.add_argument("--transport", choices=("native", "sdk"), default="native")
    p.add_argument("--limits", choices=("high", "none"), default="high")
    p.add_argument("--rpm", type=float, default=None, help="client rpm (overrides --limits for requests)")
    p.add_argument("--prompt-cache", choices=("5m", "1h", "off"), default=None)
    p.add_argument("--no-cache", action="store_true", help="turn the response cache off")
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--cache-secret", default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other setting")
    p.add_argument("--profile", type=Path, default=None, help="write a pyinstrument profile here")
    return p


if __name__ == "__main__":
    sys.exit(main(run, _parser()))
