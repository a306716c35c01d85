"""The outermost layer: input limits, prompt-injection policy, and the system-prompt canary.

Per request, in order:

1. limits: a task longer than ``max_task_chars``, or above ``max_task_tokens`` estimated as ``ceil(chars / 4)``,
   raises :class:`~claude_force.errors.TaskTooLarge` (no API call is made);
2. policy (``policy_for(agent_name)``): ``off`` skips the scan; ``flag`` scans, records
   ``request.context.injection = {"detected", "score", "rules"}`` and logs a WARNING when detected; ``block`` also
   records it and raises :class:`~claude_force.errors.PromptInjectionBlocked` when detected;
3. canary: a fresh random token in ``request.context.canary`` (sent by ``Request.system_blocks()`` as a second
   system block after the cache breakpoint); if the response text contains it, ``context.system_prompt_leak``
   is set and a WARNING is logged.

The task itself is never rewritten: the request sent is byte-identical to the one built by the caller. Logs carry
the agent name through ``safe()`` and the task only as its length and a short SHA-256, never its text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
import threading
import unicodedata
from collections.abc import Callable
from typing import Literal

from claude_force.errors import PromptInjectionBlocked, TaskTooLarge
from claude_force.layers.base import Handler
from claude_force.models import Request, Response
from claude_force.security.injection import Detector, Verdict, default_detector
from claude_force.security.sanitize import safe

__all__ = ["CANARY_PREFIX", "Policy", "ScreenLayer", "check_task_limits", "make_canary", "screened_text"]

log = logging.getLogger("claude_force.layers.screen")

Policy = Literal["off", "flag", "block"]
_POLICIES = frozenset({"off", "flag", "block"})
CANARY_PREFIX = "cf-canary-"
#: Every byte that is not a lower-case hex digit, for ``bytes.translate(None, delete)``.
_NOT_HEX_BYTES = bytes(b for b in range(256) if b not in b"0123456789abcdef")
#: Tasks longer than this are scanned in a worker thread, so one huge task does not stall the event loop.
THREAD_SCAN_CHARS = 16_384


class _RandomPool:
    """Cryptographically random hex, drawn from the OS in 4 KiB blocks: one syscall per 512 canaries."""

    __slots__ = ("_hex", "_lock", "_pos")

    def __init__(self) -> None:
        self._hex = ""
        self._pos = 0
        self._lock = threading.Lock()  # orchestrators may run on event loops in several threads

    def take16(self) -> str:
        with self._lock:
            if self._pos + 16 > len(self._hex):
                self._hex = secrets.token_hex(4096)
                self._pos = 0
            start = self._pos
            self._pos = start + 16
        return self._hex[start : start + 16]


_POOL = _RandomPool()


def make_canary() -> str:
    """A fresh canary token: ``cf-canary-`` and 16 random hex digits (never reused within a process)."""
    return CANARY_PREFIX + _POOL.take16()


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def screened_text(task: str, previous_output: str | None) -> str:
    """What the limits and the detector see: the task, and a previous workflow step's output when there is one
    (it reaches the model in the same user turn, so it is no more trusted than the task)."""
    return task if previous_output is None else f"{task}\n{previous_output}"


def check_task_limits(task: str, *, max_chars: int, max_tokens: int) -> None:
    """Raise :class:`TaskTooLarge` if ``task`` exceeds the character or estimated-token limit."""
    chars = len(task)
    if chars > max_chars:
        raise TaskTooLarge(f"task has {chars} characters; the limit is {max_chars} (max_task_chars)")
    tokens = math.ceil(chars / 4)
    if tokens > max_tokens:
        raise TaskTooLarge(
            f"task is about {tokens} tokens (ceil(chars/4)); the limit is {max_tokens} (max_task_tokens)"
        )


def _leaked(canary: str, text: str) -> bool:
    """True if the canary, or its random part with separators or case changed, appears in ``text``."""
    if canary in text:
        return True
    secret = canary[len(CANARY_PREFIX) :] if canary.startswith(CANARY_PREFIX) else canary
    if len(secret) < 16:
        return False
    # Only the hex digits of the text, lower-cased (non-ASCII characters are not hex digits either): a C-level
    # byte translation, an order of magnitude cheaper per response than a regex substitution.
    if not text.isascii():  # full-width or other compatibility digits spell the canary too
        text = unicodedata.normalize("NFKC", text)
    digits = text.encode("ascii", "ignore").lower().translate(None, _NOT_HEX_BYTES)
    return secret.encode("ascii", "ignore") in digits


class ScreenLayer:
    """Input limits, injection screening and the canary, as the outermost pipeline layer.

    Example::

        screen = ScreenLayer(
            policy_for=lambda agent: "block" if agent == "triage" else "flag",
            max_task_chars=400_000,
            max_task_tokens=150_000,
        )
        handler = compose([screen, cache_layer, ...], transport.send)
    """

    __slots__ = (
        "_blocked",
        "_canary",
        "_detected",
        "_detector",
        "_leaks",
        "_max_chars",
        "_max_tokens",
        "_policy_for",
        "_scanned",
    )

    def __init__(
        self,
        *,
        policy_for: Callable[[str], Policy],
        detector: Detector | None = None,
        max_task_chars: int,
        max_task_tokens: int,
        canary: bool = True,
    ) -> None:
        if max_task_chars < 1 or max_task_tokens < 1:
            raise ValueError("max_task_chars and max_task_tokens must be positive")
        self._policy_for = policy_for
        # The packaged rules and classifier load on first use (about 0.15 s), so an orchestrator whose agents all
        # run with policy "off" never pays for them.
        self._detector: Detector | None = detector
        self._max_chars = max_task_chars
        self._max_tokens = max_task_tokens
        self._canary = canary
        self._scanned = 0
        self._detected = 0
        self._blocked = 0
        self._leaks = 0

    def __repr__(self) -> str:
        return (
            f"ScreenLayer(scanned={self._scanned}, detected={self._detected}, blocked={self._blocked}, "
            f"leaks={self._leaks}, canary={self._canary})"
        )

    @property
    def detector(self) -> Detector:
        """The detector in use (the packaged rules and classifier unless one was given), built on first use."""
        if self._detector is None:
            self._detector = default_detector()
        return self._detector

    @property
    def stats(self) -> dict[str, int]:
        """Counters since creation: scanned, detected, blocked, leaks."""
        return {
            "scanned": self._scanned,
            "detected": self._detected,
            "blocked": self._blocked,
            "leaks": self._leaks,
        }

    def check_limits(self, task: str) -> None:
        """Raise :class:`TaskTooLarge` if ``task`` exceeds the character or estimated-token limit."""
        check_task_limits(task, max_chars=self._max_chars, max_tokens=self._max_tokens)

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        task = screened_text(request.task, request.previous_output)
        self.check_limits(task)
        policy = self._policy_for(request.agent_name)
        if policy not in _POLICIES:
            raise ValueError(f"unknown injection policy {policy!r}; use off, flag or block")
        if policy != "off":
            if len(task) > THREAD_SCAN_CHARS:
                verdict = await asyncio.to_thread(self.detector.scan, task)
            else:
                verdict = self.detector.scan(task)
            self._apply(request, task, policy, verdict)
        if self._canary:
            request.context.canary = make_canary()
        response = await call_next(request)
        canary = request.context.canary
        if self._canary and canary is not None and _leaked(canary, response.text):
            self._leaks += 1
            request.context.system_prompt_leak = True
            log.warning(
                "system prompt leak: agent=%s response contains the canary (response %d chars, sha256 %s)",
                safe(request.agent_name),
                len(response.text),
                _fingerprint(response.text),
            )
        return response

    def _apply(self, request: Request, task: str, policy: Policy, verdict: Verdict) -> None:
        self._scanned += 1
        request.context.injection = verdict.as_dict()
        if not verdict.detected:
            return
        self._detected += 1
        rules = ",".join(verdict.rules[:8])
        if policy == "block":
            self._blocked += 1
            log.warning(
                "prompt injection blocked: agent=%s score=%.2f rules=%s (task %d chars, sha256 %s)",
                safe(request.agent_name),
                verdict.score,
                safe(rules),
                len(task),
                _fingerprint(task),
            )
            raise PromptInjectionBlocked(
                f"task for agent {safe(request.agent_name, 64)!r} looks like a prompt injection "
                f"(score {verdict.score:.2f}, rules: {safe(rules)}); policy is 'block'"
            )
        log.warning(
            "prompt injection flagged: agent=%s score=%.2f rules=%s (task %d chars, sha256 %s)",
            safe(request.agent_name),
            verdict.score,
            safe(rules),
            len(task),
            _fingerprint(task),
        )
