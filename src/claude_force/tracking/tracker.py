"""``PerformanceTracker``: bounded, cheap per-task metrics with an optional JSONL sink.

Memory is bounded: a ring of the last ``ring_size`` records (tuples), plus one streaming aggregate per agent
and per model (counters and a :class:`~claude_force.tracking.histogram.LogHistogram`). ``record()`` is
synchronous and takes a few microseconds; persistence happens on the sink's thread.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claude_force import constants
from claude_force.models import AgentResult
from claude_force.tracking.histogram import LogHistogram
from claude_force.tracking.sink import DEFAULT_ROTATE_BYTES, MAX_NAME_CHARS, JsonlSink, Record

logger = logging.getLogger("claude_force.tracking.tracker")

#: Distinct agent / model / error-code keys kept before the rest are folded into ``OTHER``.
DEFAULT_MAX_KEYS = 1000
OTHER = "(other)"
Observer = Callable[[Record], None]
#: Computes bucket keys once per record for every aggregate (all share the default accuracy).
_KEY_HIST = LogHistogram()


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


class _Agg:
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

    def merge(self, other: _Agg) -> None:
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


def _i(value: Any) -> int:
    if type(value) is int:
        return value if value >= 0 else 0
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError, OverflowError):
        return 0


def _f(value: Any) -> float:
    """A finite float (NaN and infinities become 0.0, so no total or percentile turns into nan)."""
    if type(value) is not float:
        try:
            value = float(value or 0.0)
        except (TypeError, ValueError, OverflowError):
            return 0.0
    return value if math.isfinite(value) else 0.0


# --- the tracker --------------------------------------------------------------------------------------------


class PerformanceTracker:
    """Per-task metrics with bounded memory, and optional persistence to ``sink_dir``.

    Example::

        tracker = PerformanceTracker(sink_dir=Path(".claude/metrics"))
        tracker.record(result)              # on the hot path: a few microseconds, never blocks
        tracker.summary().total.latency.p95_ms
        tracker.costs().by_agent
        await tracker.aclose()              # flush the sink
    """

    __slots__ = (
        "_agents",
        "_clock",
        "_count",
        "_first_ts",
        "_last_ts",
        "_lock",
        "_max_keys",
        "_models",
        "_observers",
        "_ring",
        "_sink",
        "ring_size",
    )

    def __init__(
        self,
        *,
        ring_size: int = constants.DEFAULT_TRACKER_RING_SIZE,
        sink_dir: Path | None = None,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
        clock: Callable[[], float] = time.time,
        observers: Sequence[Observer] = (),
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if ring_size <= 0:
            raise ValueError("ring_size must be > 0")
        if max_keys < 2:
            raise ValueError("max_keys must be >= 2")
        self.ring_size = ring_size
        self._ring: collections.deque[Record] = collections.deque(maxlen=ring_size)
        self._clock = clock
        self._count = 0
        self._agents: dict[str, _Agg] = {}
        self._models: dict[str, _Agg] = {}
        self._max_keys = max_keys
        self._first_ts: float | None = None
        self._last_ts: float | None = None
        self._observers = tuple(observers)
        self._lock = threading.Lock()
        self._sink = (
            None if sink_dir is None else JsonlSink(directory=Path(sink_dir), rotate_bytes=rotate_bytes)
        )

    @classmethod
    def from_records(
        cls, records: Iterable[Record], *, ring_size: int = constants.DEFAULT_TRACKER_RING_SIZE
    ) -> PerformanceTracker:
        """A tracker (without a sink) holding ``records``, e.g. loaded back by :func:`load_records`."""
        tracker = cls(ring_size=ring_size)
        for rec in records:
            tracker.add(rec)
        return tracker

    @property
    def sink(self) -> JsonlSink | None:
        return self._sink

    def record(
        self, result: AgentResult, *, workflow: str | None = None, position: int | None = None
    ) -> None:
        """Record one finished task (its counters only: never its task or output text)."""
        get = result.metadata.get
        cost = get("cost_usd")
        agent = result.agent_name if type(result.agent_name) is str else str(result.agent_name)
        model = get("model") or ""
        if type(model) is not str:  # a result built by hand: still recorded, never an error here
            model = str(model)
        if len(agent) > MAX_NAME_CHARS or len(model) > MAX_NAME_CHARS:  # what the loader accepts back
            agent, model = agent[:MAX_NAME_CHARS], str(model)[:MAX_NAME_CHARS]
        if workflow is not None and len(workflow) > MAX_NAME_CHARS:
            workflow = workflow[:MAX_NAME_CHARS]
        rec = Record(
            self._clock(),
            agent,
            model,
            bool(result.success),
            result.error_code,
            _f(get("latency_ms")),
            _i(get("attempts")),
            _i(get("input_tokens")),
            _i(get("output_tokens")),
            _i(get("cache_creation_input_tokens")),
            _i(get("cache_read_input_tokens")),
            None if cost is None else _f(cost),
            bool(get("cached")),
            bool(get("coalesced")),
            workflow,
            position,
        )
        self.add(rec)

    def add(self, rec: Record) -> None:
        """Record an already-built :class:`Record`."""
        lat = rec.latency_ms
        if lat != lat or lat in (math.inf, -math.inf):
            rec = rec._replace(latency_ms=0.0)
            lat = 0.0
        key = _KEY_HIST.key(lat)
        with self._lock:
            self._count += 1
            self._ring.append(rec)
            # The overall total is merged from the per-agent aggregates when read, not kept per record.
            self._group(self._agents, rec.agent).add(rec, key)
            self._group(self._models, rec.model).add(rec, key)
            if self._first_ts is None:
                self._first_ts = rec.ts
            self._last_ts = rec.ts
        if self._sink is not None:
            self._sink.submit(rec)
        for observe in self._observers:
            try:
                observe(rec)
            except Exception as exc:  # an exporter bug must never fail a task: drop the observer, log once
                self._observers = tuple(o for o in self._observers if o is not observe)
                logger.warning("metrics observer %r failed (%s); disabled", observe, type(exc).__name__)

    def _group(self, groups: dict[str, _Agg], key: str) -> _Agg:
        agg = groups.get(key)
        if agg is None:
            if len(groups) >= self._max_keys - 1:  # one slot stays free for OTHER
                key = OTHER
                agg = groups.get(key)
            if agg is None:
                agg = groups[key] = _Agg()
        return agg

    def _total(self) -> _Agg:
        total = _Agg()
        for agg in self._agents.values():
            total.merge(agg)
        return total

    # --- reading --------------------------------------------------------------------------------------------

    def recent(self, n: int | None = None) -> list[Record]:
        """The last ``n`` records (all of the ring by default), oldest first."""
        with self._lock:
            items = list(self._ring)
        return items if n is None else items[-n:] if n > 0 else []

    def summary(self) -> Summary:
        sink = self._sink
        with self._lock:
            return Summary(
                total=self._total().stats("total"),
                agents=len(self._agents),
                models=len(self._models),
                first_ts=self._first_ts,
                last_ts=self._last_ts,
                ring_size=self.ring_size,
                ring_len=len(self._ring),
                sink_written=0 if sink is None else sink.written,
                sink_dropped=0 if sink is None else sink.dropped,
                sink_errors=0 if sink is None else sink.errors,
            )

    def by_agent(self) -> list[GroupStats]:
        """One :class:`GroupStats` per agent, by name."""
        with self._lock:
            return [agg.stats(name) for name, agg in sorted(self._agents.items())]

    def by_model(self) -> list[GroupStats]:
        """One :class:`GroupStats` per model, by name."""
        with self._lock:
            return [agg.stats(name) for name, agg in sorted(self._models.items())]

    def costs(self) -> Costs:
        def lines(groups: dict[str, _Agg]) -> tuple[CostLine, ...]:
            out = [CostLine(name, a.count, a.cost, a.unpriced) for name, a in groups.items()]
            return tuple(sorted(out, key=lambda c: (-c.cost_usd, c.name)))

        with self._lock:
            total = self._total()
            return Costs(
                total_usd=total.cost,
                unpriced=total.unpriced,
                by_agent=lines(self._agents),
                by_model=lines(self._models),
            )

    def latency_histogram(self) -> LogHistogram:
        """A copy of the overall latency histogram (for charts)."""
        with self._lock:
            return self._total().latency

    # --- lifecycle ------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush the sink and stop its thread (no-op without a sink)."""
        if self._sink is not None:
            self._sink.close()

    async def aclose(self) -> None:
        if self._sink is not None:
            await self._sink.aclose()

    def __repr__(self) -> str:
        return (
            f"PerformanceTracker(records={self._count}, ring={len(self._ring)}/{self.ring_size}, "
            f"agents={len(self._agents)}, models={len(self._models)}, sink={self._sink!r})"
        )
