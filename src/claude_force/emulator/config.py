"""Configuration of the Anthropic-compatible emulator."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from claude_force.tracking.prices import PriceTable

__all__ = [
    "DEFAULT_MIN_CACHEABLE_TOKENS",
    "MIN_CACHEABLE_TOKENS",
    "EmulatorConfig",
    "min_cacheable_tokens",
]

#: Minimum cacheable prompt length, in tokens, by model family, for models the packaged price table
#: (``tracking/prices.json``) does not list: a model it lists gets the table's own figure, so the emulator
#: and the client's warm-up layer agree. The first entry whose key is a substring of the (lower-cased) model
#: name wins. Kept as data so it is easy to update.
MIN_CACHEABLE_TOKENS: tuple[tuple[str, int], ...] = (
    ("haiku", 2048),
    ("sonnet", 1024),
    ("opus", 1024),
)
#: Minimum cacheable length for models that match no entry of :data:`MIN_CACHEABLE_TOKENS`.
DEFAULT_MIN_CACHEABLE_TOKENS = 1024

_FAULT_FIELDS = ("p429", "p529", "p500", "pnull", "pmalformed")


@functools.lru_cache(maxsize=1)
def _prices() -> PriceTable:
    return PriceTable.load()


def _priced_minimum(model: str) -> int | None:
    price = _prices().get(model)
    return None if price is None else price.min_cacheable_tokens


def min_cacheable_tokens(
    model: str,
    table: tuple[tuple[str, int], ...] = MIN_CACHEABLE_TOKENS,
    default: int = DEFAULT_MIN_CACHEABLE_TOKENS,
) -> int:
    """Return the minimum cacheable prefix length (tokens) for ``model``.

    With the default ``table``, a model the packaged price table lists gets that table's figure; a custom
    ``table`` (a test's, say) is used as given.
    """
    if table is MIN_CACHEABLE_TOKENS:
        priced = _priced_minimum(model)
        if priced is not None:
            return priced
    name = model.lower()
    for needle, minimum in table:
        if needle in name:
            return minimum
    return default


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    """Everything the emulator can be told. All features are off by default.

    Probabilities are in ``[0, 1]``. ``p429``, ``p529``, ``p500``, ``pnull`` and ``pmalformed`` are
    mutually exclusive outcomes of one draw, so their sum must not exceed 1. ``phang`` is drawn
    independently: a hung request sleeps ``hang_seconds`` and then answers as drawn.

    Example::

        cfg = EmulatorConfig(latency_ms=100, jitter_ms=20, p529=0.05, rpm=1200, seed=7)
        async with EmulatorServer(cfg) as emu:
            ...
    """

    host: str = "127.0.0.1"
    port: int = 0
    #: If set, requests must present exactly this key (``x-api-key`` or ``Authorization: Bearer``).
    api_key: str | None = None

    latency_ms: float = 0.0
    jitter_ms: float = 0.0

    rpm: float | None = None
    input_tpm: float | None = None
    output_tpm: float | None = None

    p429: float = 0.0
    p529: float = 0.0
    p500: float = 0.0
    phang: float = 0.0
    pnull: float = 0.0
    pmalformed: float = 0.0
    #: Seconds sent in ``retry-after`` with injected 429s.
    retry_after: float = 1.0
    hang_seconds: float = 30.0
    seed: int = 0

    max_body_bytes: int = 32 * 1024 * 1024
    min_cacheable_tokens: tuple[tuple[str, int], ...] = MIN_CACHEABLE_TOKENS
    default_min_cacheable_tokens: int = DEFAULT_MIN_CACHEABLE_TOKENS
    #: Bound on live prompt-cache entries (least recently used are evicted first).
    max_cache_entries: int = 100_000
    #: Bound on the number of distinct body hashes remembered for determinism and stats. Bodies
    #: first seen after the bound is reached are treated as new every time.
    max_tracked_bodies: int = 1_000_000
    #: Seconds the server waits for in-flight handlers when it shuts down, before cancelling them.
    shutdown_timeout: float = 0.5

    def __post_init__(self) -> None:
        for name in (*_FAULT_FIELDS, "phang"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        total = sum(getattr(self, name) for name in _FAULT_FIELDS)
        if total > 1.0 + 1e-9:
            raise ValueError(f"{' + '.join(_FAULT_FIELDS)} must not exceed 1 (got {total:g})")
        for name in ("rpm", "input_tpm", "output_tpm"):
            limit = getattr(self, name)
            if limit is not None and not (limit > 0 and math.isfinite(limit)):
                raise ValueError(f"{name} must be a positive number or None, got {limit!r}")
        for name in ("latency_ms", "jitter_ms", "retry_after", "hang_seconds", "shutdown_timeout"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")
        for name in ("max_body_bytes", "max_cache_entries", "max_tracked_bodies"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

    def min_cacheable_for(self, model: str) -> int:
        """Minimum cacheable prefix length (tokens) for ``model`` under this configuration."""
        return min_cacheable_tokens(model, self.min_cacheable_tokens, self.default_min_cacheable_tokens)
