"""The transport seam: ``async def send(request) -> Response`` plus ``aclose()``.

A transport is the only place that speaks HTTP. It maps every HTTP or client-library failure into
:mod:`claude_force.errors` and validates the response body (null content, no text, bad usage) with
:func:`parse_message`, so the retry layer sees one exception tree whatever the transport.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from claude_force.errors import EmptyResponse, MalformedResponse
from claude_force.models import MISSING_USAGE, WARNING_HEADER, Request, Response, Usage

#: Response headers kept on ``Response.headers`` (the limiter adapts to them).
KEPT_HEADER_PREFIX = "anthropic-ratelimit-"
#: The rate-limit headers a response keeps (what the limiter reads), looked up by name: a case-insensitive
#: lookup per name costs less than lower-casing and testing every header of every response.
KEPT_HEADERS: tuple[str, ...] = tuple(
    f"{KEPT_HEADER_PREFIX}{kind}-{field}"
    for kind in ("requests", "tokens", "input-tokens", "output-tokens")
    for field in ("limit", "remaining", "reset")
)


@runtime_checkable
class Transport(Protocol):
    """Send one request; raise a :class:`~claude_force.errors.TransportError` subclass on failure."""

    async def send(self, request: Request, *, timeout: float | None = None) -> Response: ...

    async def aclose(self) -> None: ...


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date); None if absent/bad."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0 and value == value:  # not NaN
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if parsed is None:
            return None
        now = time.time() if now is None else now
        return max(0.0, parsed.timestamp() - now)
    if value != value or value < 0 or value == float("inf"):
        return None
    return value


def error_message(payload: Any, fallback: str) -> str:
    """The ``error.message`` of an Anthropic error body, or ``fallback``."""
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            kind = err.get("type")
            return f"{kind}: {err['message']}" if isinstance(kind, str) else str(err["message"])
    return fallback


def _int(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedResponse(f"usage field is not an integer: {type(value).__name__}")
    if value < 0:  # would refill the limiter's buckets and give a negative cost
        raise MalformedResponse("usage field is negative")
    return value


def parse_message(
    data: Any, *, request_id: str | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    """Validate a decoded Messages API body and build a :class:`Response`.

    Raises :class:`EmptyResponse` for null/missing content, no text blocks or only empty text, and
    :class:`MalformedResponse` for any other shape problem. Missing usage becomes zeros plus a warning
    header (``x-claude-force-warning``) that the orchestrator copies into metadata.
    """
    if not isinstance(data, dict):
        raise MalformedResponse("response body is not a JSON object", request_id=request_id)
    # Usage first: a 200 that fails below was still billed, and its error carries the counts for the budget.
    usage_raw = data.get("usage")
    usage: Usage | None = None
    usage_error: MalformedResponse | None = None
    if isinstance(usage_raw, dict):
        try:
            counts = Usage(
                _int(usage_raw.get("input_tokens")),
                _int(usage_raw.get("output_tokens")),
                _int(usage_raw.get("cache_creation_input_tokens")),
                _int(usage_raw.get("cache_read_input_tokens")),
            )
        except MalformedResponse as exc:
            usage_error = MalformedResponse(exc.message, request_id=request_id)
        else:  # without its two required counts, usage is not a measurement (zeros would bill nothing)
            if usage_raw.get("input_tokens") is not None and usage_raw.get("output_tokens") is not None:
                usage = counts
    content = data.get("content")
    if content is None:
        raise EmptyResponse("response content is null or missing", request_id=request_id, usage=usage)
    if not isinstance(content, list):
        raise MalformedResponse("response content is not a list", request_id=request_id, usage=usage)
    texts = [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text" and "text" in b]
    if not texts:
        raise EmptyResponse("response has no text blocks", request_id=request_id, usage=usage)
    if not all(isinstance(t, str) for t in texts):
        raise MalformedResponse("a text block's text is not a string", request_id=request_id, usage=usage)
    text = "".join(texts)
    if not text:
        raise EmptyResponse("response text is empty", request_id=request_id, usage=usage)
    if usage_error is not None:
        raise usage_error
    kept: dict[str, str] = {}
    if (
        headers is not None
    ):  # aiohttp's and httpx's header maps are case-insensitive; a plain dict must be lower-case
        for name in KEPT_HEADERS:
            value = headers.get(name)
            if value is not None:
                kept[name] = value
    if usage is None:  # no usage, or without its two required counts: zeros, marked as not measured
        usage = Usage()
        kept[WARNING_HEADER] = MISSING_USAGE
    model = data.get("model")
    stop = data.get("stop_reason")
    mid = data.get("id")
    return Response(
        text=text,
        model=model if isinstance(model, str) else "",
        usage=usage,
        stop_reason=stop if isinstance(stop, str) else None,
        message_id=mid if isinstance(mid, str) else None,
        request_id=request_id,
        headers=kept,
    )
