"""Build the layer stack from settings. The one place that knows which layers exist and in what order.

Outermost first::

    [task span] -> screen -> cache -> single-flight -> prompt-cache warm-up -> retry -> [attempt span]
        -> budget -> breaker -> limiter -> transport

The span layers exist only when ``opentelemetry-api`` is installed and ``telemetry`` is on.
Retry sits outside budget, breaker and limiter: every attempt is a real API request, so each one is reserved for
and settled by the budget, passes the limiter and is counted by the breaker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from claude_force.clock import Clock, Sleep
from claude_force.config import ProjectConfig
from claude_force.layers.base import Layer
from claude_force.models import AgentResult, Request, Response
from claude_force.settings import InjectionPolicy, Settings
from claude_force.transports import Transport

if TYPE_CHECKING:
    from claude_force.cache import ResponseCache
    from claude_force.security.injection import Detector
    from claude_force.tracking import PerformanceTracker, PriceTable

logger = logging.getLogger("claude_force.pipeline")


@dataclass(slots=True)
class Pipeline:
    """The built layers plus the shared services they use (cache, prices, tracker)."""

    layers: list[Layer]
    transport: Transport
    prices: PriceTable
    tracker: PerformanceTracker
    cache: ResponseCache | None = None
    closables: list[Any] = field(default_factory=list)

    def cost(self, request: Request, response: Response | None) -> float | None:
        """USD of ``response`` plus the billed attempts that failed before it (None if the model is unpriced)."""
        ttl = request.prompt_cache_ttl
        total: float | None = (
            0.0 if response is None else self.prices.cost(request.model, response.usage, cache_ttl=ttl)
        )
        for usage in request.context.failed_usage or ():
            part = self.prices.cost(request.model, usage, cache_ttl=ttl)
            total = None if total is None or part is None else total + part
        return total

    def min_cacheable_tokens(self, model: str) -> int:
        return self.prices.min_cacheable_tokens(model)

    def record(self, result: AgentResult, *, workflow: str | None, position: int | None) -> None:
        try:
            self.tracker.record(result, workflow=workflow, position=position)
        except Exception:  # tracking must never fail a task
            logger.exception("tracker failed to record a result")

    async def aclose(self) -> None:
        """Cancel owned in-flight work, then close the transport, the tracker (flushing it) and the cache.

        Each step runs even if an earlier one raised (or was cancelled), so records and cache writes are flushed.
        """
        try:
            for closable in self.closables:
                await closable.aclose()
        finally:
            try:
                await self.transport.aclose()
            finally:
                try:
                    await self.tracker.aclose()
                finally:
                    if self.cache is not None:
                        await self.cache.aclose()


def build_pipeline(
    settings: Settings,
    *,
    config: ProjectConfig,
    transport: Transport,
    clock: Clock,
    sleep: Sleep,
    layers: Sequence[Layer] | None = None,
    detector: Detector | None = None,
) -> Pipeline:
    """Create the layers and services described by ``settings``. ``layers`` replaces the stack (tests)."""
    from claude_force.cache import ResponseCache
    from claude_force.layers.breaker import BreakerLayer, BreakerPolicy
    from claude_force.layers.budget import BudgetLayer
    from claude_force.layers.cache import CacheLayer
    from claude_force.layers.limiter import LimiterLayer
    from claude_force.layers.retry import RetryLayer, RetryPolicy
    from claude_force.layers.screen import ScreenLayer
    from claude_force.layers.singleflight import SingleFlightLayer
    from claude_force.layers.telemetry import AttemptSpanLayer, TaskSpanLayer
    from claude_force.layers.warmup import PromptCacheWarmupLayer
    from claude_force.tracking import PerformanceTracker, PriceTable, hooks

    prices = PriceTable.load(settings.prices)
    sink_dir = settings.metrics_dir if settings.metrics_dir is not None else config.root / "metrics"
    observers = [hooks.prometheus_observer()] if settings.telemetry and hooks.prometheus_available() else []
    tracker = PerformanceTracker(sink_dir=sink_dir, observers=observers)
    spans = settings.telemetry and hooks.otel_configured()
    if layers is not None:
        return Pipeline(layers=list(layers), transport=transport, prices=prices, tracker=tracker)

    def policy_for(agent_name: str) -> InjectionPolicy:
        if settings.injection_policy_override is not None:
            return settings.injection_policy_override
        entry = config.data.agents.get(agent_name)
        if entry is not None and entry.injection_policy is not None:
            return entry.injection_policy
        return settings.injection_policy

    stack: list[Layer] = [TaskSpanLayer()] if spans else []
    stack += [
        ScreenLayer(
            policy_for=policy_for,
            detector=detector,
            max_task_chars=settings.max_task_chars,
            max_task_tokens=settings.max_task_tokens,
            canary=settings.canary,
        )
    ]
    cache = None
    closables: list[Any] = []
    if settings.cache.enabled:
        cs = settings.cache
        cache = ResponseCache(
            cache_dir=cs.dir,
            secret=settings.cache_secret.get_secret_value() if settings.cache_secret else None,
            ttl_hours=cs.ttl_hours,
            max_memory_mb=cs.max_memory_mb,
            max_disk_mb=cs.max_disk_mb,
            max_entry_bytes=cs.max_entry_bytes,
            agent_quota_mb=cs.agent_quota_mb,
        )
        single = SingleFlightLayer()
        closables.append(single)
        stack += [CacheLayer(cache=cache), single]
    stack.append(PromptCacheWarmupLayer(min_tokens=prices.min_cacheable_tokens, clock=clock))
    retry = RetryLayer(
        policy=RetryPolicy(max_attempts=settings.max_attempts, attempt_timeout=settings.timeout_seconds),
        clock=clock,
        sleep=sleep,
    )
    closables.append(retry)  # before the transport closes: no attempt after that
    stack.append(retry)
    if spans:
        stack.append(AttemptSpanLayer())
    if settings.budget_usd is not None:
        stack.append(BudgetLayer(budget_usd=settings.budget_usd, prices=prices))
    stack += [
        BreakerLayer(
            endpoint=settings.base_url,
            policy=BreakerPolicy(wait_when_open=settings.breaker_wait_when_open),
            clock=clock,
            sleep=sleep,
        ),
        LimiterLayer(limits_for=settings.limits_for, clock=clock, sleep=sleep),
    ]
    return Pipeline(
        layers=stack, transport=transport, prices=prices, tracker=tracker, cache=cache, closables=closables
    )
