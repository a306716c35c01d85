"""OpenTelemetry spans: one per task (outermost) and one per API attempt (inside retry).

Added to the pipeline only when ``opentelemetry-api`` is installed (``claude-force[otel]``), so the hot path
pays nothing otherwise. Spans carry names, counts and error codes, never task or response text.
"""

from __future__ import annotations

from claude_force.errors import ClaudeForceError
from claude_force.layers.base import Handler
from claude_force.models import Request, Response
from claude_force.tracking.hooks import attempt_span, task_span


def _mark(span: object, exc: BaseException) -> None:
    code = exc.code if isinstance(exc, ClaudeForceError) else type(exc).__name__
    setter = getattr(span, "set_attribute", None)
    if setter is not None:
        setter("claude_force.error_code", code)


class TaskSpanLayer:
    """One ``claude_force.task`` span per task."""

    __slots__ = ()

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        ctx = request.context
        with task_span(
            request.agent_name, model=request.model, workflow=ctx.workflow, position=ctx.position
        ) as span:
            try:
                response = await call_next(request)
            except BaseException as exc:
                _mark(span, exc)
                raise
            if span is not None:
                span.set_attribute("claude_force.cached", ctx.cached)
                span.set_attribute("claude_force.attempts", ctx.attempts)
            return response


class AttemptSpanLayer:
    """One ``claude_force.attempt`` span per API attempt (a child of the task span)."""

    __slots__ = ()

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        with attempt_span(request.agent_name, request.context.attempts, model=request.model) as span:
            try:
                return await call_next(request)
            except BaseException as exc:
                _mark(span, exc)
                raise
