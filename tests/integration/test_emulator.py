"""The emulator over real loopback HTTP (aiohttp client against the in-process server)."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from claude_force.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.integration

KEY = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
SYSTEM_4K = "s" * 4096  # 1024 tokens: exactly the Sonnet minimum


def make_body(text: str = "Summarise the plan", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": text}],
    }
    body.update(overrides)
    return body


def cached_body(text: str = "q", ttl: str | None = None) -> dict[str, Any]:
    cc: dict[str, str] = {"type": "ephemeral"}
    if ttl:
        cc["ttl"] = ttl
    return make_body(text, system=[{"type": "text", "text": SYSTEM_4K, "cache_control": cc}])


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession,
    emu: EmulatorServer,
    payload: Any,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    path: str = "/v1/messages",
) -> tuple[int, Any, Any]:
    data = raw if raw is not None else orjson.dumps(payload)
    async with http.post(
        emu.base_url + path,
        data=data,
        headers=KEY if headers is None else headers,
    ) as resp:
        text = await resp.read()
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            doc = text
        return resp.status, doc, resp.headers


async def test_success_shape_and_headers(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer(EmulatorConfig(rpm=600, input_tpm=100_000, output_tpm=20_000)) as emu:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emu.base_url)
        status, doc, headers = await post(http, emu, make_body())
        assert status == 200
        assert re.fullmatch(r"msg_emu_[0-9a-f]+", doc["id"])
        assert re.fullmatch(r"req_emu_[0-9a-f]+", headers["request-id"])
        assert headers["content-type"].startswith("application/json")
        assert doc["type"] == "message"
        assert doc["role"] == "assistant"
        assert doc["model"] == "claude-sonnet-4-5"
        assert doc["stop_reason"] == "end_turn"
        assert doc["stop_sequence"] is None
        [block] = doc["content"]
        assert block["type"] == "text"
        assert block["text"].startswith("Emulated reply to: Summarise the plan")
        assert doc["usage"] == {
            "input_tokens": 5,  # ceil(18 / 4)
            "output_tokens": doc["usage"]["output_tokens"],
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        assert doc["usage"]["output_tokens"] >= 1
        for kind, limit in (("requests", "600"), ("input-tokens", "100000"), ("output-tokens", "20000")):
            assert headers[f"anthropic-ratelimit-{kind}-limit"] == limit
            assert int(headers[f"anthropic-ratelimit-{kind}-remaining"]) >= 0
            assert re.fullmatch(
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", headers[f"anthropic-ratelimit-{kind}-reset"]
            )

        # identical bodies give identical text; different bodies do not
        _, again, _ = await post(http, emu, make_body())
        _, other, _ = await post(http, emu, make_body("Something else"))
        assert again["content"] == doc["content"]
        assert other["content"] != doc["content"]
        assert again["id"] != doc["id"]


async def test_no_ratelimit_headers_without_limits(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer() as emu:
        status, _, headers = await post(http, emu, make_body())
        assert status == 200
        assert not [h for h in headers if h.lower().startswith("anthropic-ratelimit")]


async def test_max_tokens_truncates(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer() as emu:
        status, doc, _ = await post(http, emu, make_body(max_tokens=3))
        assert status == 200
        assert doc["stop_reason"] == "max_tokens"
        assert doc["usage"]["output_tokens"] == 3
        assert len(doc["content"][0]["text"]) <= 12


async def test_auth(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer(EmulatorConfig(api_key="sekret")) as emu:
        for headers in ({}, {"x-api-key": ""}, {"authorization": "Bearer "}, {"x-api-key": "wrong"}):
            status, doc, _ = await post(http, emu, make_body(), headers=headers)
            assert status == 401
            assert doc["type"] == "error"
            assert doc["error"]["type"] == "authentication_error"
            assert doc["error"]["message"]
        version = {"anthropic-version": "2023-06-01"}
        assert (await post(http, emu, make_body(), headers={"x-api-key": "sekret", **version}))[0] == 200
        bearer = {"Authorization": "Bearer sekret", **version}
        assert (await post(http, emu, make_body(), headers=bearer))[0] == 200
        # a good key without the version header: 400, as from the API
        status, doc, _ = await post(http, emu, make_body(), headers={"x-api-key": "sekret"})
        assert status == 400 and doc["error"]["type"] == "invalid_request_error"
        assert doc["error"]["message"] == "anthropic-version: header is required"
    async with EmulatorServer() as emu:  # any non-empty key
        assert (await post(http, emu, make_body(), headers={"x-api-key": "anything", **version}))[0] == 200
        assert (await post(http, emu, make_body(), headers={}))[0] == 401


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (make_body(surprise=1), "surprise: Extra inputs are not permitted"),
        (make_body(max_tokens="many"), "max_tokens"),
        (make_body(max_tokens=0), "max_tokens"),
        (make_body(messages=[]), "messages"),
        (make_body(messages=[{"role": "robot", "content": "x"}]), "messages.0.role"),
        (make_body(system=[{"type": "text", "text": 1}]), "system.0.text"),
        (make_body(stream=True), "streaming is not supported"),
        ("just a string", "dictionary"),
        (make_body(messages=[{"role": "user", "content": [{"type": "bogus"}]}]), "Input tag 'bogus'"),
        (
            make_body(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}}
                            for i in range(5)
                        ],
                    }
                ]
            ),
            "A maximum of 4 blocks with cache_control may be provided. Found 5.",
        ),
    ],
)
async def test_validation_errors(http: aiohttp.ClientSession, payload: Any, message: str) -> None:
    async with EmulatorServer() as emu:
        status, doc, _ = await post(http, emu, payload)
        assert status == 400
        assert doc["type"] == "error"
        assert doc["error"]["type"] == "invalid_request_error"
        assert message in doc["error"]["message"]


async def test_invalid_json(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer() as emu:
        status, doc, _ = await post(http, emu, None, raw=b'{"model": ')
        assert status == 400
        assert doc["error"]["type"] == "invalid_request_error"


async def test_body_too_large(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer(EmulatorConfig(max_body_bytes=1000)) as emu:
        status, doc, _ = await post(http, emu, make_body("x" * 2000))
        assert status == 413
        assert doc["error"]["type"] == "request_too_large"

        async def chunks() -> AsyncIterator[bytes]:  # no content-length: caught while reading
            yield b'{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "'
            yield b"y" * 2000
            yield b'"}]}'

        async with http.post(emu.base_url + "/v1/messages", data=chunks(), headers=KEY) as resp:
            assert resp.status == 413
        assert (await post(http, emu, make_body("small")))[0] == 200


@pytest.mark.parametrize(
    ("name", "status", "error_type"),
    [("p429", 429, "rate_limit_error"), ("p529", 529, "overloaded_error"), ("p500", 500, "api_error")],
)
async def test_error_faults(http: aiohttp.ClientSession, name: str, status: int, error_type: str) -> None:
    async with EmulatorServer(EmulatorConfig(**{name: 1.0}, retry_after=2)) as emu:
        got, doc, headers = await post(http, emu, make_body())
        assert got == status
        assert doc == {"type": "error", "error": {"type": error_type, "message": doc["error"]["message"]}}
        assert headers["request-id"].startswith("req_emu_")
        if status == 429:
            assert headers["retry-after"] == "2"
        else:
            assert "retry-after" not in headers


async def test_null_content_fault(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer(EmulatorConfig(pnull=1.0)) as emu:
        status, doc, _ = await post(http, emu, make_body())
        assert status == 200
        assert doc["content"] is None
        assert doc["usage"]["output_tokens"] >= 1


async def test_malformed_fault(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer(EmulatorConfig(pmalformed=1.0)) as emu:
        status, doc, _ = await post(http, emu, make_body())
        assert status == 200
        assert isinstance(doc, bytes)  # not valid JSON
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(doc)


async def test_hang_fault_exercises_client_timeouts(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer(EmulatorConfig(phang=1.0, hang_seconds=30)) as emu:
        with pytest.raises(asyncio.TimeoutError):
            await http.post(
                emu.base_url + "/v1/messages",
                data=orjson.dumps(make_body()),
                headers=KEY,
                timeout=aiohttp.ClientTimeout(total=0.2),
            )
        stats = await emu.stats()
        assert stats["requests"] == 1
        assert stats["statuses"] == {}
    # leaving the block did not wait 30 s: the hung handler was cancelled


async def test_latency(http: aiohttp.ClientSession) -> None:
    loop = asyncio.get_running_loop()
    async with EmulatorServer(EmulatorConfig(latency_ms=150, jitter_ms=10)) as emu:
        start = loop.time()
        assert (await post(http, emu, make_body()))[0] == 200
        assert loop.time() - start >= 0.13


async def test_determinism_by_seed(http: aiohttp.ClientSession) -> None:
    bodies = [make_body(f"task {i}") for i in range(40)]

    async def outcome(seed: int, order: list[int]) -> dict[int, list[int]]:
        results: dict[int, list[int]] = {}
        async with EmulatorServer(EmulatorConfig(p500=0.3, p529=0.2, seed=seed)) as emu:
            for _ in range(2):  # second pass: the retry of each body gets its own draw
                statuses = await asyncio.gather(*(post(http, emu, bodies[i]) for i in order))
                for i, (status, _, _) in zip(order, statuses, strict=True):
                    results.setdefault(i, []).append(status)
        return results

    forward = await outcome(1, list(range(40)))
    backward = await outcome(1, list(reversed(range(40))))
    assert forward == backward
    assert forward != await outcome(2, list(range(40)))
    assert any(a != b for a, b in forward.values())  # a retry of the same body can differ
    assert {s for pair in forward.values() for s in pair} == {200, 500, 529}


async def test_server_rate_limit(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer(EmulatorConfig(rpm=60, input_tpm=60_000, output_tpm=60_000)) as emu:
        assert (await post(http, emu, make_body()))[0] == 200
        status, doc, headers = await post(http, emu, make_body("second"))
        assert status == 429
        assert doc["error"]["type"] == "rate_limit_error"
        assert "requests" in doc["error"]["message"]
        assert headers["retry-after"] == "1"
        assert headers["anthropic-ratelimit-requests-limit"] == "60"
        assert headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert "anthropic-ratelimit-input-tokens-reset" in headers
        assert "anthropic-ratelimit-output-tokens-reset" in headers
        emu.reset()
        assert (await post(http, emu, make_body()))[0] == 200


async def test_input_token_limit(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer(EmulatorConfig(input_tpm=600)) as emu:  # 10 tokens/s
        assert (await post(http, emu, make_body("x" * 400)))[0] == 200  # 100 tokens: passes when full
        status, doc, headers = await post(http, emu, make_body("y"))
        assert status == 429
        assert "input tokens" in doc["error"]["message"]
        assert headers["retry-after"] == "10"  # 90 tokens of debt + 1 at 10/s


async def test_prompt_cache_write_then_read(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer(EmulatorConfig(latency_ms=100)) as emu:
        first = await asyncio.gather(*(post(http, emu, cached_body(f"q{i}")) for i in range(5)))
        for status, doc, _ in first:  # all arrived before the first answer was sent: all write
            assert status == 200
            assert doc["usage"]["cache_creation_input_tokens"] == 1024
            assert doc["usage"]["cache_read_input_tokens"] == 0
            assert doc["usage"]["input_tokens"] == 1
        status, doc, _ = await post(http, emu, cached_body("later", ttl="1h"))
        assert status == 200
        assert doc["usage"]["cache_read_input_tokens"] == 1024
        assert doc["usage"]["cache_creation_input_tokens"] == 0
        assert doc["usage"]["input_tokens"] == 2
        stats = await emu.stats()
        assert stats["prompt_cache"]["writes"] == 5
        assert stats["prompt_cache"]["reads"] == 1
        assert stats["prompt_cache"]["creation_input_tokens"] == 5 * 1024
        assert stats["input_tokens"] == 5 * 1 + 2


async def test_prompt_cache_minimum_length_and_top_level(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer() as emu:
        short = make_body(
            system=[{"type": "text", "text": "s" * 4000, "cache_control": {"type": "ephemeral"}}]
        )
        for _ in range(2):
            status, doc, _ = await post(http, emu, short)
            assert status == 200
            assert doc["usage"]["cache_creation_input_tokens"] == 0
            assert doc["usage"]["cache_read_input_tokens"] == 0
            assert doc["usage"]["input_tokens"] == 1000 + 5
        haiku = cached_body()
        haiku["model"] = "claude-haiku-4-5"  # minimum 2048 tokens
        assert (await post(http, emu, haiku))[1]["usage"]["cache_creation_input_tokens"] == 0

        top = make_body(system=SYSTEM_4K, cache_control={"type": "ephemeral"})
        assert (await post(http, emu, top))[1]["usage"]["cache_creation_input_tokens"] == 1024
        assert (await post(http, emu, top))[1]["usage"]["cache_read_input_tokens"] == 1024
        # the system-block breakpoint on the same text shares the entry
        assert (await post(http, emu, cached_body()))[1]["usage"]["cache_read_input_tokens"] == 1024
        other_model = cached_body()
        other_model["model"] = "claude-opus-4-1"
        assert (await post(http, emu, other_model))[1]["usage"]["cache_creation_input_tokens"] == 1024

        emu.reset()
        assert (await post(http, emu, top))[1]["usage"]["cache_creation_input_tokens"] == 1024


async def test_stats_and_reset_endpoints(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer(EmulatorConfig(latency_ms=50)) as emu:
        same = make_body("same")
        results = await asyncio.gather(
            *(post(http, emu, same) for _ in range(3)),
            *(post(http, emu, make_body(f"distinct {i}")) for i in range(7)),
        )
        assert [r[0] for r in results] == [200] * 10
        await post(http, emu, make_body(bogus=True))
        await post(http, emu, make_body(), headers={})
        async with http.get(emu.base_url + "/_emulator/stats") as resp:
            assert resp.status == 200
            stats = await resp.json()
        assert stats == await emu.stats()
        assert stats["requests"] == 12
        assert stats["statuses"] == {"200": 10, "400": 1, "401": 1}
        assert stats["in_flight"] == 0
        assert stats["max_in_flight"] == 10
        assert stats["distinct_bodies"] == 9  # 1 same + 7 distinct + the bogus one (401s are not read)
        assert stats["duplicate_bodies"] == 2
        assert stats["prompt_cache"]["writes"] == 0
        assert stats["input_tokens"] > 0
        assert stats["output_tokens"] > 0

        async with http.post(emu.base_url + "/_emulator/reset") as resp:
            assert resp.status == 200
        stats = await emu.stats()
        assert stats["requests"] == 0
        assert stats["statuses"] == {}
        assert stats["max_in_flight"] == 0
        assert stats["distinct_bodies"] == stats["duplicate_bodies"] == 0
        assert stats["input_tokens"] == stats["output_tokens"] == 0


async def test_count_tokens_endpoint(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer() as emu:
        payload = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x" * 40}]}
        status, doc, _ = await post(http, emu, payload, path="/v1/messages/count_tokens")
        assert (status, doc) == (200, {"input_tokens": 10})
        status, _, _ = await post(http, emu, {"messages": []}, path="/v1/messages/count_tokens")
        assert status == 400
        assert (await emu.stats())["requests"] == 0


async def test_server_lifecycle_errors() -> None:
    emu = EmulatorServer()
    with pytest.raises(RuntimeError):
        _ = emu.base_url
    await emu.start()
    try:
        with pytest.raises(RuntimeError):
            await emu.start()
    finally:
        await emu.close()
    await emu.close()  # idempotent


def test_module_entry_point_prints_port_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_force.emulator", "--port", "0", "--print-port", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        assert port > 0

        async def one_call() -> int:
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"http://127.0.0.1:{port}/v1/messages", json=make_body(), headers=KEY) as resp,
            ):
                return resp.status

        assert asyncio.run(one_call()) == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_module_entry_point_rejects_bad_config() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "claude_force.emulator", "--p429", "0.7", "--p500", "0.7"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "must not exceed 1" in result.stderr


async def test_serve_until_stopped(http: aiohttp.ClientSession) -> None:
    from claude_force.emulator import serve

    stop = asyncio.Event()
    ready: asyncio.Future[EmulatorServer] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(EmulatorConfig(), on_ready=ready.set_result, stop=stop, handle_signals=False)
    )
    emu = await asyncio.wait_for(ready, 5)
    assert (await post(http, emu, make_body()))[0] == 200
    stop.set()
    await asyncio.wait_for(task, 5)


def test_module_main_in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from claude_force.emulator import __main__ as entry

    seen: dict[str, Any] = {}

    class FakeServer:
        port = 4321
        base_url = "http://127.0.0.1:4321"

    def fake_run(config: EmulatorConfig, *, on_ready: Any = None) -> None:
        seen["config"] = config
        on_ready(FakeServer())

    monkeypatch.setattr(entry, "run", fake_run)
    assert entry.main(["--port", "0", "--print-port", "--pnull", "0.5", "--rpm", "10", "--api-key", "k"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "4321"
    assert "http://127.0.0.1:4321" in err
    cfg = seen["config"]
    assert (cfg.port, cfg.pnull, cfg.rpm, cfg.api_key) == (0, 0.5, 10, "k")
