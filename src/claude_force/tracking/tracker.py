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
from pathlib import Path
from typing import Any

from claude_force import constants
from claude_force.models import AgentResult
from claude_force.tracking.aggregate import (
    OTHER,
    Aggregate,
    CostLine,
    Costs,
    GroupStats,
    LatencyStats,
    Summary,
)
from claude_force.tracking.histogram import LogHistogram
from claude_force.tracking.sink import DEFAULT_ROTATE_BYTES, MAX_NAME_CHARS, JsonlSink, Record

__all__ = [
    "DEFAULT_MAX_KEYS",
    "OTHER",
    "CostLine",
    "Costs",
    "GroupStats",
    "LatencyStats",
    "PerformanceTracker",
    "Summary",
]

logger = logging.getLogger("claude_force.tracking.tracker")

#: Distinct agent / model / error-code keys kept before the rest are folded into ``OTHER``.
DEFAULT_MAX_KEYS = 1000
Observer = Callable[[Record], None]
#: Computes bucket keys once per record for every aggregate (all share the default accuracy).
_KEY_HIST = LogHistogram()


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
        self._agents: dict[str, Aggregate] = {}
        self._models: dict[str, Aggregate] = {}
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

    def _group(self, groups: dict[str, Aggregate], key: str) -> Aggregate:
        agg = groups.get(key)
        if agg is None:
            if len(groups) >= self._max_keys - 1:  # one slot stays free for OTHER
                key = OTHER
                agg = groups.get(key)
            if agg is None:
                agg = groups[key] = Aggregate()
        return agg

    def _total(self) -> Aggregate:
        total = Aggregate()
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
        def lines(groups: dict[str, Aggregate]) -> tuple[CostLine, ...]:
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
