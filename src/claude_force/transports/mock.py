"""A transport for unit tests: a function decides each response, no network involved."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from claude_force.models import Request, Response, Usage

MockHandler = Callable[[Request], "Response | Awaitable[Response]"]


def echo(request: Request) -> Response:
    """The default handler: a deterministic reply derived from the last user message."""
    last = request.messages[-1].get("content", "") if request.messages else ""
    text = f"mock reply ({len(str(last))} chars)"
    return Response(text=text, model=request.model, usage=Usage(request.estimated_input_tokens(), 4))


class MockTransport:
    """Answers with ``handler(request)``; a handler may raise any ``claude_force.errors`` exception.

    Example::

        transport = MockTransport(lambda req: Response(text="ok", model=req.model, usage=Usage(1, 1)))
    """

    __slots__ = ("_handler", "calls", "closed")

    def __init__(self, handler: MockHandler | None = None) -> None:
        self._handler = handler or echo
        self.calls: list[Request] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"MockTransport(calls={len(self.calls)}, closed={self.closed})"

    async def send(self, request: Request, *, timeout: float | None = None) -> Response:
        self.calls.append(request)
        request.context.attempt_sent = True  # as a real transport does: the handler's answer may be billed
        result = self._handler(request)
        if inspect.isawaitable(result):
            return await result
        return result

    async def aclose(self) -> None:
        self.closed = True
