"""Optional exporters: Prometheus metrics and OpenTelemetry spans, each a no-op when its package is missing.

Nothing is imported until first use, so ``import claude_force`` stays cheap. Wire them like this::

    tracker = PerformanceTracker(observers=[prometheus_observer()])   # counters + latency histogram
    with task_span("reviewer", model="claude-sonnet-5-5"):            # one span per task
        with attempt_span("reviewer", 1):                              # one span per attempt
            ...

Spans and metrics carry names, counts and codes only; never task or response text.
"""

from __future__ import annotations

import bisect
import contextlib
import importlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from claude_force.tracking.sink import Record

logger = logging.getLogger("claude_force.tracking.hooks")

_lock = threading.Lock()
_modules: dict[str, Any] = {}
_exporters: dict[int, tuple[Any, PrometheusExporter]] = {}
_MISSING = object()


def _optional(name: str) -> Any:
    """The module ``name``, or None if it is not installed (the answer is cached)."""
    mod = _modules.get(name, _MISSING)
    if mod is _MISSING:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            mod = None
        _modules[name] = mod
    return mod


def reset() -> None:
    """Forget cached imports and exporters (for tests that hide or restore an optional package)."""
    with _lock:
        for _, exporter in _exporters.values():
            exporter.unregister()
        _modules.clear()
        _exporters.clear()


def prometheus_available() -> bool:
    return _optional("prometheus_client") is not None


def otel_available() -> bool:
    return _optional("opentelemetry.trace") is not None


def otel_configured() -> bool:
    """True when opentelemetry-api is installed AND an application has set a real tracer provider.

    With only the API installed, every span is a no-op; the pipeline then skips its span layers entirely.
    """
    trace = _optional("opentelemetry.trace")
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


# --- Prometheus ---------------------------------------------------------------------------------------------


_TOKEN_KINDS = ("input", "output", "cache_write", "cache_read")
#: The most label sets kept; later ones are folded into agent/model ``other`` (a bound on memory and on the
#: scrape size, like the tracker's own key bound).
MAX_LABEL_SETS = 10_000


class _Series:
    """Plain sums for one ``(agent, model)``: task counts per status, tokens, cost, latency buckets."""

    __slots__ = ("buckets", "cost", "latency_sum", "statuses", "tokens")

    def __init__(self, nbuckets: int) -> None:
        self.statuses: dict[str, int] = {}
        self.tokens = [0, 0, 0, 0]
        self.cost = 0.0
        self.buckets = [0] * nbuckets  # per bucket (not cumulative); the last one is +Inf
        self.latency_sum = 0.0


