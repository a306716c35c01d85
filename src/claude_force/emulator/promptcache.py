"""Prompt caching, modelled on the real API.

A ``cache_control`` breakpoint on a system block makes the system text up to and including that
block a cacheable prefix, keyed by model and prefix. A top-level ``cache_control`` puts a breakpoint
on the last system block. Prefixes shorter than the model's minimum cacheable length are silently
not cached. The longest live prefix is read (``cache_read_input_tokens``); the rest, up to the last
breakpoint, is written (``cache_creation_input_tokens``).

Entries are inserted by :meth:`PromptCache.commit`, which the server calls right before it sends the
response, so requests that arrive while the first one is still being answered each pay the write,
as with the real API.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .tokens import estimate_tokens

__all__ = ["NO_CACHE", "Breakpoint", "CachePlan", "PromptCache", "breakpoints_for"]


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """One cacheable prefix: its key, its length in tokens and its TTL in seconds."""

    key: bytes
    tokens: int
    ttl: float


@dataclass(frozen=True, slots=True)
class CachePlan:
    """What a request reads and writes; ``breakpoints`` are (re)inserted on commit."""

    read_tokens: int
    write_tokens: int
    breakpoints: tuple[Breakpoint, ...]


NO_CACHE = CachePlan(read_tokens=0, write_tokens=0, breakpoints=())


def breakpoints_for(
    model: str,
    system_texts: Sequence[str],
    system_ttls: Sequence[float | None],
    top_level_ttl: float | None,
    min_tokens: int,
) -> tuple[Breakpoint, ...]:
    """The cacheable prefixes of a request, shortest first, dropping those below ``min_tokens``."""
    marks = {i: ttl for i, ttl in enumerate(system_ttls) if ttl is not None}
    if top_level_ttl is not None and system_texts:
        last = len(system_texts) - 1
        marks[last] = max(top_level_ttl, marks.get(last, 0.0))
    if not marks:
        return ()
    end = max(marks)
    digest = hashlib.sha256(model.encode() + b"\x00")
    chars = 0
    out: list[Breakpoint] = []
    for i in range(end + 1):
        text = system_texts[i]
        encoded = text.encode()
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
        chars += len(text)
        ttl = marks.get(i)
        if ttl is not None:
            tokens = estimate_tokens(chars)
            if tokens >= min_tokens:
                out.append(Breakpoint(key=digest.copy().digest(), tokens=tokens, ttl=ttl))
    return tuple(out)


class PromptCache:
    """Live prompt-cache entries (key -> expiry), bounded, least recently used evicted first.

    Example::

        cache = PromptCache(clock=lambda: now)
        plan = cache.plan(breakpoints)   # look up at request start
        ...                              # answer latency
        cache.commit(plan)               # right before responding
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._max = max_entries
        self._entries: dict[bytes, float] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def plan(self, breakpoints: tuple[Breakpoint, ...]) -> CachePlan:
        """Find the longest live prefix; everything after it up to the last breakpoint is written."""
        if not breakpoints:
            return NO_CACHE
        now = self._clock()
        read = 0
        entries = self._entries
        for bp in reversed(breakpoints):
            expiry = entries.get(bp.key)
            if expiry is not None:
                if expiry > now:
                    read = bp.tokens
                    break
                del entries[bp.key]
        return CachePlan(
            read_tokens=read, write_tokens=breakpoints[-1].tokens - read, breakpoints=breakpoints
        )

    def commit(self, plan: CachePlan) -> None:
        """Insert or refresh the plan's prefixes; their TTLs start now."""
        if not plan.breakpoints:
            return
        now = self._clock()
        entries = self._entries
        for bp in plan.breakpoints:
            entries.pop(bp.key, None)
            entries[bp.key] = now + bp.ttl
        while len(entries) > self._max:
            del entries[next(iter(entries))]

    def reset(self) -> None:
        self._entries.clear()
