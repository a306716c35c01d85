"""``AsyncAgentOrchestrator``: composes config, pipeline layers and a transport, and turns calls into results.

The orchestrator only composes. Each concern lives in a layer (see :mod:`claude_force.pipeline`); the transport is
the only thing that speaks HTTP. One task's failure becomes a failed :class:`AgentResult` with an error code; it
never raises out of ``execute_multiple`` or cancels other tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import traceback
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claude_force import constants as C
from claude_force.clock import Clock, Sleep, monotonic
from claude_force.clock import sleep as real_sleep
from claude_force.config import Agent, ProjectConfig, load_config
from claude_force.errors import ClaudeForceError, ConfigError, OrchestratorClosed, TooManyTasks
from claude_force.fanout import TaskSpec, fan_out
from claude_force.inputs import check_overrides, check_params, check_text
from claude_force.layers.base import Layer, compose
from claude_force.layers.screen import check_task_limits, screened_text
from claude_force.models import (
    RESERVED_PARAMS,
    AgentResult,
    CallContext,
    Request,
    Response,
    WorkflowResult,
)
from claude_force.pipeline import Pipeline, build_pipeline
from claude_force.prompt import build_system, wrap_task
from claude_force.security.sanitize import safe
from claude_force.settings import Settings, resolve_settings
from claude_force.transports import Transport, make_transport

if TYPE_CHECKING:
    from claude_force.cache import ResponseCache
    from claude_force.security.injection import Detector
    from claude_force.tracking import PerformanceTracker

logger = logging.getLogger("claude_force.orchestrator")


class AsyncAgentOrchestrator:
    """Run agents from a ``.claude/claude.json`` concurrently, within limits, through the pipeline.

    Example::

        async with AsyncAgentOrchestrator(".claude/claude.json", max_concurrent=20) as orch:
            result = await orch.execute_agent("code-reviewer", "Review this diff: ...")
            results = await orch.execute_multiple([("code-reviewer", t) for t in tasks])
    """

    def __init__(
        self,
        config_path: str | Path = C.DEFAULT_CONFIG_PATH,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        transport: str | Transport | None = None,
        max_concurrent: int | None = None,
        timeout_seconds: float | None = None,
        enable_cache: bool | None = None,
        settings: Settings | None = None,
        layers: Sequence[Layer] | None = None,
        detector: Detector | None = None,
        clock: Clock = monotonic,
        sleep: Sleep = real_sleep,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> None:
        self.config: ProjectConfig = load_config(config_path)
        env = os.environ if env is None else env
        if settings is None:
            flags: dict[str, Any] = {
                "api_key": api_key,
                "base_url": base_url,
                "transport": transport if isinstance(transport, str) else None,
                "max_concurrency": max_concurrent,
                "timeout_seconds": timeout_seconds,
                "enable_cache": enable_cache,
                **overrides,
            }
            settings = resolve_settings(
                flags=flags,
                env=env,
                config_block=self.config.orchestrator_block,
                config_path=self.config.path,
            )
        self.settings = settings
        self.config.max_file_bytes = settings.max_file_bytes
        self._clock = clock
        # Created here, never lazily: every execute_* call shares this one cap.
        self._semaphore = asyncio.Semaphore(settings.max_concurrency)
        if transport is None or isinstance(transport, str):
            key = settings.api_key.get_secret_value() if settings.api_key else None
            if not key and settings.transport != "mock":
                raise ConfigError("no API key: set ANTHROPIC_API_KEY or pass api_key=", key="api_key")
            self._transport: Transport = make_transport(
                settings.transport,
                api_key=key or "",
                base_url=settings.base_url,
                pool_size=settings.max_concurrency,
                max_response_bytes=settings.max_response_bytes,
            )
        else:
            self._transport = transport
        self._pipeline: Pipeline = build_pipeline(
            settings,
            config=self.config,
            transport=self._transport,
            clock=clock,
            sleep=sleep,
            layers=layers,
            detector=detector,
        )
        self._handler = compose(self._pipeline.layers, self._send)
        self._closed = False
        self._active = 0
        self._cache_warned: set[tuple[str, str]] = set()
        self._systems: dict[str, tuple[Agent, str, str]] = {}

    # --- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncAgentOrchestrator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def tracker(self) -> PerformanceTracker:
        """The :class:`~claude_force.tracking.PerformanceTracker` recording every finished task."""
        return self._pipeline.tracker

    @property
    def cache(self) -> ResponseCache | None:
        """The :class:`~claude_force.cache.ResponseCache`, or None when caching is off."""
        return self._pipeline.cache

    async def close(self) -> None:
        """Refuse new work, then close the transport, flush the tracker and close the cache."""
        if self._closed:
            return
        self._closed = True
        await self._pipeline.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"AsyncAgentOrchestrator(config={str(self.config.path)!r}, transport={self._transport!r}, "
            f"max_concurrent={self.settings.max_concurrency}, active={self._active}, {state})"
        )

    # --- building requests -----------------------------------------------------------------------

    def build_request(
        self,
        agent_name: str,
        task: str,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        previous_output: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Request:
        """Build the API request for one task (no I/O beyond loading the agent's files once)."""
        agent = self.config.agent(agent_name)
        check_text("task", task)
        check_text("previous_output", previous_output, optional=True)
        check_overrides(model, max_tokens)
        if params:
            check_params(params, reserved=RESERVED_PARAMS)
        # The limits before any work on the text (escaping it is linear, but a huge task should cost nothing).
        check_task_limits(
            screened_text(task, previous_output),
            max_chars=self.settings.max_task_chars,
            max_tokens=self.settings.max_task_tokens,
        )
        chosen_model = model or agent.entry.model or self.settings.default_model
        ttl = agent.entry.prompt_cache or self.settings.prompt_cache_ttl
        system = self._systems.get(agent_name)
        if system is None or system[0] is not agent:
            # Built and hashed once per agent: hashing a long prompt per call costs CPU and a GIL hand-off.
            text = build_system(agent)
            system = self._systems[agent_name] = (
                agent,
                text,
                hashlib.sha256(text.encode("utf-8")).hexdigest(),
            )
        request = Request(
            agent_name=agent_name,
            model=chosen_model,
            system=system[1],
            _system_hash=system[2],
            messages=[{"role": "user", "content": wrap_task(task, previous_output)}],
            max_tokens=self.settings.max_tokens if max_tokens is None else max_tokens,
            task=task,
            previous_output=previous_output,
            params=dict(params or {}),
            prompt_cache_ttl=None if ttl == "off" else ttl,
            context=CallContext(deadline=self._clock() + self.settings.deadline_seconds),
        )
        if request.prompt_cache_ttl is not None:
            self._warn_uncacheable(request)
        return request

    def _warn_uncacheable(self, request: Request) -> None:
        key = (request.agent_name, request.model)
        if key in self._cache_warned:
            return
        self._cache_warned.add(key)
        minimum = self._pipeline.min_cacheable_tokens(request.model)
        estimate = (len(request.system) + 3) // 4
        if estimate < minimum:
            logger.warning(
                "agent %s: system prompt (~%d tokens) is below %s's minimum cacheable length (%d); "
                "prompt caching will not apply",
                safe(request.agent_name, 64),
                estimate,
                safe(request.model, 64),
                minimum,
            )

    # --- execution -------------------------------------------------------------------------------

    def _send(self, request: Request) -> Awaitable[Response]:
        # A plain function returning the transport's coroutine: no extra frame on the await chain.
        ctx = request.context
        ctx.attempt_sent = None  # handed to the transport: sent unless the transport says it was not
        return self._transport.send(request, timeout=ctx.attempt_timeout)

    async def execute_agent(
        self,
        agent_name: str,
        task: str,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        workflow: str | None = None,
        position: int | None = None,
        previous_output: str | None = None,
        **params: Any,
    ) -> AgentResult:
        """Run one task. Never raises for a task failure: the result carries ``error_code``.

        Raises :class:`OrchestratorClosed` after :meth:`close`.
        """
        if self._closed:
            raise OrchestratorClosed("the orchestrator is closed; create a new one")
        start = self._clock()
        request: Request | None = None
        async with self._semaphore:
            self._active += 1
            try:
                request = self.build_request(
                    agent_name,
                    task,
                    model=model,
                    max_tokens=max_tokens,
                    previous_output=previous_output,
                    params=params,
                )
                request.context.workflow = workflow
                request.context.position = position
                response = await self._handler(request)
            except ClaudeForceError as exc:
                result = self._failure(agent_name, exc.code, exc.message, request, start, model)
            except Exception as exc:  # a bug must not kill a batch: report it as a failed result
                # One line; the traceback only at DEBUG (the CLI's --debug), itself escaped and redacted like any
                # other value: a chained exception's text is as untrusted as the task that caused it.
                logger.error("internal error in task for agent %s: %s", safe(agent_name, 64), safe(exc))
                if logger.isEnabledFor(logging.DEBUG):
                    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                    logger.debug("traceback: %s", safe(trace, 8000))
                result = self._failure(
                    agent_name, "internal_error", f"{type(exc).__name__}: {safe(exc)}", request, start, model
                )
            else:
                result = self._success(request, response, start)
            finally:
                self._active -= 1
        self._pipeline.record(result, workflow=workflow, position=position)
        return result

    def _metadata(self, request: Request | None, model: str | None, start: float) -> dict[str, Any]:
        ctx = request.context if request is not None else CallContext()
        meta: dict[str, Any] = {
            "model": request.model if request is not None else (model or self.settings.default_model),
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cost_usd": 0.0,
            "cached": ctx.cached,
            "coalesced": ctx.coalesced,
            "attempts": ctx.attempts,
            "attempt_errors": list(ctx.attempt_errors),
            "latency_ms": round((self._clock() - start) * 1000.0, 3),
            "request_id": None,
            "stop_reason": None,
            "warnings": list(ctx.warnings),
        }
        if ctx.injection is not None:
            meta["injection"] = ctx.injection
        if ctx.system_prompt_leak:
            meta["system_prompt_leak"] = True
        return meta

    def _success(self, request: Request, response: Response, start: float) -> AgentResult:
        meta = self._metadata(request, None, start)
        usage = response.usage
        meta.update(
            model=response.model or request.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
            request_id=response.request_id,
            stop_reason=response.stop_reason,
        )
        ctx = request.context
        # A cache hit or a coalesced follower stays at 0: the leader's call (or an earlier run) paid for it.
        if not (ctx.cached or ctx.coalesced):
            meta["cost_usd"] = self._pipeline.cost(request, response)
        if response.stop_reason == "max_tokens":
            meta["warnings"].append("max_tokens: the output was cut at max_tokens")
        if response.usage_missing:
            meta["warnings"].append("missing_usage: the response had no usage; tokens and cost are 0")
        return AgentResult(agent_name=request.agent_name, success=True, output=response.text, metadata=meta)

    def _failure(
        self,
        agent_name: str,
        code: str,
        message: str,
        request: Request | None,
        start: float,
        model: str | None,
    ) -> AgentResult:
        meta = self._metadata(request, model, start)
        if request is not None and request.context.failed_usage:
            meta["cost_usd"] = self._pipeline.cost(request, None)  # attempts billed before it failed
        return AgentResult(
            agent_name=agent_name, success=False, errors=[message], error_code=code, metadata=meta
        )

    async def stream_multiple(self, tasks: Iterable[TaskSpec]) -> AsyncIterator[tuple[int, AgentResult]]:
        """Run tasks with at most ``max_concurrent`` in flight; yield ``(index, result)`` as each finishes.

        ``tasks`` is consumed lazily, so a generator of a million tasks never sits in memory at once.
        """
        if self._closed:
            raise OrchestratorClosed("the orchestrator is closed; create a new one")
        limit = self.settings.max_tasks_per_call
        if isinstance(tasks, Sequence) and len(tasks) > limit:
            raise TooManyTasks(f"{len(tasks)} tasks exceed max_tasks_per_call={limit}")
        # aclosing: leaving this generator early closes the inner one (and its workers) at once, not at GC.
        stream = fan_out(self.execute_agent, tasks, concurrency=self.settings.max_concurrency, limit=limit)
        async with contextlib.aclosing(stream):
            async for item in stream:
                yield item

    async def execute_multiple(self, tasks: Iterable[TaskSpec]) -> list[AgentResult]:
        """Run many ``(agent, task)`` pairs or dicts concurrently; results come back in input order."""
        results: dict[int, AgentResult] = {}
        async for index, result in self.stream_multiple(tasks):
            results[index] = result
        return [results[i] for i in range(len(results))]

    async def execute_workflow(self, name: str, task: str, pass_output: bool = True) -> WorkflowResult:
        """Run a workflow's agents in order; each step gets the task plus the previous step's output.

        Stops at the first failed step; ``failed_step``/``failed_agent`` say where.
        """
        if self._closed:
            raise OrchestratorClosed("the orchestrator is closed; create a new one")
        steps = self.config.workflow(name)
        outcome = WorkflowResult(workflow=name, success=True)
        previous: str | None = None
        for position, agent in enumerate(steps):
            result = await self.execute_agent(
                agent,
                task,
                workflow=name,
                position=position,
                previous_output=previous if pass_output else None,
            )
            outcome.steps.append(result)
            if not result.success:
                outcome.success = False
                outcome.failed_step = position
                outcome.failed_agent = agent
                break
            previous = result.output
        return outcome
