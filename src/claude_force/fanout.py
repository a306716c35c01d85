"""Fan-out: run many task specs with bounded concurrency and stream ``(index, result)`` as each finishes.

A spec is an ``(agent, task)`` pair or a mapping with ``agent``, ``task`` and optional ``model``, ``max_tokens``
and ``params``. The input is consumed lazily, so memory holds at most the tasks in flight plus a queue of
finished results twice the concurrency long.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from typing import Any

from claude_force.errors import ClaudeForceError, InputError, TooManyTasks
from claude_force.models import AgentResult

__all__ = ["TaskSpec", "agent_of", "fan_out", "parse_spec"]

TaskSpec = tuple[str, str] | Mapping[str, Any]
#: Runs one task: ``run(agent, task, **kwargs) -> AgentResult`` (the orchestrator's ``execute_agent``).
RunOne = Callable[..., Awaitable[AgentResult]]


async def fan_out(
    run: RunOne, tasks: Iterable[TaskSpec], *, concurrency: int, limit: int
) -> AsyncGenerator[tuple[int, AgentResult], None]:
    """``(index, result)`` for every spec in ``tasks``, as they finish, with ``concurrency`` workers."""
    queue: asyncio.Queue[tuple[int, AgentResult] | None] = asyncio.Queue(maxsize=concurrency * 2)
    iterator = enumerate(tasks)
    workers_n = concurrency

    async def worker() -> None:
        try:
            for index, spec in iterator:
                if index >= limit:
                    result = AgentResult(
                        agent_name=agent_of(spec),
                        success=False,
                        errors=[f"more than max_tasks_per_call={limit} tasks"],
                        error_code=TooManyTasks.code,
                    )
                else:
                    try:
                        agent, task, kwargs = parse_spec(spec)
                    except ClaudeForceError as exc:
                        result = AgentResult(
                            agent_name=agent_of(spec),
                            success=False,
                            errors=[exc.message],
                            error_code=exc.code,
                        )
                    else:
                        result = await run(agent, task, **kwargs)
                await queue.put((index, result))
        finally:
            await queue.put(None)

    workers = [asyncio.ensure_future(worker()) for _ in range(workers_n)]
    done_workers = 0
    try:
        while done_workers < workers_n:
            item = await queue.get()
            if item is None:
                done_workers += 1
            else:
                yield item
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


def agent_of(spec: object) -> str:
    if isinstance(spec, Mapping):
        name = spec.get("agent", spec.get("agent_name", ""))
        return name if isinstance(name, str) else ""
    if isinstance(spec, tuple) and spec and isinstance(spec[0], str):
        return spec[0]
    return ""


def parse_spec(spec: object) -> tuple[str, str, dict[str, Any]]:
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], str):
        return spec[0], spec[1], {}
    if isinstance(spec, Mapping):
        agent = spec.get("agent", spec.get("agent_name"))
        task = spec.get("task")
        if not isinstance(agent, str) or not agent:
            raise InputError("task spec needs a non-empty string 'agent'")
        if not isinstance(task, str):
            raise InputError("task spec needs a string 'task'")
        kwargs: dict[str, Any] = {}
        model, max_tokens = spec.get("model"), spec.get("max_tokens")
        if model is not None:
            if not isinstance(model, str) or not model:
                raise InputError("'model' must be a non-empty string")
            kwargs["model"] = model
        if max_tokens is not None:
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
                raise InputError("'max_tokens' must be a positive integer")
            kwargs["max_tokens"] = max_tokens
        params = spec.get("params")
        if isinstance(params, Mapping):
            kwargs.update(params)
        return agent, task, kwargs
    raise InputError("a task must be an (agent, task) pair or a dict with 'agent' and 'task'")