class PrometheusExporter:
    """A tracker observer whose sums Prometheus reads when it scrapes (a custom collector).

    Metrics: ``claude_force_tasks_total{agent,model,status}``,
    ``claude_force_tokens_total{agent,model,kind}``, ``claude_force_cost_usd_total{agent,model}``,
    ``claude_force_task_latency_seconds{agent,model}`` (a histogram with the client library's default buckets).

    Recording a task adds to plain numbers under one lock (about a microsecond); building the metric families
    happens only at scrape time. Updating the client library's own counters per task cost seven locked
    increments, several microseconds on every call of a hot pipeline.
    """

    __slots__ = ("_bounds", "_lock", "_series", "registry")

    def __init__(self, prom: Any, registry: Any) -> None:
        self.registry = prom.REGISTRY if registry is None else registry
        self._bounds: tuple[float, ...] = tuple(prom.Histogram.DEFAULT_BUCKETS)
        if self._bounds[-1] != float("inf"):
            self._bounds += (float("inf"),)
        self._series: dict[tuple[str, str], _Series] = {}
        self._lock = threading.Lock()
        self.registry.register(self)

    def unregister(self) -> None:
        """Remove this exporter from its registry (so a fresh exporter can register again)."""
        with contextlib.suppress(KeyError):
            self.registry.unregister(self)

    def __call__(self, rec: Record) -> None:
        status = "ok" if rec.success else (rec.error_code or "error")
        seconds = rec.latency_ms / 1000.0
        index = bisect.bisect_left(self._bounds, seconds)
        with self._lock:
            key = (rec.agent, rec.model)
            series = self._series.get(key)
            if series is None:
                if len(self._series) >= MAX_LABEL_SETS:
                    key = ("other", "other")
                    series = self._series.get(key)
                if series is None:
                    series = self._series[key] = _Series(len(self._bounds))
            series.statuses[status] = series.statuses.get(status, 0) + 1
            tokens = series.tokens
            tokens[0] += rec.input_tokens
            tokens[1] += rec.output_tokens
            tokens[2] += rec.cache_creation_input_tokens
            tokens[3] += rec.cache_read_input_tokens
            if rec.cost_usd:
                series.cost += rec.cost_usd
            series.buckets[min(index, len(self._bounds) - 1)] += 1
            series.latency_sum += seconds

    def describe(self) -> list[Any]:
        return []  # families are built at collect time; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        """The metric families, built from a consistent snapshot of the sums (called by the registry)."""
        core = _optional("prometheus_client.core")
        with self._lock:
            snapshot = [
                (agent, model, dict(s.statuses), list(s.tokens), s.cost, list(s.buckets), s.latency_sum)
                for (agent, model), s in self._series.items()
            ]
        tasks = core.CounterMetricFamily(
            "claude_force_tasks", "Finished tasks", labels=["agent", "model", "status"]
        )
        tokens = core.CounterMetricFamily(
            "claude_force_tokens", "Billed tokens", labels=["agent", "model", "kind"]
        )
        cost = core.CounterMetricFamily("claude_force_cost_usd", "Spend in USD", labels=["agent", "model"])
        latency = core.HistogramMetricFamily(
            "claude_force_task_latency_seconds", "Task latency", labels=["agent", "model"]
        )
        for agent, model, statuses, toks, spent, buckets, total in snapshot:
            for status, n in statuses.items():
                tasks.add_metric([agent, model, status], n)
            for kind, n in zip(_TOKEN_KINDS, toks, strict=True):
                tokens.add_metric([agent, model, kind], n)
            cost.add_metric([agent, model], spent)
            cumulative, running = [], 0
            for bound, n in zip(self._bounds, buckets, strict=True):
                running += n
                cumulative.append((_le(bound), running))
            latency.add_metric([agent, model], cumulative, total)
        yield from (tasks, tokens, cost, latency)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _noop(rec: Record) -> None:
    return None


def prometheus_observer(*, registry: Any = None) -> Callable[[Record], None]:
    """An observer for :class:`PerformanceTracker`; a no-op if ``prometheus_client`` is not installed.

    One exporter per registry (``None`` = the default registry), so calling this twice never registers twice.
    """
    prom = _optional("prometheus_client")
    if prom is None:
        return _noop
    with _lock:
        entry = _exporters.get(id(registry))
        if entry is None or entry[0] is not registry:  # the registry itself is kept, so its id stays unique
            entry = _exporters[id(registry)] = (registry, PrometheusExporter(prom, registry))
        return entry[1]


# --- OpenTelemetry ------------------------------------------------------------------------------------------


def _tracer() -> Any:
    trace = _optional("opentelemetry.trace")
    return None if trace is None else trace.get_tracer("claude_force")


def _attrs(**values: Any) -> dict[str, Any]:
    return {f"claude_force.{k}": v for k, v in values.items() if v is not None}


@contextlib.contextmanager
def task_span(
    agent: str, *, model: str | None = None, workflow: str | None = None, position: int | None = None
) -> Iterator[Any]:
    """A span around one task (yields the span, or None when OpenTelemetry is not installed)."""
    tracer = _tracer()
    if tracer is None:
        yield None
        return
    attrs = _attrs(agent=agent, model=model, workflow=workflow, position=position)
    with tracer.start_as_current_span("claude_force.task", attributes=attrs) as span:
        yield span


@contextlib.contextmanager
def attempt_span(agent: str, attempt: int, *, model: str | None = None) -> Iterator[Any]:
    """A span around one API attempt of a task (child of the task span when one is current)."""
    tracer = _tracer()
    if tracer is None:
        yield None
        return
    attrs = _attrs(agent=agent, attempt=attempt, model=model)
    with tracer.start_as_current_span("claude_force.attempt", attributes=attrs) as span:
        yield span
