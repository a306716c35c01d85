"""Mutable state of one emulator instance: counters, prompt cache, buckets and body ledger."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .buckets import RateLimiter
from .config import EmulatorConfig
from .faults import BodyLedger
from .promptcache import PromptCache

__all__ = ["EmulatorState", "Stats"]


class Stats:
    """Counters reported by ``GET /_emulator/stats``."""

    __slots__ = (
        "cache_read_tokens",
        "cache_reads",
        "cache_write_tokens",
        "cache_writes",
        "in_flight",
        "input_tokens",
        "max_in_flight",
        "output_tokens",
        "requests",
        "statuses",
    )

    def __init__(self) -> None:
        self._zero()

    def _zero(self) -> None:
        self.requests = 0
        self.statuses: dict[int, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.cache_writes = 0
        self.cache_reads = 0
        self.cache_write_tokens = 0
        self.cache_read_tokens = 0
        self.input_tokens = 0
        self.output_tokens = 0

    def begin(self) -> None:
        self.requests += 1
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight

    def end(self, status: int | None) -> None:
        self.in_flight -= 1
        if status is not None:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def reset(self) -> None:
        in_flight = self.in_flight
        self._zero()
        self.in_flight = in_flight
        self.max_in_flight = in_flight


class EmulatorState:
    """Everything one emulator instance remembers. ``clock`` is monotonic seconds (injectable)."""

    def __init__(self, config: EmulatorConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.stats = Stats()
        self.ledger = BodyLedger(config.max_tracked_bodies)
        self.cache = PromptCache(clock=clock, max_entries=config.max_cache_entries)
        self.limiter = RateLimiter(
            rpm=config.rpm, input_tpm=config.input_tpm, output_tpm=config.output_tpm, clock=clock
        )

    def snapshot(self) -> dict[str, Any]:
        """The stats document (a fresh dict, safe to mutate)."""
        s = self.stats
        return {
            "requests": s.requests,
            "statuses": {str(code): n for code, n in sorted(s.statuses.items())},
            "in_flight": s.in_flight,
            "max_in_flight": s.max_in_flight,
            "distinct_bodies": self.ledger.distinct,
            "duplicate_bodies": self.ledger.duplicates,
            "prompt_cache": {
                "writes": s.cache_writes,
                "reads": s.cache_reads,
                "creation_input_tokens": s.cache_write_tokens,
                "read_input_tokens": s.cache_read_tokens,
                "entries": len(self.cache),
            },
            "input_tokens": s.input_tokens,
            "output_tokens": s.output_tokens,
        }

    def reset(self) -> None:
        """Zero the counters, empty the prompt cache and body ledger, refill the buckets."""
        self.stats.reset()
        self.ledger.reset()
        self.cache.reset()
        self.limiter.reset()
