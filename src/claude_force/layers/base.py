"""The layer interface and the composition of layers around a transport."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from claude_force.models import Request, Response

Handler = Callable[[Request], Awaitable[Response]]


class Layer(Protocol):
    """One concern of the pipeline. Call ``call_next(request)`` to pass the request inward."""

    async def __call__(self, request: Request, call_next: Handler) -> Response: ...


def compose(layers: Sequence[Layer], innermost: Handler) -> Handler:
    """Wrap ``innermost`` in ``layers`` (first = outermost). Built once, so a call costs one closure per layer."""
    handler = innermost
    for layer in reversed(layers):
        handler = _bind(layer, handler)
    return handler


def _bind(layer: Layer, call_next: Handler) -> Handler:
    async def handle(request: Request) -> Response:
        return await layer(request, call_next)

    handle.__qualname__ = f"{type(layer).__name__}.handle"
    return handle
