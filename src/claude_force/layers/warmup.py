"""Prompt-cache warm-up: the first request for a cacheable system prompt goes alone.

The API makes a prompt-cache entry available only once the request that wrote it has been answered, so N
concurrent first requests would each pay the 1.25x write. This layer lets one request per (model, system prompt)
prime the cache and holds the others until it has been answered; they then read at the model's cache-read rate
(0.05x-0.1x). After the provider TTL lapses without use, the next request primes again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from claude_force.clock import Clock, monotonic
from claude_force.layers.base import Handler
from claude_force.models import Request, Response

logger = logging.getLogger("claude_force.layers.warmup")

_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
#: Re-prime a little before the provider's TTL runs out.
_SAFETY = 0.9


class PromptCacheWarmupLayer:
    """Serialize the first request per cacheable prefix; pass everything else straight through.

    Example::

        layer = PromptCacheWarmupLayer(min_tokens=lambda model: 1024)
    """

    __slots__ = ("_clock", "_min_tokens", "_primed_until", "_priming")

    def __init__(self, *, min_tokens: Callable[[str], int], clock: Clock = monotonic) -> None:
        self._min_tokens = min_tokens
        self._clock = clock
        self._primed_until: dict[tuple[str, str], float] = {}
        self._priming: dict[tuple[str, str], asyncio.Future[None]] = {}

    def __repr__(self) -> str:
        return f"PromptCacheWarmupLayer(primed={len(self._primed_until)}, priming={len(self._priming)})"

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        ttl = request.prompt_cache_ttl
        if ttl is None:
            return await call_next(request)
        key = (request.model, request.system_hash)
        if self._primed_until.get(key, 0.0) > self._clock():
            response = await call_next(request)
            self._primed_until[key] = self._clock() + _TTL_SECONDS.get(ttl, 300.0) * _SAFETY
            return response
        # Too short to cache: the API silently skips caching, so there is nothing to wait for.
        if (len(request.system) + 3) // 4 < self._min_tokens(request.model):
            return await call_next(request)
        pending = self._priming.get(key)
        if pending is not None:
            # shield: a cancelled follower must not cancel the shared future.
            await asyncio.shield(pending)
            return await call_next(request)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._priming[key] = fut
        try:
            response = await call_next(request)
            self._primed_until[key] = self._clock() + _TTL_SECONDS.get(ttl, 300.0) * _SAFETY
            return response
        finally:
            del self._priming[key]
            fut.set_result(None)
