"""Small helpers shared by the cache tests: a settable clock, a response, and a 64-character key."""

from __future__ import annotations

from claude_force.models import Response, Usage


class Clock:
    """A clock the test moves by hand (``clock.now += 60``); pass it as ``clock=``."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def resp(text: str = "t") -> Response:
    return Response(text=text, model="m", usage=Usage(1, 2), stop_reason="end_turn")


def key(name: str) -> str:
    """``name`` padded to the 64 characters of a real (SHA-256 hex) cache key."""
    return name.rjust(64, "0")
