"""What the tracker keeps per group and what it reports: the streaming aggregate and the result types.

An :class:`Aggregate` is one agent's (or model's) counters, cost, error codes (at most 64, the rest under
``OTHER``) and latency histogram; it is updated per record and merged for totals. The frozen result types
(:class:`GroupStats`, :class:`Summary`, :class:`Costs`) are what ``PerformanceTracker`` hands out.
"""

from __future__ import annotations

from dataclasses import dataclass

from claude_force.tracking.histogram import LogHistogram
from claude_force.tracking.sink import Record

__all__ = ["OTHER", "Aggregate", "CostLine", "Costs", "GroupStats", "LatencyStats", "Summary"]

#: The key that stands for every agent, model or error code past the limit of distinct keys.
OTHER = "(other)"


# --- results ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Latency percentiles in milliseconds (None when there is no data)."""

    count: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Aggregates of one agent, one model, or everything."""

    name: str
    count: int
    successes: int
    failures: int
    success_rate: float | None
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: float
    unpriced: int
    cached: int
    coalesced: int
    attempts: int
    latency: LatencyStats
    errors: tuple[tuple[str, int], ...]

    @property
    def cache_hit_rate(self) -> float | None:
        """Share of tasks answered by the response cache."""
        return self.cached / self.count if self.count else None

    @property
    def prompt_cache_read_share(self) -> float | None:
        """Share of billed prompt tokens that were prompt-cache reads."""
        total = self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens
        return self.cache_read_input_tokens / total if total else None


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals over every recorded task, plus the sink's health."""

    total: GroupStats
    agents: int
    models: int
    first_ts: float | None
    last_ts: float | None
    ring_size: int
    ring_len: int
    sink_written: int
    sink_dropped: int
    sink_errors: int


@dataclass(frozen=True, slots=True)
class CostLine:
    name: str
    count: int
    cost_usd: float
    unpriced: int


@dataclass(frozen=True, slots=True)
class Costs:
    """Spend by agent and by model, most expensive first. ``unpriced`` tasks had no known price."""

    total_usd: float
    unpriced: int
    by_agent: tuple[CostLine, ...]
    by_model: tuple[CostLine, ...]


# --- aggregation --------------------------------------------------------------------------------------------


class Aggregate:
    """Streaming totals of one group (an agent or a model): counters, cost, error codes, a latency histogram."""

    __slots__ = (
        "attempts",
        "cached",
        "coalesced",
        "cost",
        "count",
        "cr",
        "cw",
        "errors",
        "inp",
        "latency",
        "out",
        "successes",
        "unpriced",
    )

    def __init__(self) -> None:
        self.count = self.successes = self.attempts = self.cached = self.coalesced = self.unpriced = 0
        self.inp = self.out = self.cw = self.cr = 0
        self.cost = 0.0
        self.latency = LogHistogram()
        self.errors: dict[str, int] = {}

    def add(self, r: Record, key: int | None) -> None:
        self.count += 1
        if r.success:
            self.successes += 1
        elif r.error_code is not None:
            errors = self.errors
            code = r.error_code if (r.error_code in errors or len(errors) < 64) else OTHER
            errors[code] = errors.get(code, 0) + 1
        self.attempts += r.attempts
        self.inp += r.input_tokens
        self.out += r.output_tokens
        self.cw += r.cache_creation_input_tokens
        self.cr += r.cache_read_input_tokens
        if r.cost_usd is None:
            self.unpriced += 1
        else:
            self.cost += r.cost_usd
        if r.cached:
            self.cached += 1
        if r.coalesced:
            self.coalesced += 1
        self.latency.add_keyed(r.latency_ms, key)

    def merge(self, other: Aggregate) -> None:
        self.count += other.count
        self.successes += other.successes
        self.attempts += other.attempts
        self.cached += other.cached
        self.coalesced += other.coalesced
        self.unpriced += other.unpriced
        self.inp += other.inp
        self.out += other.out
        self.cw += other.cw
        self.cr += other.cr
        self.cost += other.cost
        self.latency.merge(other.latency)
        for code, n in other.errors.items():
            self.errors[code] = self.errors.get(code, 0) + n

    def stats(self, name: str) -> GroupStats:
        h = self.latency
        return GroupStats(
            name=name,
            count=self.count,
            successes=self.successes,
            failures=self.count - self.successes,
            success_rate=self.successes / self.count if self.count else None,
            input_tokens=self.inp,
            output_tokens=self.out,
            cache_creation_input_tokens=self.cw,
            cache_read_input_tokens=self.cr,
            cost_usd=self.cost,
            unpriced=self.unpriced,
            cached=self.cached,
            coalesced=self.coalesced,
            attempts=self.attempts,
            latency=LatencyStats(h.count, h.mean, h.quantile(0.5), h.quantile(0.95), h.quantile(0.99), h.max),
            errors=tuple(sorted(self.errors.items(), key=lambda kv: (-kv[1], kv[0]))),
        )
