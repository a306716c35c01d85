"""Fan-out: run many task specs with bounded concurrency and stream ``(index, result)`` as each finishes.

A spec is an ``(agent, task)`` pair or a mapping with ``agent``, ``task`` and optional ``model``, ``max_tokens``
and ``params``. The input is consumed lazily, so memory holds at most the tasks in flight plus a queue of
finished results twice the concurrency long.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from typing import Any

from claude_force.errors import ClaudeForceError, InputError, TooManyTasks
from claude_force.inputs import check_params
from claude_force.models import RESERVED_PARAMS, AgentResult
from claude_force.security.sanitize import safe

__all__ = ["TaskSpec", "agent_of", "fan_out", "parse_spec"]

TaskSpec = tuple[str, str] | Mapping[str, Any]
log = logging.getLogger("claude_force.fanout")

#: Keys ``params`` may not carry: the request's own fields and ``execute_agent``'s other arguments.
_NOT_PARAMS = RESERVED_PARAMS | {"agent_name", "task", "workflow", "position", "previous_output"}
#: Runs one task: ``run(agent, task, **kwargs) -> AgentResult`` (the orchestrator's ``execute_agent``).
RunOne = Callable[..., Awaitable[AgentResult]]
#: ``Task.cancelling()`` (3.11+) tells a worker's own cancellation from a CancelledError raised inside its call.
#: Without it, each call runs in a task of its own (see :func:`_isolated`), which costs a task per call.
_CAN_TELL = sys.version_info >= (3, 11)


async def fan_out(
    run: RunOne, tasks: Iterable[TaskSpec], *, concurrency: int, limit: int
) -> AsyncGenerator[tuple[int, AgentResult], None]:
    """``(index, result)`` for every spec in ``tasks``, as they finish, with ``concurrency`` workers.

    The first spec past ``limit`` comes back as a failed result (``too_many_tasks``) and the input is read no
    further, so an endless iterable costs at most ``limit + 1`` results.
    """
    # Unbounded, so a worker's last word never blocks; ``room`` bounds the results waiting to be read.
    queue: asyncio.Queue[tuple[int, AgentResult] | _Done] = asyncio.Queue()
    room = asyncio.Semaphore(concurrency * 2)
    iterator = enumerate(tasks)
    failed: list[Exception] = []  # the input iterable's own error, raised once the tasks in flight finish

    over = False  # a task past ``limit`` was taken: it fails, and the input is read no further

    async def worker() -> None:
        nonlocal over
        try:
            while not failed and not over:
                try:
                    index, spec = next(iterator)
                except StopIteration:
                    break
                except Exception as exc:  # the caller's iterable broke: take no more tasks
                    failed.append(exc)
                    break
                if index >= limit:
                    over = True  # an endless generator must not be drained one failed result at a time
                result = await _run_one(run, index, spec, limit)
                await room.acquire()
                queue.put_nowait((index, result))
        finally:  # however the worker ends (cancelled by the consumer included), say so without blocking
            queue.put_nowait(_DONE)

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    done_workers = 0
    try:
        while done_workers < concurrency:
            item = await queue.get()
            if isinstance(item, _Done):
                done_workers += 1
                continue
            room.release()
            yield item
        if failed:
            raise failed[0]
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


class _Done:
    """A worker's last item: it has taken its last task."""


_DONE = _Done()


async def _run_one(run: RunOne, index: int, spec: object, limit: int) -> AgentResult:
    """One spec's result; never raises for the task (a bad spec or a bug becomes a failed result)."""
    if index >= limit:
        return _failed(
            spec,
            f"more than max_tasks_per_call={limit} tasks; the rest of the input was not read",
            TooManyTasks.code,
        )
    try:
        agent, task, kwargs = parse_spec(spec)
        if _CAN_TELL:
            return await run(agent, task, **kwargs)
        return await _isolated(run(agent, task, **kwargs))
    except ClaudeForceError as exc:  # a bad spec, or the orchestrator closed under the batch
        return _failed(spec, exc.message, exc.code)
    except _CancelledInside:
        return _failed(spec, _CANCELLED_INSIDE, "cancelled")
    except asyncio.CancelledError:
        if not _CAN_TELL or _being_cancelled():
            raise  # the worker itself is being stopped (on 3.10, _isolated has already told the two apart)
        # A CancelledError that was not aimed at this worker (a cancelled future deep in the pipeline): the
        # task failed, the batch goes on.
        return _failed(spec, _CANCELLED_INSIDE, "cancelled")
    except Exception as exc:  # a bug must not end the batch or lose this task's slot
        log.error("internal error in a task for agent %s: %s", safe(agent_of(spec), 64), safe(exc))
        return _failed(spec, f"{type(exc).__name__}: {safe(exc)}", "internal_error")


_CANCELLED_INSIDE = "the task's call was cancelled"


class _CancelledInside(Exception):
    """The call ended with a CancelledError that was not aimed at the task running it."""


def _being_cancelled() -> bool:
    """Whether this task has been asked to stop (``Task.cancelling()``, 3.11+); True where that cannot be told."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or bool(cancelling())


async def _isolated(call: Awaitable[AgentResult]) -> AgentResult:
    """Await ``call`` in a task of its own, so that its CancelledError can be told from this task's.

    ``asyncio.wait`` does not cancel what it waits for: if this task is cancelled, the wait raises here and the
    call is cancelled with it; if the call ends cancelled while this task was not, it raises
    :class:`_CancelledInside` instead. Python 3.10 has no ``Task.cancelling()`` to tell the two apart.
    """
    inner = asyncio.ensure_future(call)
    try:
        await asyncio.wait((inner,))
    except asyncio.CancelledError:
        inner.cancel()
        await asyncio.gather(inner, return_exceptions=True)
        raise
    if inner.cancelled():
        raise _CancelledInside
    return inner.result()


def _failed(spec: object, message: str, code: str) -> AgentResult:
    return AgentResult(agent_name=agent_of(spec), success=False, errors=[message], error_code=code)


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
        model, max_tokens = spec.get("model"), spec.get("max_tokens")  # checked by build_request
        if model is not None:
            kwargs["model"] = model
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        params = spec.get("params")
        if params is not None:
            if not isinstance(params, Mapping):
                raise InputError("'params' must be an object with string keys")
            check_params(params, reserved=_NOT_PARAMS)
            kwargs.update(params)
        return agent, task, kwargs
    raise InputError("a task must be an (agent, task) pair or a dict with 'agent' and 'task'")
