"""Cache statistics and the classification of storage errors into the kinds that are counted and warned."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

__all__ = ["ERROR_KINDS", "CacheStats", "Counters", "VerifyReport", "error_kind"]

#: sqlite3 error text -> the kind it is counted and warned under (policy as data; first match wins).
ERROR_KINDS: Final = (
    ("locked", "locked"),
    ("busy", "locked"),
    ("full", "disk_full"),
    ("no space", "disk_full"),
    ("readonly", "read_only"),
    ("read-only", "read_only"),
    ("not a database", "corrupt_file"),
    ("malformed", "corrupt_file"),
    ("unable to open", "cannot_open"),
    ("disk i/o", "io_error"),
)


def error_kind(exc: BaseException) -> str:
    text = str(exc).lower()
    for needle, kind in ERROR_KINDS:
        if needle in text:
            return kind
    return "storage_error"


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot: ``entries`` and ``bytes`` are the store's (all processes); counters are this instance's."""

    entries: int
    bytes: int
    hits: int
    misses: int
    hit_rate: float
    memory_hits: int
    disk_hits: int
    evictions: int
    integrity_failures: int
    errors: int
    memory_entries: int = 0
    memory_bytes: int = 0
    oversize_skips: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify()`` found: ``corrupt`` entries were deleted; ``expired`` ones are left to ``prune()``."""

    checked: int
    ok: int
    corrupt: int
    expired: int

    @property
    def clean(self) -> bool:
        return self.corrupt == 0


class Counters:
    """Mutable counters of one cache instance; the cache guards them with its lock."""

    __slots__ = (
        "disk_hits",
        "errors",
        "evictions",
        "integrity_failures",
        "memory_hits",
        "misses",
        "oversize_skips",
    )

    def __init__(self) -> None:
        self.memory_hits = self.disk_hits = self.misses = self.evictions = 0
        self.integrity_failures = self.errors = self.oversize_skips = 0
