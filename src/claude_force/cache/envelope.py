"""The signed envelope around every cached value.

An envelope is ``(version, key, agent, created, expires, payload, mac)``. The MAC is HMAC-SHA256, under the
cache secret, over an unambiguous byte encoding of every other field: a magic prefix, the version as a
4-byte integer, the key, agent and payload each prefixed with their 4-byte length, and the two timestamps as
IEEE-754 doubles. It is checked with :func:`hmac.compare_digest` *before* the payload is parsed, so a
tampered, truncated or foreign row is never handed to a JSON parser, let alone served.
"""

from __future__ import annotations

import hmac
import math
import struct
from dataclasses import dataclass
from typing import Any, Final

from claude_force.errors import CacheIntegrityError

__all__ = ["FORMAT_VERSION", "MAC_BYTES", "Envelope", "mac_of", "open_envelope", "seal"]

FORMAT_VERSION: Final = 1
MAC_BYTES: Final = 32
_MAGIC: Final = b"claude-force/cache-envelope\x00"
_U32 = struct.Struct(">I")
_TIMES = struct.Struct(">dd")


@dataclass(frozen=True, slots=True)
class Envelope:
    """One signed cache entry as stored: ``payload`` is the orjson bytes of ``Response.to_json()``."""

    version: int
    key: str
    agent: str
    created: float
    expires: float
    payload: bytes
    mac: bytes

    def __repr__(self) -> str:
        # Never the payload: it is a model response and may be large or sensitive.
        return (
            f"Envelope(version={self.version}, key={self.key[:12]}..., agent={self.agent!r}, "
            f"created={self.created:.3f}, expires={self.expires:.3f}, payload={len(self.payload)} bytes)"
        )


def _lp(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def mac_of(
    secret: bytes, *, version: int, key: str, agent: str, created: float, expires: float, payload: bytes
) -> bytes:
    """HMAC-SHA256 of the canonical encoding of the fields."""
    message = b"".join(
        (
            _MAGIC,
            _U32.pack(version),
            _lp(key.encode("utf-8")),
            _lp(agent.encode("utf-8")),
            _TIMES.pack(created, expires),
            _lp(payload),
        )
    )
    return hmac.digest(secret, message, "sha256")


def seal(secret: bytes, *, key: str, agent: str, created: float, expires: float, payload: bytes) -> Envelope:
    """Sign a new entry with the current format version."""
    mac = mac_of(
        secret,
        version=FORMAT_VERSION,
        key=key,
        agent=agent,
        created=created,
        expires=expires,
        payload=payload,
    )
    return Envelope(FORMAT_VERSION, key, agent, created, expires, payload, mac)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def open_envelope(secret: bytes, row: tuple[Any, ...], *, expect_key: str) -> Envelope:
    """Check a raw ``(version, key, agent, created, expires, payload, mac)`` row; raise on any defect.

    Raises :class:`~claude_force.errors.CacheIntegrityError` naming the defect. The row comes straight from
    the database, so every column is type-checked first (SQLite stores whatever it is given).
    """
    if len(row) != 7:
        raise CacheIntegrityError("wrong number of fields")
    version, key, agent, created_raw, expires_raw, payload, mac = row
    if version != FORMAT_VERSION or isinstance(version, bool) or not isinstance(version, int):
        raise CacheIntegrityError("unknown envelope version")
    if not isinstance(key, str) or not isinstance(agent, str):
        raise CacheIntegrityError("key or agent is not text")
    if key != expect_key:
        raise CacheIntegrityError("key does not match")
    created = _number(created_raw)
    expires = _number(expires_raw)
    if created is None or expires is None:
        raise CacheIntegrityError("timestamps are not numbers")
    if not isinstance(payload, bytes) or not isinstance(mac, bytes):
        raise CacheIntegrityError("payload or MAC is not binary")
    if len(mac) != MAC_BYTES:
        raise CacheIntegrityError("MAC has the wrong length")
    expected = mac_of(
        secret, version=version, key=key, agent=agent, created=created, expires=expires, payload=payload
    )
    if not hmac.compare_digest(expected, mac):
        raise CacheIntegrityError("MAC mismatch")
    return Envelope(version, key, agent, created, expires, payload, mac)
