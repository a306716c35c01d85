"""Response bodies: the deterministic emulated reply and the API's error envelope."""

from __future__ import annotations

import os
import re
from typing import Any

import orjson

from .tokens import CHARS_PER_TOKEN, estimate_tokens

__all__ = ["error_body", "message_body", "new_id", "reply_text"]

_UNSAFE = re.compile(r"[^\w .,:;!?'/()\-]+")
_SPACES = re.compile(r"\s+")
SNIPPET_CHARS = 40


def new_id(prefix: str) -> str:
    """A random identifier such as ``msg_emu_3f2a...`` (24 hex digits)."""
    return prefix + os.urandom(12).hex()


def reply_text(last_user_text: str, digest: bytes, max_tokens: int) -> tuple[str, int, str]:
    """The emulated answer for a body, as ``(text, output_tokens, stop_reason)``.

    The text depends only on the body: the first 40 characters of the last user message (control
    and markup characters replaced by spaces) and a short hash of the whole body. If it would need
    more than ``max_tokens`` tokens it is cut and ``stop_reason`` is ``"max_tokens"``.
    """
    snippet = _SPACES.sub(" ", _UNSAFE.sub(" ", last_user_text[:SNIPPET_CHARS])).strip()
    text = f"Emulated reply to: {snippet}... [{digest[:4].hex()}]"
    tokens = estimate_tokens(len(text))
    if tokens > max_tokens:
        return text[: max_tokens * CHARS_PER_TOKEN], max_tokens, "max_tokens"
    return text, tokens, "end_turn"


def message_body(
    *,
    model: str,
    text: str | None,
    stop_reason: str,
    input_tokens: int,
    output_tokens: int,
    cache_creation_input_tokens: int,
    cache_read_input_tokens: int,
) -> bytes:
    """A ``type: message`` body; ``text=None`` gives ``"content": null`` (a fault)."""
    content: list[dict[str, str]] | None = None if text is None else [{"type": "text", "text": text}]
    body: dict[str, Any] = {
        "id": new_id("msg_emu_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_creation_input_tokens,
            "cache_read_input_tokens": cache_read_input_tokens,
        },
    }
    return orjson.dumps(body)


def error_body(kind: str, message: str) -> bytes:
    """The API's error envelope: ``{"type": "error", "error": {"type": kind, "message": message}}``."""
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
