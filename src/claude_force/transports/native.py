"""The default transport: aiohttp with a pooled connector and orjson. Built for low client CPU per call."""

from __future__ import annotations

import asyncio
import logging
import math

import aiohttp
import orjson

from claude_force import __version__
from claude_force import constants as C
from claude_force.errors import (
    APIConnectionError,
    APITimeoutError,
    MalformedResponse,
    OrchestratorClosed,
    ResponseTooLarge,
    TransportError,
    status_error,
)
from claude_force.models import Request, Response
from claude_force.security.sanitize import register_secret, safe
from claude_force.transports.base import error_message, parse_message, parse_retry_after

logger = logging.getLogger("claude_force.transports.native")

#: Sent on every request, so a server's logs can tell this client (and its version) apart.
USER_AGENT = f"claude-force/{__version__} (aiohttp)"
#: Share of an attempt's timeout that getting a connection (from the pool, or a new one) may take. Just under the
#: whole, so when the attempt times out while still connecting, aiohttp's own connect timeout fires first and
#: says so (``ConnectionTimeoutError``): nothing was sent, so the attempt is not billable.
CONNECT_SHARE = 0.98


class NativeTransport:
    """POST ``/v1/messages`` with aiohttp; maps every failure into :mod:`claude_force.errors`.

    Example::

        async with NativeTransport(api_key=key, base_url="http://127.0.0.1:8765", pool_size=50) as t:
            response = await t.send(request, timeout=30)
    """

    __slots__ = (
        "_base_url",
        "_closed",
        "_connector_limit",
        "_headers",
        "_max_response_bytes",
        "_session",
        "_timeouts",
        "_url",
    )

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = C.DEFAULT_BASE_URL,
        pool_size: int = C.DEFAULT_MAX_CONCURRENCY,
        max_response_bytes: int = C.DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        register_secret(api_key)
        self._base_url = base_url.rstrip("/")
        self._url = self._base_url + "/v1/messages"
        self._headers = {
            "x-api-key": api_key,
            "anthropic-version": C.ANTHROPIC_VERSION,
            "content-type": "application/json",
            "accept": "application/json",
            # Our own name instead of aiohttp's; also cheaper than asking aiohttp to skip its header per request.
            "user-agent": USER_AGENT,
        }
        self._connector_limit = max(1, pool_size)
        self._max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}

    def __repr__(self) -> str:
        state = "open" if self._session is not None and not self._session.closed else "idle"
        return f"NativeTransport(base_url={self._base_url!r}, pool={self._connector_limit}, {state})"

    async def __aenter__(self) -> NativeTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _client(self) -> aiohttp.ClientSession:
        session = self._session
        if self._closed:
            raise OrchestratorClosed("the transport is closed")  # never a new session after aclose()
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._connector_limit, limit_per_host=self._connector_limit
            )
            session = aiohttp.ClientSession(connector=connector, headers=self._headers)
            self._session = session
        return session

    def _timeout(self, seconds: float | None) -> aiohttp.ClientTimeout:
        t = self._timeouts.get(seconds)
        if t is None:
            # ceil_threshold: aiohttp rounds a timeout above it up to a whole second, which could put both deadlines
            # on the same second; with no rounding the connect deadline always comes first.
            t = aiohttp.ClientTimeout(
                total=seconds,
                connect=None if seconds is None else seconds * CONNECT_SHARE,
                ceil_threshold=math.inf,
            )
            if len(self._timeouts) < 64:
                self._timeouts[seconds] = t
        return t

    async def send(self, request: Request, *, timeout: float | None = None) -> Response:
        session = self._client()
        data = request.body_bytes()
        ctx = request.context
        ctx.attempt_sent = True  # from here the API may receive, and bill, this attempt
        try:
            async with session.post(self._url, data=data, timeout=self._timeout(timeout)) as resp:
                request_id = resp.headers.get("request-id")
                status = resp.status
                limit = self._max_response_bytes
                length = resp.content_length
                if length is not None and length > limit:
                    raise _too_large(resp, f"response of {length} bytes exceeds the limit of {limit}")
                # No length (chunked): read piece by piece and stop once past the limit, so an endless or huge
                # body never sits in memory whole.
                raw = await resp.read() if length is not None else await _read_at_most(resp, limit)
                if raw is None or len(raw) > limit:
                    raise _too_large(resp, f"response exceeds the limit of {limit} bytes")
                headers = resp.headers
        except TransportError:
            raise
        except aiohttp.ConnectionTimeoutError as exc:
            ctx.attempt_sent = False  # still waiting for a connection: nothing reached the API
            raise APITimeoutError(f"attempt timed out after {timeout}s while getting a connection") from exc
        except asyncio.TimeoutError as exc:
            raise APITimeoutError(f"attempt timed out after {timeout}s") from exc
        except aiohttp.ClientError as exc:
            if isinstance(exc, aiohttp.ClientConnectorError):
                ctx.attempt_sent = False  # the connection never opened: nothing reached the API
            raise APIConnectionError(f"connection failed: {safe(exc)}") from exc
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if status >= 400:
                payload = None
            else:
                raise MalformedResponse("response body is not valid JSON", request_id=request_id) from exc
        if status >= 400:
            raise status_error(
                status,
                safe(error_message(payload, resp.reason or "error"), 300),
                request_id=request_id,
                retry_after=parse_retry_after(headers),
            )
        return parse_message(payload, request_id=request_id, headers=headers)

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


def _too_large(resp: aiohttp.ClientResponse, message: str) -> TransportError:
    """An oversize body: of an error status, that status's error (not billed, retried as usual); else
    :class:`ResponseTooLarge`."""
    request_id = resp.headers.get("request-id")
    if resp.status >= 400:
        return status_error(
            resp.status,
            f"{safe(resp.reason or 'error', 80)} (error body not read: {message})",
            request_id=request_id,
            retry_after=parse_retry_after(resp.headers),
        )
    return ResponseTooLarge(message, request_id=request_id)


async def _read_at_most(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes (the rest is never read)."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in resp.content.iter_any():
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
