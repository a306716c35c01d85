"""Transport conformance: native (aiohttp) and sdk (official anthropic client) behave the same against the
emulator over loopback HTTP, and map every failure into the one exception tree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from claude_force import errors as E
from claude_force.emulator import EmulatorConfig, EmulatorServer
from claude_force.models import CallContext, Request
from claude_force.transports import Transport, make_transport

pytestmark = pytest.mark.integration

TRANSPORTS = ["native", "sdk"]


def request(**params: Any) -> Request:
    return Request(
        agent_name="a",
        model="claude-sonnet-5-5",
        system="You are terse.",
        messages=[{"role": "user", "content": "<task>\nsay hi\n</task>"}],
        max_tokens=64,
        params=params,
        prompt_cache_ttl="5m",
        context=CallContext(),
    )


async def serve(
    cfg: EmulatorConfig, name: str, key: str = "test-key"
) -> AsyncIterator[tuple[Any, Transport]]:
    async with EmulatorServer(cfg) as emu:
        t = make_transport(name, api_key=key, base_url=emu.base_url, pool_size=4, max_response_bytes=1 << 20)
        try:
            yield emu, t
        finally:
            await t.aclose()


async def messages_server(handler: Any, **runner_kw: Any) -> tuple[Any, int]:
    """A loopback aiohttp server answering ``POST /v1/messages`` with ``handler``: ``(runner, port)``."""
    from aiohttp import web

    app = web.Application()
    app.router.add_post("/v1/messages", handler)
    runner = web.AppRunner(app, **runner_kw)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]


async def send_expecting(name: str, runner: Any, port: int, exc: type[E.TransportError], limit: int) -> Any:
    """Send one request to a :func:`messages_server`, expect ``exc``, close both; the exception info."""
    t = make_transport(
        name, api_key="k", base_url=f"http://127.0.0.1:{port}", pool_size=1, max_response_bytes=limit
    )
    try:
        with pytest.raises(exc) as info:
            await t.send(request(), timeout=5)
    finally:
        await t.aclose()
        await runner.cleanup()
    return info


@pytest.mark.parametrize("name", TRANSPORTS)
async def test_success_shape(name: str) -> None:
    async for emu, t in serve(EmulatorConfig(), name):
        req = request()
        r = await t.send(req, timeout=5)
        assert req.context.attempt_sent
        assert r.text and r.model == "claude-sonnet-5-5"
        assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
        assert r.request_id and r.request_id.startswith("req_")
        assert r.stop_reason == "end_turn"
        stats = await emu.stats()
        assert stats["statuses"] == {"200": 1}


@pytest.mark.parametrize("name", TRANSPORTS)
async def test_same_reply_through_both(name: str) -> None:
    async for _, t in serve(EmulatorConfig(), name):
        r = await t.send(request(), timeout=5)
    async for _, t in serve(EmulatorConfig(), "native" if name == "sdk" else "sdk"):
        other = await t.send(request(), timeout=5)
    # The reply's hash suffix follows the exact body bytes, which each client serialises its own way.
    assert r.text.split("[")[0] == other.text.split("[")[0] and r.usage == other.usage


@pytest.mark.parametrize("name", TRANSPORTS)
@pytest.mark.parametrize(
    ("cfg", "exc", "retry_after"),
    [
        (EmulatorConfig(p429=1.0, retry_after=3), E.RateLimited, 3.0),
        (EmulatorConfig(p529=1.0), E.Overloaded, None),
        (EmulatorConfig(p500=1.0), E.ServerError, None),
        (EmulatorConfig(pnull=1.0), E.EmptyResponse, None),
        (EmulatorConfig(pmalformed=1.0), E.MalformedResponse, None),
    ],
)
async def test_faults_map_into_the_tree(
    name: str, cfg: EmulatorConfig, exc: type[Exception], retry_after: float | None
) -> None:
    async for _, t in serve(cfg, name):
        with pytest.raises(exc) as info:
            await t.send(request(), timeout=5)
    if retry_after is not None:
        assert isinstance(info.value, E.RateLimited) and info.value.retry_after == retry_after
    if isinstance(info.value, E.APIStatusError):
        assert info.value.request_id is not None
    if isinstance(info.value, E.EmptyResponse):
        # a 200 is billed even when its content is null: the error carries the usage for the budget
        usage = info.value.usage
        assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    elif isinstance(info.value, E.MalformedResponse):
        assert info.value.usage is None  # a truncated body: its usage cannot be read


@pytest.mark.parametrize("name", TRANSPORTS)
async def test_bad_request_and_auth(name: str) -> None:
    async for _, t in serve(EmulatorConfig(), name):
        with pytest.raises(E.BadRequest, match="not_a_param"):
            await t.send(request(not_a_param=1), timeout=5)
    async for _, t in serve(EmulatorConfig(api_key="right-key-123"), name, key="wrong-key-456"):
        with pytest.raises(E.AuthenticationError) as info:
            await t.send(request(), timeout=5)
        assert "wrong-key-456" not in str(info.value)


@pytest.mark.parametrize("name", TRANSPORTS)
async def test_generation_params_pass_through(name: str) -> None:
    # temperature is not a named argument of the SDK 2.x messages.create: it must still reach the API.
    async for _, t in serve(EmulatorConfig(), name):
        r = await t.send(request(temperature=0.1, top_k=5, stop_sequences=["END"]), timeout=5)
        assert r.text


@pytest.mark.parametrize("name", TRANSPORTS)
async def test_attempt_timeout(name: str) -> None:
    async for emu, t in serve(EmulatorConfig(phang=1.0, hang_seconds=5), name):
        req = request()
        with pytest.raises(E.APITimeoutError):
            await t.send(req, timeout=0.2)
        reached = (await emu.stats())["requests"]
    assert reached == 1 and req.context.attempt_sent  # it reached the server: it may have been billed


@pytest.mark.parametrize("name", TRANSPORTS)
async def test_a_timeout_waiting_for_a_pooled_connection(name: str) -> None:
    # One connection, held by a request the server never answers: the second request times out before it is
    # sent, and both transports can tell (httpx raises PoolTimeout; aiohttp its connect timeout, which the native
    # transport sets just under the attempt's), so that attempt is not billable.
    import asyncio

    from aiohttp import web

    arrived = asyncio.Event()
    requests: list[int] = []

    async def handler(req: web.Request) -> web.Response:
        requests.append(1)
        arrived.set()
        await asyncio.Future()  # never answers; cancelled at cleanup
        raise AssertionError("unreachable")

    runner, port = await messages_server(handler, shutdown_timeout=0.1)
    t = make_transport(
        name, api_key="k", base_url=f"http://127.0.0.1:{port}", pool_size=1, max_response_bytes=4096
    )
    first = asyncio.ensure_future(t.send(request(), timeout=5))
    waiting = request()
    try:
        await arrived.wait()
        with pytest.raises(E.APITimeoutError):
            await t.send(waiting, timeout=0.3)
    finally:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await t.aclose()
        await runner.cleanup()
    assert requests == [1]  # the second never reached the server
    assert waiting.context.attempt_sent is False


async def test_native_an_oversize_error_body_is_that_status_error() -> None:
    # A 529 whose body is larger than the limit is still a 529 (not billed, retried), not a billed oversize 200.
    from aiohttp import web

    async def handler(req: web.Request) -> web.Response:
        return web.Response(status=529, body=b"x" * 10_000, headers={"retry-after": "2"})

    runner, port = await messages_server(handler)
    info = await send_expecting("native", runner, port, E.Overloaded, 4096)
    assert info.value.retry_after == 2.0 and "error body not read" in info.value.message


@pytest.mark.parametrize("name", TRANSPORTS)
async def test_connection_refused(name: str) -> None:
    async with EmulatorServer(EmulatorConfig()) as emu:
        url = emu.base_url
    t = make_transport(name, api_key="k-123456789", base_url=url, pool_size=1, max_response_bytes=1 << 20)
    req = request()
    try:
        with pytest.raises(E.APIConnectionError):
            await t.send(req, timeout=2)
    finally:
        await t.aclose()
    assert not req.context.attempt_sent  # the connection never opened: nothing can have been billed


@pytest.mark.parametrize("name", TRANSPORTS)
async def test_response_size_limit(name: str) -> None:
    async with EmulatorServer(EmulatorConfig()) as emu:
        t = make_transport(
            name, api_key="k-123456789", base_url=emu.base_url, pool_size=1, max_response_bytes=50
        )
        try:
            with pytest.raises(E.ResponseTooLarge, match="limit"):
                await t.send(request(), timeout=2)
        finally:
            await t.aclose()


async def _chunked_server(chunks: int, chunk_bytes: int) -> tuple[Any, int, list[int]]:
    """A loopback server answering with a chunked (no Content-Length) body; records the bytes it got out."""
    from aiohttp import web

    sent: list[int] = [0]

    async def handler(req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        try:
            for _ in range(chunks):
                await resp.write(b" " * chunk_bytes)
                sent[0] += chunk_bytes
        except (ConnectionResetError, RuntimeError):
            pass  # the client stopped reading and closed: what we want
        return resp

    runner, port = await messages_server(handler)
    return runner, port, sent


@pytest.mark.parametrize("name", TRANSPORTS)
async def test_a_chunked_body_over_the_limit_is_refused_and_not_retried(name: str) -> None:
    from claude_force.layers.retry import should_retry

    runner, port, _ = await _chunked_server(chunks=64, chunk_bytes=16 * 1024)
    info = await send_expecting(name, runner, port, E.ResponseTooLarge, 4096)
    assert info.value.code == "response_too_large" and not should_retry(info.value)


async def test_native_stops_reading_a_chunked_body_past_the_limit() -> None:
    # How much the client *read* cannot be seen from a real server (loopback socket buffers absorb megabytes),
    # so this drives the reader with a stand-in body that counts the chunks taken from it.
    from claude_force.transports.native import _read_at_most

    class Body:
        def __init__(self, chunks: int) -> None:
            self.chunks, self.taken = chunks, 0

        async def iter_any(self) -> Any:
            for _ in range(self.chunks):
                self.taken += 1
                yield b" " * 16384

    class Resp:
        def __init__(self, chunks: int) -> None:
            self.content = Body(chunks)

    big = Resp(4096)  # 64 MiB offered
    assert await _read_at_most(big, 100_000) is None  # type: ignore[arg-type]
    assert big.content.taken == 100_000 // 16384 + 1  # stopped at the first chunk past the limit
    small = Resp(8)
    assert await _read_at_most(small, 1 << 20) == b" " * (8 * 16384)  # type: ignore[arg-type]


async def test_native_sends_its_own_user_agent() -> None:
    """The native transport names itself (not aiohttp) and sends each header once."""
    from aiohttp import web

    from claude_force.transports.native import USER_AGENT

    seen: list[list[str]] = []

    async def handler(req: web.Request) -> web.Response:
        seen.append(req.headers.getall("User-Agent", []))
        return web.json_response(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-5-5",
                "content": [{"type": "text", "text": "hi"}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 3, "output_tokens": 1},
            }
        )

    runner, port = await messages_server(handler)
    t = make_transport(
        "native", api_key="k", base_url=f"http://127.0.0.1:{port}", pool_size=2, max_response_bytes=1 << 16
    )
    try:
        r = await t.send(request(), timeout=5)
    finally:
        await t.aclose()
        await runner.cleanup()
    assert r.text == "hi"
    assert seen == [[USER_AGENT]]
    assert USER_AGENT.startswith("claude-force/") and "aiohttp/" not in USER_AGENT
