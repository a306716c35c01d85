"""Deterministic fault and latency draws.

Each request's fate is drawn from ``sha256(seed, sha256(body), n)`` where ``n`` is how many times
this exact body was seen before. Results therefore do not depend on arrival order or concurrency,
and a retry of the same body gets a fresh, but still reproducible, draw.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from .config import EmulatorConfig

__all__ = ["BodyLedger", "Draw", "Fault", "draw"]

_TO_UNIT = 2.0**-64


class Fault(enum.Enum):
    """What an admitted request turns into."""

    NONE = "none"
    RATE_LIMIT = "429"
    OVERLOADED = "529"
    SERVER_ERROR = "500"
    NULL_CONTENT = "null"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class Draw:
    fault: Fault
    hang: bool
    #: Seconds to wait before answering (latency + jitter, plus ``hang_seconds`` when hung).
    delay: float


def _uniforms(seed: int, digest: bytes, n: int) -> tuple[float, float, float]:
    h = hashlib.sha256(b"%d\x00" % seed + digest + n.to_bytes(8, "big")).digest()
    return (
        int.from_bytes(h[0:8], "big") * _TO_UNIT,
        int.from_bytes(h[8:16], "big") * _TO_UNIT,
        int.from_bytes(h[16:24], "big") * _TO_UNIT,
    )


def draw(config: EmulatorConfig, digest: bytes, n: int) -> Draw:
    """Draw the fault, hang and delay for the ``n``-th sighting (0-based) of a body with ``digest``.

    Example::

        d = draw(EmulatorConfig(p500=1.0), hashlib.sha256(b"{}").digest(), 0)
        assert d.fault is Fault.SERVER_ERROR
    """
    u_fault, u_hang, u_jitter = _uniforms(config.seed, digest, n)
    fault = Fault.NONE
    threshold = 0.0
    for probability, kind in (
        (config.p429, Fault.RATE_LIMIT),
        (config.p529, Fault.OVERLOADED),
        (config.p500, Fault.SERVER_ERROR),
        (config.pnull, Fault.NULL_CONTENT),
        (config.pmalformed, Fault.MALFORMED),
    ):
        threshold += probability
        if probability > 0.0 and u_fault < threshold:
            fault = kind
            break
    hang = config.phang > 0.0 and u_hang < config.phang
    delay_ms = config.latency_ms + (2.0 * u_jitter - 1.0) * config.jitter_ms
    delay = max(0.0, delay_ms) / 1000.0
    if hang:
        delay += config.hang_seconds
    return Draw(fault=fault, hang=hang, delay=delay)


class BodyLedger:
    """Counts sightings of each body hash (32 bytes each; bodies themselves are never kept).

    At most ``max_bodies`` hashes are remembered; bodies first seen after that are reported as new
    every time. Example::

        ledger = BodyLedger()
        ledger.observe(digest)   # 0: first sighting
        ledger.observe(digest)   # 1
    """

    __slots__ = ("_counts", "_max", "distinct", "duplicates")

    def __init__(self, max_bodies: int = 1_000_000) -> None:
        self._counts: dict[bytes, int] = {}
        self._max = max_bodies
        self.distinct = 0
        self.duplicates = 0

    def observe(self, digest: bytes) -> int:
        """Record a sighting; return how many times this body was seen before."""
        counts = self._counts
        n = counts.get(digest)
        if n is None:
            self.distinct += 1
            if len(counts) < self._max:
                counts[digest] = 1
            return 0
        self.duplicates += 1
        counts[digest] = n + 1
        return n

    def reset(self) -> None:
        self._counts.clear()
        self.distinct = 0
        self.duplicates = 0
