"""``claude-force demo``: a batch against the in-process emulator, offline, with no API key."""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from pathlib import Path
from typing import Annotated

import orjson
import typer

from claude_force.cli.common import err, fail, out
from claude_force.cli.project import write_project
from claude_force.cli.run import run_batch_async
from claude_force.cli.summary import RunSummary
from claude_force.emulator import EmulatorConfig, EmulatorServer
from claude_force.orchestrator import AsyncAgentOrchestrator

TOPICS = [
    "the retry loop in client.py sleeps a fixed 1 s between attempts",
    "a cache that stores pickled objects under a world-writable directory",
    "a function that builds a SQL query with string formatting",
    "an asyncio worker pool that never awaits its background tasks",
    "a log line that prints the full request including the API key",
    "a path check written as str(path).startswith(root)",
    "a rate limiter that refills a whole minute of tokens at once",
    "a JSON parser that crashes on a null 'content' field",
    "a semaphore created lazily inside the first coroutine that needs it",
    "a README whose quick start no longer matches the CLI flags",
]


def _tasks(n: int) -> list[dict[str, str]]:
    agents = ["code-reviewer", "bug-investigator", "doc-writer"]
    tasks = []
    for i in range(n):
        # Every fifth task repeats the one before it, to show the response cache and single-flight at work.
        j = i - 1 if i % 5 == 4 else i
        tasks.append(
            {"id": f"demo-{i:03d}", "agent": agents[j % 3], "task": f"Look at {TOPICS[j % 10]} (case {j})."}
        )
    return tasks


async def _demo(workdir: Path, n: int, concurrency: int) -> tuple[RunSummary, dict[str, object]]:
    config = write_project(workdir)
    input_path = workdir / "tasks.jsonl"
    input_path.write_bytes(b"".join(orjson.dumps(t) + b"\n" for t in _tasks(n)))
    emulator = EmulatorConfig(
        latency_ms=40, jitter_ms=20, p429=0.05, p529=0.03, p500=0.03, pnull=0.01, seed=7
    )
    async with EmulatorServer(emulator) as emu:
        out.print(
            f"emulator listening on {emu.base_url} (5% 429, 3% 529, 3% 500, 1% null content)",
            markup=False,
            soft_wrap=True,
        )
        async with AsyncAgentOrchestrator(
            config,
            api_key="demo-key-not-secret",
            base_url=emu.base_url,
            max_concurrent=concurrency,
            cache_dir=workdir / "cache",
            cache_secret=secrets.token_hex(32),
            metrics_dir=workdir / "metrics",
        ) as orch:
            summary = await run_batch_async(
                orch, input_path, workdir / "results.jsonl", resume=False, max_line_bytes=1 << 20
            )
        stats = await emu.stats()
    return summary, stats


def demo(
    tasks: Annotated[int, typer.Option("--tasks", min=1, max=10_000, help="How many tasks to run.")] = 50,
    concurrency: Annotated[int, typer.Option("--max-concurrency", min=1, help="Requests in flight.")] = 10,
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Write the demo project here instead of a temp dir.")
    ] = None,
) -> None:
    """Run a batch of tasks against the built-in emulator with injected faults. No key, no network."""
    start = time.perf_counter()
    if keep is not None:
        try:
            keep.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"cannot create {keep}: {exc.strerror or type(exc).__name__}")
        summary, stats = asyncio.run(_demo(keep, tasks, concurrency))
    else:
        with tempfile.TemporaryDirectory(prefix="claude-force-demo-") as tmp:
            summary, stats = asyncio.run(_demo(Path(tmp), tasks, concurrency))
    err.print(summary.table(time.perf_counter() - start))
    statuses = stats.get("statuses", {})
    out.print(
        f"emulator saw {stats.get('requests')} requests; statuses {statuses}", markup=False, soft_wrap=True
    )
    if summary.failed_total:
        raise typer.Exit(1)
