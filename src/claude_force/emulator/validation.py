"""Validation of ``POST /v1/messages`` bodies, shaped like the real API's 400 messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .tokens import content_chars

__all__ = ["CACHE_TTLS", "ParsedRequest", "RequestError", "parse_request"]

#: Prompt-cache TTLs the API accepts, in seconds.
CACHE_TTLS: dict[str, float] = {"5m": 300.0, "1h": 3600.0}

_ROLES = ("user", "assistant")
#: Content block types the Messages API accepts in ``messages[].content`` (others are a 400, as there).
_BLOCK_TYPES = frozenset(
    (
        "text",
        "image",
        "document",
        "search_result",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
    )
)
#: The API refuses more than this many ``cache_control`` breakpoints in one request.
MAX_CACHE_BREAKPOINTS = 4
_SERVICE_TIERS = ("auto", "standard_only")


class RequestError(Exception):
    """A request the real API would refuse. ``status`` is the HTTP status, ``kind`` the error type."""

    def __init__(self, message: str, *, status: int = 400, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """The parts of a valid request body that the emulator uses."""

    model: str
    max_tokens: int
    #: Text of each system block, in order (a string ``system`` is one block).
    system_texts: tuple[str, ...]
    #: For each system block, the TTL in seconds of its ``cache_control``, or None.
    system_ttls: tuple[float | None, ...]
    #: TTL in seconds of a top-level ``cache_control``, or None.
    top_level_ttl: float | None
    #: Characters counted as input: all system text plus all message content.
    input_chars: int
    #: Text of the last ``user`` message ("" if none).
    last_user_text: str


def _fail(message: str) -> RequestError:
    return RequestError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cache_ttl(value: Any, where: str) -> float:
    if not isinstance(value, dict):
        raise _fail(f"{where}: Input should be a valid dictionary")
    for key in value:
        if key not in ("type", "ttl"):
            raise _fail(f"{where}.{key}: Extra inputs are not permitted")
    if value.get("type") != "ephemeral":
        raise _fail(f"{where}.type: Input should be 'ephemeral'")
    ttl = value.get("ttl", "5m")
    if ttl not in CACHE_TTLS:
        raise _fail(f"{where}.ttl: Input should be '5m' or '1h'")
    return CACHE_TTLS[ttl]


def _parse_system(system: Any) -> tuple[tuple[str, ...], tuple[float | None, ...]]:
    if isinstance(system, str):
        return (system,), (None,)
    if not isinstance(system, list):
        raise _fail("system: Input should be a valid string or a list of text blocks")
    texts: list[str] = []
    ttls: list[float | None] = []
    for i, block in enumerate(system):
        where = f"system.{i}"
        if not isinstance(block, dict):
            raise _fail(f"{where}: Input should be a valid dictionary")
        if block.get("type") != "text":
            raise _fail(f"{where}.type: Input should be 'text'")
        text = block.get("text")
        if not isinstance(text, str):
            raise _fail(f"{where}.text: Input should be a valid string")
        for key in block:
            if key not in ("type", "text", "cache_control", "citations"):
                raise _fail(f"{where}.{key}: Extra inputs are not permitted")
        cc = block.get("cache_control")
        texts.append(text)
        ttls.append(None if cc is None else _cache_ttl(cc, f"{where}.cache_control"))
    return tuple(texts), tuple(ttls)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [b["text"] for b in content if isinstance(b.get("text"), str) and b.get("type") == "text"]
    return "\n".join(parts)


def _check_messages(messages: Any) -> tuple[int, str, int]:
    """Characters of content, the last user text, and the number of ``cache_control`` breakpoints."""
    if not isinstance(messages, list):
        raise _fail("messages: Input should be a valid list")
    if not messages:
        raise _fail("messages: at least one message is required")
    chars = 0
    last_user = ""
    breakpoints = 0
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise _fail(f"{where}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in _ROLES:
            raise _fail(f"{where}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise _fail(f"{where}.content: Field required")
        content = message["content"]
        if isinstance(content, list):
            for j, block in enumerate(content):
                if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                    raise _fail(f"{where}.content.{j}: Input should be a content block with a 'type'")
                if block["type"] not in _BLOCK_TYPES:
                    raise _fail(
                        f"{where}.content.{j}.type: Input tag {block['type'][:64]!r} found using 'type' does not "
                        "match any of the expected tags"
                    )
                if block["type"] == "text" and not isinstance(block.get("text"), str):
                    raise _fail(f"{where}.content.{j}.text: Input should be a valid string")
                if block.get("cache_control") is not None:
                    _cache_ttl(block["cache_control"], f"{where}.content.{j}.cache_control")
                    breakpoints += 1
                nested = block.get("content") if block["type"] == "tool_result" else None
                if isinstance(nested, list):  # a tool result's own blocks may carry breakpoints too
                    breakpoints += sum(
                        isinstance(b, dict) and b.get("cache_control") is not None for b in nested
                    )
        elif not isinstance(content, str):
            raise _fail(f"{where}.content: Input should be a valid string or a list of content blocks")
        chars += content_chars(content)
        if role == "user":
            last_user = _text_of(content)
    return chars, last_user, breakpoints


def _check_optional(body: dict[str, Any]) -> None:
    checks: dict[str, tuple[bool, str]] = {}
    if "metadata" in body:
        checks["metadata"] = (isinstance(body["metadata"], dict), "Input should be a valid dictionary")
    if "stop_sequences" in body:
        seq = body["stop_sequences"]
        ok = isinstance(seq, list) and all(isinstance(s, str) for s in seq)
        checks["stop_sequences"] = (ok, "Input should be a valid list of strings")
    if "temperature" in body:
        t = body["temperature"]
        checks["temperature"] = (_is_number(t) and 0 <= t <= 1, "Input should be a number in [0, 1]")
    if "top_p" in body:
        p = body["top_p"]
        checks["top_p"] = (_is_number(p) and 0 <= p <= 1, "Input should be a number in [0, 1]")
    if "top_k" in body:
        k = body["top_k"]
        checks["top_k"] = (_is_int(k) and k >= 0, "Input should be an integer >= 0")
    if "tools" in body:
        tools = body["tools"]
        ok = isinstance(tools, list) and all(isinstance(t, dict) for t in tools)
        checks["tools"] = (ok, "Input should be a valid list of tools")
    for key in ("tool_choice", "thinking"):
        if key in body:
            value = body[key]
            ok = isinstance(value, dict) and isinstance(value.get("type"), str)
            checks[key] = (ok, "Input should be a valid dictionary with a 'type'")
    if "service_tier" in body:
        ok = body["service_tier"] in _SERVICE_TIERS
        checks["service_tier"] = (ok, "Input should be 'auto' or 'standard_only'")
    for key, (ok, message) in checks.items():
        if not ok:
            raise _fail(f"{key}: {message}")


_REQUIRED = ("model", "max_tokens", "messages")
_KNOWN = frozenset(
    (
        *_REQUIRED,
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_k",
        "top_p",
        "tools",
        "tool_choice",
        "thinking",
        "cache_control",
        "service_tier",
    )
)


def parse_request(body: Any) -> ParsedRequest:
    """Validate a decoded JSON body; return what the emulator needs or raise :class:`RequestError`."""
    if not isinstance(body, dict):
        raise _fail("Input should be a valid dictionary (a JSON object)")
    for key in body:
        if key not in _KNOWN:
            raise _fail(f"{key}: Extra inputs are not permitted")
    for key in _REQUIRED:
        if key not in body:
            raise _fail(f"{key}: Field required")
    model = body["model"]
    if not isinstance(model, str) or not model:
        raise _fail("model: Input should be a non-empty string")
    max_tokens = body["max_tokens"]
    if not _is_int(max_tokens):
        raise _fail("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise _fail("max_tokens: Input should be greater than or equal to 1")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _fail("stream: Input should be a valid boolean")
    if stream:
        raise _fail("stream: streaming is not supported by the claude-force emulator; send stream=false")
    _check_optional(body)
    chars, last_user, breakpoints = _check_messages(body["messages"])
    texts: tuple[str, ...] = ()
    ttls: tuple[float | None, ...] = ()
    if body.get("system") is not None:
        texts, ttls = _parse_system(body["system"])
    top_cc = body.get("cache_control")
    top_ttl = None if top_cc is None else _cache_ttl(top_cc, "cache_control")
    breakpoints += sum(ttl is not None for ttl in ttls) + (top_ttl is not None)
    breakpoints += sum(t.get("cache_control") is not None for t in body.get("tools") or ())  # checked: dicts
    if breakpoints > MAX_CACHE_BREAKPOINTS:
        raise _fail(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {breakpoints}."
        )
    return ParsedRequest(
        model=model,
        max_tokens=max_tokens,
        system_texts=texts,
        system_ttls=ttls,
        top_level_ttl=top_ttl,
        input_chars=chars + sum(len(t) for t in texts),
        last_user_text=last_user,
    )
