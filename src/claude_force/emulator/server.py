"""The aiohttp application: ``POST /v1/messages`` plus the ``/_emulator`` control endpoints."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from .buckets import retry_after_header
from .config import EmulatorConfig
from .faults import Fault, draw
from .promptcache import CachePlan, breakpoints_for
from .reply import error_body, message_body, new_id, reply_text
from .state import EmulatorState
from .tokens import estimate_tokens
from .validation import ParsedRequest, RequestError, parse_request

__all__ = ["STATE_KEY", "create_app"]

logger = logging.getLogger("claude_force.emulator")

STATE_KEY: web.AppKey[EmulatorState] = web.AppKey("claude_force_emulator_state", EmulatorState)

Sleep = Callable[[float], Awaitable[object]]

_JSON = "application/json"
_TOO_LARGE = error_body("request_too_large", "Request exceeds the maximum allowed number of bytes.")
_NO_KEY = error_body("authentication_error", "x-api-key header is required")
_BAD_KEY = error_body("authentication_error", "invalid x-api-key")
_NO_VERSION = error_body("invalid_request_error", "anthropic-version: header is required")
_BAD_JSON = error_body("invalid_request_error", "There was an error parsing the body: invalid JSON")
_FAULT_BODIES: dict[Fault, tuple[int, bytes]] = {
    Fault.RATE_LIMIT: (
        429,
        error_body("rate_limit_error", "This request would exceed your rate limit (emulated fault)."),
    ),
    Fault.OVERLOADED: (529, error_body("overloaded_error", "Overloaded")),
    Fault.SERVER_ERROR: (500, error_body("api_error", "Internal server error")),
}
_INTERNAL = error_body("api_error", "Internal server error (emulator bug; see its log)")


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _response(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = {"content-type": _JSON, "request-id": new_id("req_emu_")}
    if headers:
        all_headers.update(headers)
    return web.Response(body=body, status=status, headers=all_headers)


class _Handlers:
    def __init__(self, state: EmulatorState, sleep: Sleep, wall_clock: Callable[[], float]) -> None:
        self.state = state
        self.config = state.config
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.retry_after = _format_seconds(self.config.retry_after)

    # -- helpers ---------------------------------------------------------------------------------

    def _auth_error(self, request: web.Request) -> web.Response | None:
        headers = request.headers
        key = headers.get("x-api-key", "")
        if not key:
            auth = headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                key = auth[7:].strip()
        if not key:
            return _response(401, _NO_KEY)
        expected = self.config.api_key
        if expected is not None and not hmac.compare_digest(key.encode(), expected.encode()):
            return _response(401, _BAD_KEY)
        if not headers.get("anthropic-version"):
            return _response(400, _NO_VERSION)
        return None

    async def _read_body(self, request: web.Request) -> bytes | web.Response:
        length = request.content_length
        if length is not None and length > self.config.max_body_bytes:
            return _response(413, _TOO_LARGE)
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _response(413, _TOO_LARGE)

    def _ratelimit_headers(self) -> dict[str, str]:
        limiter = self.state.limiter
        return limiter.headers(self.wall_clock()) if limiter.enabled else {}

    # -- endpoints -------------------------------------------------------------------------------

    async def messages(self, request: web.Request) -> web.Response:
        stats = self.state.stats
        stats.begin()
        status: int | None = None
        try:
            response = await self._messages(request)
            status = response.status
            return response
        except Exception:
            logger.exception("emulator: unexpected error while answering %s", request.path)
            status = 500
            return _response(500, _INTERNAL)
        finally:
            stats.end(status)

    async def _messages(self, request: web.Request) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        raw = await self._read_body(request)
        if isinstance(raw, web.Response):
            return raw
        state = self.state
        digest = hashlib.sha256(raw).digest()
        seen = state.ledger.observe(digest)
        try:
            parsed = parse_request(orjson.loads(raw))
        except orjson.JSONDecodeError:
            return _response(400, _BAD_JSON)
        except RequestError as exc:
            return _response(exc.status, error_body(exc.kind, exc.message))

        total = estimate_tokens(parsed.input_chars)
        plan = state.cache.plan(
            breakpoints_for(
                parsed.model,
                parsed.system_texts,
                parsed.system_ttls,
                parsed.top_level_ttl,
                self.config.min_cacheable_for(parsed.model),
            )
        )
        uncached = max(0, total - plan.read_tokens - plan.write_tokens)
        if state.limiter.enabled:
            wait, which = state.limiter.admit(uncached + plan.write_tokens)
            if wait > 0.0:
                headers = self._ratelimit_headers()
                headers["retry-after"] = retry_after_header(wait)
                message = f"Number of {which} has exceeded your per-minute rate limit (emulated)."
                return _response(429, error_body("rate_limit_error", message), headers)

        fate = draw(self.config, digest, seen)
        if fate.delay > 0.0:
            await self.sleep(fate.delay)
        if fate.fault in _FAULT_BODIES:
            status, body = _FAULT_BODIES[fate.fault]
            headers = self._ratelimit_headers()
            if fate.fault is Fault.RATE_LIMIT:
                headers["retry-after"] = self.retry_after
            logger.debug("emulator: injected %s", status)
            return _response(status, body, headers)
        return self._answer(parsed, digest, fate.fault, plan, uncached)

    def _answer(
        self, parsed: ParsedRequest, digest: bytes, fault: Fault, plan: CachePlan, uncached: int
    ) -> web.Response:
        """Commit the prompt cache, charge output tokens and build the 200 (maybe faulty) body."""
        state = self.state
        stats = state.stats
        text, output_tokens, stop_reason = reply_text(parsed.last_user_text, digest, parsed.max_tokens)
        read_tokens, write_tokens = plan.read_tokens, plan.write_tokens
        state.cache.commit(plan)
        if write_tokens:
            stats.cache_writes += 1
            stats.cache_write_tokens += write_tokens
        if read_tokens:
            stats.cache_reads += 1
            stats.cache_read_tokens += read_tokens
        stats.input_tokens += uncached
        stats.output_tokens += output_tokens
        state.limiter.charge_output(output_tokens)
        body = message_body(
            model=parsed.model,
            text=None if fault is Fault.NULL_CONTENT else text,
            stop_reason=stop_reason,
            input_tokens=uncached,
            output_tokens=output_tokens,
            cache_creation_input_tokens=write_tokens,
            cache_read_input_tokens=read_tokens,
        )
        if fault is Fault.MALFORMED:
            body = body[: len(body) // 2]
            logger.debug("emulator: injected malformed body")
        return _response(200, body, self._ratelimit_headers())

    async def count_tokens(self, request: web.Request) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        raw = await self._read_body(request)
        if isinstance(raw, web.Response):
            return raw
        try:
            data = orjson.loads(raw)
            if isinstance(data, dict) and "max_tokens" not in data:
                data["max_tokens"] = 1
            parsed = parse_request(data)
        except orjson.JSONDecodeError:
            return _response(400, _BAD_JSON)
        except RequestError as exc:
            return _response(exc.status, error_body(exc.kind, exc.message))
        return _response(200, orjson.dumps({"input_tokens": estimate_tokens(parsed.input_chars)}))

    async def stats(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.state.snapshot()), content_type=_JSON)

    async def reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        logger.info("emulator: state reset")
        return web.Response(body=b'{"reset":true}', content_type=_JSON)


def create_app(
    config: EmulatorConfig | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    wall_clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the emulator's aiohttp application (serve it with ``aiohttp.web`` or EmulatorServer).

    ``clock`` (monotonic seconds) drives rate limits and prompt-cache TTLs; ``sleep`` implements
    latency and hangs; ``wall_clock`` only stamps ``anthropic-ratelimit-*-reset`` headers. The
    state is at ``app[STATE_KEY]``. Example::

        app = create_app(EmulatorConfig(latency_ms=50, seed=3))
        web.run_app(app, host="127.0.0.1", port=8765)
    """
    cfg = config if config is not None else EmulatorConfig()
    state = EmulatorState(cfg, clock=clock)
    app = web.Application(client_max_size=cfg.max_body_bytes)
    app[STATE_KEY] = state
    handlers = _Handlers(state, sleep, wall_clock)
    app.router.add_post("/v1/messages", handlers.messages)
    app.router.add_post("/v1/messages/count_tokens", handlers.count_tokens)
    app.router.add_get("/_emulator/stats", handlers.stats)
    app.router.add_post("/_emulator/reset", handlers.reset)
    return app
