"""Cache layer: serve a signed cached response, or call inward and cache what comes back.

What is cached (policy as data, :data:`UNCACHEABLE_STOP_REASONS`): every successful response except those
cut short or withheld: ``max_tokens`` (truncated: the same request would pay again for the same truncated
text, but serving a truncated answer forever is worse, and a caller who raises ``max_tokens`` gets a new key
anyway), ``pause_turn``, ``refusal`` and ``model_context_window_exceeded``. Errors are never cached: an
exception from ``call_next`` passes straight through.

A hit sets ``request.context.cached = True`` and returns the stored response with its usage as stored; the
orchestrator reports a cost of 0 for it.
"""

from __future__ import annotations

import logging
from typing import Final

from claude_force.cache.core import ResponseCache
from claude_force.cache.keys import cache_key
from claude_force.layers.base import Handler
from claude_force.models import Request, Response
from claude_force.security.sanitize import safe

__all__ = ["UNCACHEABLE_STOP_REASONS", "CacheLayer", "is_cacheable"]

log = logging.getLogger("claude_force.layers.cache")

UNCACHEABLE_STOP_REASONS: Final = frozenset(
    {"max_tokens", "pause_turn", "refusal", "model_context_window_exceeded"}
)


def is_cacheable(response: Response) -> bool:
    """True if ``response`` may be served again for the same request."""
    return response.stop_reason not in UNCACHEABLE_STOP_REASONS


class CacheLayer:
    """Serve identical requests from the response cache.

    Example::

        cache = ResponseCache(cache_dir=settings.cache.dir, ttl_hours=settings.cache.ttl_hours)
        handler = compose([screen, CacheLayer(cache=cache), SingleFlightLayer(), ...], transport.send)
    """

    __slots__ = ("_cache", "_uncacheable")

    def __init__(self, *, cache: ResponseCache) -> None:
        self._cache = cache
        self._uncacheable = 0

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        ctx = request.context
        key = ctx.cache_key
        if key is None:
            try:
                key = cache_key(request)
            except TypeError:
                self._uncacheable += 1
                log.debug("request for agent %s is not JSON; bypassing the cache", safe(request.agent_name))
                return await call_next(request)
            ctx.cache_key = key
        hit = await self._cache.aget(key)
        if hit is not None:
            ctx.cached = True
            return hit
        response = await call_next(request)
        if not is_cacheable(response):
            log.debug("not caching a response with stop_reason %s", safe(response.stop_reason))
        elif self._cache.contains(key):
            # Stored since our miss by a task of this process that shared our upstream call (single-flight):
            # writing it again would only cost a disk write.
            pass
        else:
            # write-behind: the memory tier has it now, the disk write is batched off the event loop
            self._cache.store_later(key, response, agent=request.agent_name)
        return response

    @property
    def cache(self) -> ResponseCache:
        return self._cache

    def __repr__(self) -> str:
        return f"CacheLayer(cache={self._cache!r}, uncacheable={self._uncacheable})"
