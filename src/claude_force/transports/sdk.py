"""A transport over the official ``anthropic`` SDK (optional extra ``claude-force[sdk]``).

The SDK's own retries are off (``max_retries=0``): retries happen in one place only, the retry layer. Parameters
the SDK's ``messages.create`` does not name are passed through ``extra_body`` as given, never dropped or invented.
"""

from __future__ import annotations

import inspect
from typing import Any

import orjson

from claude_force import constants as C
from claude_force.errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigError,
    MalformedResponse,
    OrchestratorClosed,
    ResponseTooLarge,
    status_error,
)
from claude_force.models import Request, Response
from claude_force.security.sanitize import register_secret, safe
from claude_force.transports.base import error_message, parse_message, parse_retry_after


class SDKTransport:
    """Send requests with ``anthropic.AsyncAnthropic``.

    Example::

        transport = SDKTransport(api_key=key, base_url=url)
        response = await transport.send(request, timeout=30)
        await transport.aclose()
    """

    __slots__ = ("_anthropic", "_client", "_closed", "_known", "_max_response_bytes")

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = C.DEFAULT_BASE_URL,
        pool_size: int = 10,
        max_response_bytes: int = C.DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        try:
            import anthropic
        except ImportError:
            raise ConfigError(
                "the 'sdk' transport needs the anthropic package: pip install 'claude-force[sdk]'"
            ) from None
        register_secret(api_key)
        self._max_response_bytes = max_response_bytes
        self._anthropic = anthropic
        # The SDK's own Limits class (httpx in older releases, httpx2 in 2.x), so neither is imported by name.
        limits_type = type(anthropic.DEFAULT_CONNECTION_LIMITS)
        limits = limits_type(max_connections=pool_size, max_keepalive_connections=pool_size)
        self._closed = False
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            http_client=anthropic.DefaultAsyncHttpxClient(limits=limits),
        )
        params = inspect.signature(self._client.messages.create).parameters
        self._known = frozenset(
            p for p in params if p not in ("extra_headers", "extra_query", "extra_body", "timeout")
        )

    def __repr__(self) -> str:
        return f"SDKTransport(base_url={str(self._client.base_url)!r})"

    async def send(self, request: Request, *, timeout: float | None = None) -> Response:
        a = self._anthropic
        if self._closed:
            raise OrchestratorClosed("the transport is closed")
        body = request.body()
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in body.items():
            (kwargs if key in self._known else extra)[key] = value
        if extra:
            kwargs["extra_body"] = extra
        ctx = request.context
        ctx.attempt_sent = True  # from here the API may receive, and bill, this attempt
        try:
            raw = await self._client.messages.with_raw_response.create(timeout=timeout, **kwargs)
            content = await raw.read()
        except a.APIStatusError as exc:
            headers = exc.response.headers
            raise status_error(
                exc.status_code,
                safe(error_message(exc.body, exc.message), 300),
                request_id=exc.request_id,
                retry_after=parse_retry_after(headers),
            ) from exc
        except a.APITimeoutError as exc:
            # Waiting for a pooled connection or for the connection to open: nothing reached the API.
            if type(exc.__cause__).__name__ in ("ConnectTimeout", "PoolTimeout"):
                ctx.attempt_sent = False
            raise APITimeoutError(f"attempt timed out after {timeout}s") from exc
        except a.APIConnectionError as exc:
            # The SDK raises it from its HTTP library's error; ConnectError (httpx and httpx2 alike) means the
            # connection never opened, so nothing reached the API.
            if type(exc.__cause__).__name__ == "ConnectError":
                ctx.attempt_sent = False
            raise APIConnectionError(f"connection failed: {safe(exc)}") from exc
        except a.APIResponseValidationError as exc:
            raise MalformedResponse(f"response failed validation: {safe(exc)}") from exc
        request_id = raw.headers.get("request-id")
        if len(content) > self._max_response_bytes:
            # httpx has already read the body; the limit still keeps it out of results and the cache
            raise ResponseTooLarge(
                f"response exceeds the limit of {self._max_response_bytes} bytes", request_id=request_id
            )
        try:
            payload = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise MalformedResponse("response body is not valid JSON", request_id=request_id) from exc
        return parse_message(payload, request_id=request_id, headers=raw.headers)

    async def aclose(self) -> None:
        self._closed = True
        await self._client.close()
