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
    """Wrap ``innermost`` in ``layers`` (first = outermost), once.

    Each layer is bound to its ``call_next`` by a plain function that returns the layer's coroutine, not by a
    wrapper coroutine, so a call runs exactly one coroutine frame per layer: every suspension of the transport
    resumes through that chain, and a wrapper frame per layer would double it.
    """
    handler = innermost
    for layer in reversed(layers):
        handler = _bind(layer, handler)
    return handler


def _bind(layer: Layer, call_next: Handler) -> Handler:
    def handle(request: Request) -> Awaitable[Response]:
        return layer(request, call_next)

    handle.__qualname__ = f"{type(layer).__name__}.handle"
    return handle
