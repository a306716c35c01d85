"""Log hygiene: escape control characters in user-controlled values, and redact secrets.

``safe(value)`` is applied to every user-controlled value (agent names, task snippets, API error strings, paths)
before it reaches a log record, so a value can never forge a log line, move the terminal cursor (ANSI escapes
start with ESC, a control character), reorder text (bidi controls) or break a UTF-8 log stream (lone
surrogates). Example::

    >>> safe("x\\n2026-01-01 CRITICAL forged")
    'x\\\\n2026-01-01 CRITICAL forged'
    >>> register_secret("sk-ant-api03-0123456789abcdef")
    >>> redact("key=sk-ant-api03-0123456789abcdef")
    'key=[REDACTED]'
"""

from __future__ import annotations

import re
import threading

__all__ = ["DEFAULT_LIMIT", "redact", "register_secret", "safe"]

DEFAULT_LIMIT = 200

# C0/C1 controls (ESC included), DEL, bidi controls and marks, zero-width characters, line/paragraph separators,
# invisible format characters, interlinear annotation marks, Unicode tag characters and lone surrogates.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    "\ud800-\udfff\U000e0000-\U000e007f"
    # the remaining format (Cf) characters: Arabic and Syriac number signs, Egyptian hieroglyph and shorthand
    # format controls, musical symbol beams
    "\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a]"
)
_KEY_PATTERN = re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}")
_MIN_SECRET = 8

_secrets_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    if ch == "\t":
        return "\\t"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def safe(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """A single-line, escaped, redacted, length-bounded rendering of ``value`` for logs.

    The whole value is redacted before anything is cut (a cut could otherwise leave a secret's prefix visible),
    and escaping is bounded to ``4 * limit`` characters.
    """
    limit = max(1, int(limit))
    text = redact(value if isinstance(value, str) else str(value))
    unescaped_rest = max(0, len(text) - limit * 4)
    if unescaped_rest:
        text = text[: limit * 4]
    text = _UNSAFE.sub(_escape, text)
    if len(text) > limit or unescaped_rest:
        # Cut escaped characters, plus the raw tail that was never escaped.
        text = text[:limit] + f"...(+{len(text) - limit + unescaped_rest})"
    return text


def register_secret(secret: str) -> None:
    """Remember a secret (API key, cache secret) so :func:`redact` hides it everywhere."""
    global _secrets
    if len(secret) < _MIN_SECRET:
        return
    with _secrets_lock:
        if secret not in _secrets:
            # Longest first, so a secret that contains another is replaced whole.
            _secrets = tuple(sorted((*_secrets, secret), key=len, reverse=True))


def redact(text: str) -> str:
    """Replace registered secrets and anything shaped like an Anthropic key with ``[REDACTED]``.

    Every occurrence of every secret is found first and overlapping ones are merged, so two secrets that overlap
    (neither containing the other) are hidden whole, not one of them and the other's tail.
    """
    spans: list[tuple[int, int]] = []
    for secret in _secrets:
        start = text.find(secret)
        while start != -1:
            spans.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
    if spans:
        spans.sort()
        pieces: list[str] = []
        pos = 0
        begin, end = spans[0]
        for s_begin, s_end in spans[1:]:
            if s_begin <= end:
                end = max(end, s_end)
                continue
            pieces += (text[pos:begin], "[REDACTED]")
            pos, begin, end = end, s_begin, s_end
        pieces += (text[pos:begin], "[REDACTED]", text[end:])
        text = "".join(pieces)
    return _KEY_PATTERN.sub("sk-ant-[REDACTED]", text)
