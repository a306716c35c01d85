"""Pipeline layers. Each is ``async def __call__(request, call_next) -> Response``.

Order (outermost first), built in :mod:`claude_force.pipeline`::

    screen -> cache -> single-flight -> warm-up -> retry -> budget -> breaker -> limiter -> transport
"""

from claude_force.layers.base import Handler, Layer, compose

__all__ = ["Handler", "Layer", "compose"]
