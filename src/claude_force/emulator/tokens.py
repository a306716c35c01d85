"""Token estimation: the one place that turns text into a token count.

The emulator does not ship a tokenizer. It estimates ``ceil(chars / 4)``, which is close to what
Claude's tokenizer gives for English prose and code, and is cheap and deterministic. Everything the
emulator reports (``usage``, rate-limit charges, prompt-cache lengths) goes through
:func:`estimate_tokens`.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["CHARS_PER_TOKEN", "content_chars", "estimate_tokens"]

CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    """Estimated tokens for ``chars`` characters of text: ``ceil(chars / 4)``, at least 1."""
    return max(1, -(-chars // CHARS_PER_TOKEN))


def content_chars(content: Any) -> int:
    """Characters that count towards input tokens in a message's ``content``.

    A string counts as itself; a text block counts its ``text``; a ``tool_result`` block counts its
    nested content; any other block (image, tool_use, document, ...) counts the length of its JSON.
    """
    if isinstance(content, str):
        return len(content)
    total = 0
    if isinstance(content, list):
        for block in content:
            if not isinstance(block, dict):
                continue
            text = block.get("text")
            if isinstance(text, str):
                total += len(text)
            elif block.get("type") == "tool_result":
                total += content_chars(block.get("content", ""))
            else:
                total += len(orjson.dumps(block))
    return total
