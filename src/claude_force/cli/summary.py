"""Progress bars and the end-of-run summary table for ``run batch`` and ``demo``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from claude_force.models import AgentResult
from claude_force.security.sanitize import safe


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class RunSummary:
    """Accumulates the figures shown at the end of a run (numbers only, no outputs kept)."""

    total: int = 0
    succeeded: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    unknown_cost: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_hits: int = 0
    coalesced: int = 0
    tokens_saved_by_cache: int = 0
    prompt_cache_read_tokens: int = 0
    prompt_cache_write_tokens: int = 0
    attempts: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, result: AgentResult) -> None:
        m = result.metadata
        self.total += 1
        if result.success:
            self.succeeded += 1
        else:
            self.failed[result.error_code or "error"] += 1
        cost = m.get("cost_usd")
        if cost is None:
            self.unknown_cost += 1
        else:
            self.cost_usd += float(cost)
        tokens = int(m.get("input_tokens") or 0) + int(m.get("output_tokens") or 0)
        if m.get("cached") or m.get("coalesced"):
            self.tokens_saved_by_cache += tokens + int(m.get("cache_read_input_tokens") or 0)
            self.cache_hits += bool(m.get("cached"))
            self.coalesced += bool(m.get("coalesced"))
        else:
            self.input_tokens += int(m.get("input_tokens") or 0)
            self.output_tokens += int(m.get("output_tokens") or 0)
            self.prompt_cache_read_tokens += int(m.get("cache_read_input_tokens") or 0)
            self.prompt_cache_write_tokens += int(m.get("cache_creation_input_tokens") or 0)
        self.attempts += int(m.get("attempts") or 0)
        latency = m.get("latency_ms")
        if isinstance(latency, (int, float)):
            self.latencies.append(float(latency))

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    def table(self, wall_seconds: float) -> Table:
        lat = sorted(self.latencies)
        p50, p95 = _percentile(lat, 0.5), _percentile(lat, 0.95)
        t = Table(title="Summary", show_header=False, title_justify="left")
        t.add_column("what", style="bold")
        t.add_column("value")
        t.add_row("tasks", f"{self.total} ({self.succeeded} succeeded, {self.failed_total} failed)")
        for code, n in self.failed.most_common():
            t.add_row(Text(f"  failed: {safe(code, 40)}"), str(n))
        rate = self.total / wall_seconds if wall_seconds > 0 else 0.0
        t.add_row("wall time", f"{wall_seconds:.2f} s ({rate:.1f} tasks/s)")
        t.add_row("latency p50 / p95", f"{p50 or 0:.0f} ms / {p95 or 0:.0f} ms")
        cost = f"${self.cost_usd:.4f}"
        if self.unknown_cost:
            cost += f" (+{self.unknown_cost} tasks with unknown price)"
        t.add_row("total cost", cost)
        t.add_row("API calls (attempts)", str(self.attempts))
        t.add_row("tokens in / out", f"{self.input_tokens:,} / {self.output_tokens:,}")
        t.add_row(
            "saved by response cache",
            f"{self.cache_hits} hits, {self.coalesced} coalesced, {self.tokens_saved_by_cache:,} tokens",
        )
        t.add_row(
            "prompt caching",
            f"{self.prompt_cache_read_tokens:,} tokens read, {self.prompt_cache_write_tokens:,} written",
        )
        return t


class BatchProgress:
    """A rich progress bar showing done, failed, rate and ETA."""

    def __init__(self, console: Console, total: int, description: str = "tasks") -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("{task.fields[rate]:.1f}/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID = self._progress.add_task(description, total=total, failed=0, rate=0.0)
        self._failed = 0
        self._done = 0

    def __enter__(self) -> BatchProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def advance(self, result: AgentResult) -> None:
        self._done += 1
        if not result.success:
            self._failed += 1
        elapsed = self._progress.tasks[0].elapsed or 0.0
        rate = self._done / elapsed if elapsed > 0 else 0.0
        self._progress.update(self._task, advance=1, failed=self._failed, rate=rate)
