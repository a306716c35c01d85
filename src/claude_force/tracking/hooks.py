"""Optional exporters: Prometheus metrics and OpenTelemetry spans, each a no-op when its package is missing.

Nothing is imported until first use, so ``import claude_force`` stays cheap. Wire them like this::

    tracker = PerformanceTracker(observers=[prometheus_observer()])   # counters + latency histogram
    with task_span("reviewer", model="claude-sonnet-5-5"):            # one span per task
        with attempt_span("reviewer", 1):                              # one span per attempt
            ...

Spans and metrics carry names, counts and codes only; never task or response text.
"""

from __future__ import annotations

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


class PrometheusExporter:
    """A tracker observer that updates Prometheus counters and a latency histogram.

    Metrics: ``claude_force_tasks_total{agent,model,status}``,
    ``claude_force_tokens_total{agent,model,kind}``, ``claude_force_cost_usd_total{agent,model}``,
    ``claude_force_task_latency_seconds{agent,model}``.
    """

    __slots__ = ("_children", "cost", "latency", "registry", "tasks", "tokens")

    def __init__(self, prom: Any, registry: Any) -> None:
        self.registry = prom.REGISTRY if registry is None else registry
        self._children: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        kw: dict[str, Any] = {"registry": self.registry}
        self.tasks = prom.Counter("claude_force_tasks", "Finished tasks", ["agent", "model", "status"], **kw)
        self.tokens = prom.Counter("claude_force_tokens", "Billed tokens", ["agent", "model", "kind"], **kw)
        self.cost = prom.Counter("claude_force_cost_usd", "Spend in USD", ["agent", "model"], **kw)
        self.latency = prom.Histogram(
            "claude_force_task_latency_seconds", "Task latency", ["agent", "model"], **kw
        )

    def unregister(self) -> None:
        """Remove this exporter's metrics from its registry (so a fresh exporter can register them again)."""
        for metric in (self.tasks, self.tokens, self.cost, self.latency):
            with contextlib.suppress(KeyError):
                self.registry.unregister(metric)

    def __call__(self, rec: Record) -> None:
        status = "ok" if rec.success else (rec.error_code or "error")
        key = (rec.agent, rec.model, status)
        children = self._children.get(key)
        if children is None:
            # labels() takes a lock and builds a key per call; resolve each label set once.
            agent, model = rec.agent, rec.model
            children = (
                self.tasks.labels(agent, model, status),
                *(self.tokens.labels(agent, model, kind) for kind in _TOKEN_KINDS),
                self.cost.labels(agent, model),
                self.latency.labels(agent, model),
            )
            if len(self._children) < 10_000:
                self._children[key] = children
        tasks, t_in, t_out, t_write, t_read, cost, latency = children
        tasks.inc()
        for counter, n in (
            (t_in, rec.input_tokens),
            (t_out, rec.output_tokens),
            (t_write, rec.cache_creation_input_tokens),
            (t_read, rec.cache_read_input_tokens),
        ):
            if n:
                counter.inc(n)
        if rec.cost_usd:
            cost.inc(rec.cost_usd)
        latency.observe(rec.latency_ms / 1000.0)


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
