"""What every benchmark client shares: arguments, the task set, the meter and the one-line JSON result.

A client process does its imports and warm-up first, then measures only the workload: wall time with
``time.perf_counter`` and client CPU with ``getrusage(RUSAGE_SELF)`` (user + system, all threads).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import itertools
import json
import random
import resource
import sys
import time
import traceback
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_MAX_TOKENS = 256
#: Top error kinds kept in a result.
MAX_ERROR_KINDS = 8


def build_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every client takes; clients add their own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", required=True, help="emulator base URL (127.0.0.1 only)")
    p.add_argument("--n", type=int, required=True, help="number of tasks")
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--distinct", type=int, default=None, help="distinct tasks among n (default: all)")
    p.add_argument("--seed", type=int, default=1, help="seed of the task order")
    p.add_argument("--system-file", type=Path, default=None, help="system prompt text (peers)")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    p.add_argument(
        "--warmup", type=int, default=0, help="calls before measuring (then the emulator is reset)"
    )
    p.add_argument("--task-prefix", default="", help="prefix of every task (a second batch can differ)")
    return p


def task_order(n: int, distinct: int | None, seed: int) -> list[int]:
    """Task keys in run order: all ``distinct`` keys once, the rest repeats, shuffled deterministically."""
    d = n if distinct is None else max(1, min(distinct, n))
    rng = random.Random(seed)
    keys = list(range(d)) + [rng.randrange(d) for _ in range(n - d)]
    if d < n:
        rng.shuffle(keys)
    return keys


def task_text(key: int, prefix: str = "") -> str:
    """The task for ``key``: identical text in every client, so request bodies are comparable."""
    return (
        f"{prefix}Task {key}: review change #{key} to parse_config(). Does it handle an empty file, a missing "
        f"key and a value of the wrong type? Answer in three bullet points."
    )


def user_message(key: int, prefix: str = "") -> str:
    """The user turn the peers send: the task in the same ``<task>`` delimiters claude-force uses."""
    return f"<task>\n{task_text(key, prefix)}\n</task>"


def read_system(path: Path | None) -> str:
    if path is None:
        return "You are a careful code reviewer."
    return path.read_text(encoding="utf-8")


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_emulator(url: str) -> None:
    """``POST /_emulator/reset`` (after a warm-up, so the harness counts only measured requests)."""
    req = urllib.request.Request(url.rstrip("/") + "/_emulator/reset", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


class Meter:
    """Wall and CPU of the measured section, plus CPU per call in each third of the completions.

    Example::

        meter = Meter(n)
        meter.start()
        ...  # call meter.tick() once per finished task
        figures = meter.stop()
    """

    __slots__ = ("_cpu0", "_cuts", "_done", "_marks", "_n", "_wall0", "cpu_s", "wall_s")

    def __init__(self, n: int) -> None:
        self._n = n
        self._cuts = {n // 3, (2 * n) // 3} if n >= 3 else set()
        self._marks: list[tuple[int, float]] = []
        self._done = 0
        self._cpu0 = 0.0
        self._wall0 = 0.0
        self.cpu_s = 0.0
        self.wall_s = 0.0

    def __repr__(self) -> str:
        return f"Meter(n={self._n}, done={self._done})"

    def start(self) -> None:
        # A full collection first, in every client alike: the garbage and the promotions of its imports and
        # warm-up would otherwise set off one full collection (of the whole import-time heap) at a moment that
        # depends on the client's import size, inside a window of about a second.
        gc.collect()
        self._wall0 = time.perf_counter()
        self._cpu0 = cpu_seconds()

    def tick(self) -> None:
        self._done += 1
        if self._done in self._cuts:
            self._marks.append((self._done, cpu_seconds()))

    def stop(self) -> dict[str, Any]:
        cpu1 = cpu_seconds()
        self.wall_s = time.perf_counter() - self._wall0
        self.cpu_s = cpu1 - self._cpu0
        points = [(0, self._cpu0), *self._marks, (self._done, cpu1)]
        thirds = [
            round((c1 - c0) * 1000.0 / (d1 - d0), 4)
            for (d0, c0), (d1, c1) in itertools.pairwise(points)
            if d1 > d0
        ]
        n = max(1, self._n)
        return {
            "wall_s": round(self.wall_s, 4),
            "cpu_s": round(self.cpu_s, 4),
            "cpu_ms_per_call": round(self.cpu_s * 1000.0 / n, 4),
            "thirds_cpu_ms_per_call": thirds,
        }


@dataclass(slots=True)
class Outcome:
    """Counts of one batch."""

    ok: int = 0
    failed: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)

    def add_error(self, exc: BaseException) -> None:
        self.failed += 1
        self.errors[error_kind(exc)] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failed": self.failed,
            "errors": dict(self.errors.most_common(MAX_ERROR_KINDS)),
        }


def error_kind(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    name = type(exc).__name__
    return f"{name}:{status}" if isinstance(status, int) else name


async def run_gather(
    call: Callable[[int], Awaitable[object]], keys: Sequence[int], concurrency: int, meter: Meter
) -> Outcome:
    """The peers' pattern: one coroutine per task, an ``asyncio.Semaphore``, ``asyncio.gather``."""
    sem = asyncio.Semaphore(concurrency)
    outcome = Outcome()

    async def one(key: int) -> None:
        async with sem:
            try:
                await call(key)
            except Exception as exc:
                outcome.add_error(exc)
            else:
                outcome.ok += 1
        meter.tick()

    await asyncio.gather(*(one(k) for k in keys))
    return outcome


async def warm_up(call: Callable[[int], Awaitable[object]], count: int, url: str) -> None:
    """Run ``count`` calls on keys no workload uses, then reset the emulator's counters."""
    if count <= 0:
        return
    for i in range(count):
        with contextlib.suppress(Exception):  # a failed warm-up call only means less warm-up
            await call(-1 - i)
    await asyncio.get_running_loop().run_in_executor(None, reset_emulator, url)


def emit(result: dict[str, Any]) -> None:
    """The client's one result line."""
    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 2))
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


def main(
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]], parser: argparse.ArgumentParser
) -> int:
    """Parse arguments, run the async client, print its result; a crash prints ``{"error": ...}``."""
    args = parser.parse_args()
    try:
        result: dict[str, Any] = asyncio.run(run(args))
    except Exception as exc:
        emit({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]})
        return 1
    emit(result)
    return 0


class EmptyContent(Exception):
    """A 200 answer without text content (counted as a failed task by every client)."""
