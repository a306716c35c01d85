"""The whole pipeline, through both real transports, against the emulator over loopback HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from claude_force import AsyncAgentOrchestrator
from claude_force.emulator import EmulatorConfig, EmulatorServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("isolated_env")]

TRANSPORTS = ["native", "sdk"]


def make(project: Path, tmp_path: Path, url: str, transport: str, **kw: Any) -> AsyncAgentOrchestrator:
    kw.setdefault("enable_cache", False)
    return AsyncAgentOrchestrator(
        project,
        api_key="sk-ant-test-" + "Q" * 32,
        base_url=url,
        transport=transport,
        metrics_dir=tmp_path / "metrics",
        cache_dir=tmp_path / "cache",
        **kw,
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_concurrency_cap_is_observed_at_the_server(
    project: Path, tmp_path: Path, transport: str
) -> None:
    async with EmulatorServer(EmulatorConfig(latency_ms=30)) as emu:
        async with make(project, tmp_path, emu.base_url, transport, max_concurrent=7) as orch:
            results = await orch.execute_multiple([("code-reviewer", f"task {i}") for i in range(60)])
        stats = await emu.stats()
    assert all(r.success for r in results)
    assert [r.output for r in results] == sorted(
        (r.output for r in results), key=[r.output for r in results].index
    )
    assert stats["requests"] == 60
    assert stats["max_in_flight"] == 7  # reached, never exceeded


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_transient_faults_are_retried_to_success(project: Path, tmp_path: Path, transport: str) -> None:
    cfg = EmulatorConfig(p500=0.15, p529=0.1, pnull=0.05, pmalformed=0.05, seed=3)
    async with EmulatorServer(cfg) as emu:
        # The canary is random per request and the emulator draws faults from the body: without it the
        # bodies, and so the faults, are fixed by the seed and this test is deterministic.
        async with make(project, tmp_path, emu.base_url, transport, max_concurrent=10, canary=False) as orch:
            results = await orch.execute_multiple([("doc-writer", f"doc {i}") for i in range(40)])
        stats = await emu.stats()
    assert all(r.success for r in results), [r.errors for r in results if not r.success]
    retried = [r for r in results if r.metadata["attempts"] > 1]
    assert retried, "with 35% faults some task must have needed a retry"
    codes = {c for r in retried for c in r.metadata["attempt_errors"]}
    assert codes <= {"server_error", "overloaded", "empty_response", "malformed_response"}
    assert stats["requests"] == sum(r.metadata["attempts"] for r in results)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("cfg", "code"),
    [
        (EmulatorConfig(pnull=1.0), "empty_response"),
        (EmulatorConfig(pmalformed=1.0), "malformed_response"),
        (EmulatorConfig(p529=1.0), "overloaded"),
        (EmulatorConfig(api_key="the-right-key-000"), "authentication_error"),
    ],
)
async def test_permanent_faults_become_failed_results(
    project: Path, tmp_path: Path, transport: str, cfg: EmulatorConfig, code: str
) -> None:
    async with EmulatorServer(cfg) as emu:
        async with make(project, tmp_path, emu.base_url, transport, max_attempts=2) as orch:
            result = await orch.execute_agent("code-reviewer", "x")
    assert not result.success and result.error_code == code
    expected_attempts = 1 if code == "authentication_error" else 2
    assert result.metadata["attempts"] == expected_attempts
    assert "Q" * 32 not in " ".join(result.errors)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_attempt_timeout_inside_deadline(project: Path, tmp_path: Path, transport: str) -> None:
    async with EmulatorServer(EmulatorConfig(phang=1.0, hang_seconds=10)) as emu:
        async with make(
            project, tmp_path, emu.base_url, transport, timeout_seconds=0.3, max_attempts=2
        ) as orch:
            result = await orch.execute_agent("code-reviewer", "x")
    assert result.error_code == "timeout"
    assert result.metadata["attempt_errors"] == ["timeout", "timeout"]


async def test_max_tokens_and_usage(project: Path, tmp_path: Path) -> None:
    async with EmulatorServer(EmulatorConfig()) as emu:
        async with make(project, tmp_path, emu.base_url, "native") as orch:
            result = await orch.execute_agent("code-reviewer", "write a lot", max_tokens=2)
    assert result.success and result.metadata["stop_reason"] == "max_tokens"
    assert any(w.startswith("max_tokens") for w in result.metadata["warnings"])
    assert result.metadata["output_tokens"] == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_response_cache_and_single_flight(
    project: Path, tmp_path: Path, transport: str, cache_secret: str
) -> None:
    tasks = [("code-reviewer", f"same {i % 5}") for i in range(40)]
    async with EmulatorServer(EmulatorConfig(latency_ms=20)) as emu:
        async with make(
            project,
            tmp_path,
            emu.base_url,
            transport,
            enable_cache=True,
            cache_secret=cache_secret,
            max_concurrent=20,
        ) as orch:
            first = await orch.execute_multiple(tasks)
        async with make(
            project, tmp_path, emu.base_url, transport, enable_cache=True, cache_secret=cache_secret
        ) as orch:
            second = await orch.execute_multiple(tasks)
        stats = await emu.stats()
    assert stats["requests"] == 5
    assert all(r.success for r in first + second)
    assert sum(r.metadata["coalesced"] or r.metadata["cached"] for r in first) == 35
    assert all(r.metadata["cached"] and r.metadata["cost_usd"] == 0.0 for r in second)
    assert {r.output for r in first} == {r.output for r in second}


async def test_prompt_cache_warm_up_pays_one_write(project: Path, tmp_path: Path) -> None:
    async with EmulatorServer(EmulatorConfig(latency_ms=20)) as emu:
        async with make(project, tmp_path, emu.base_url, "native", max_concurrent=20) as orch:
            results = await orch.execute_multiple([("code-reviewer", f"t{i}") for i in range(30)])
        stats = await emu.stats()
    writes = sum(1 for r in results if r.metadata["cache_creation_input_tokens"] > 0)
    reads = sum(1 for r in results if r.metadata["cache_read_input_tokens"] > 0)
    assert (writes, reads) == (1, 29)
    assert stats["prompt_cache"]["writes"] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_billed_empty_replies_count_against_the_budget(
    project: Path, tmp_path: Path, transport: str
) -> None:
    # Every reply is a 200 with null content and real usage: each attempt is billed though none succeeds. The
    # budget (inside the retry layer) charges each one and refuses the attempt that could pass it.
    from claude_force.models import Usage
    from claude_force.tracking.prices import PriceTable

    async def no_wait(seconds: float) -> None:
        return None  # the backoff between attempts is not under test

    budget = 0.01
    async with EmulatorServer(EmulatorConfig(pnull=1.0)) as emu:
        async with make(
            project,
            tmp_path,
            emu.base_url,
            transport,
            max_attempts=8,
            max_tokens=64,
            budget_usd=budget,
            prompt_cache_ttl="off",
            sleep=no_wait,
        ) as orch:
            first = await orch.execute_agent("code-reviewer", "x")
            stats = await emu.stats()
            second = await orch.execute_agent("code-reviewer", "y")
        after = await emu.stats()
    assert not first.success and first.error_code == "budget_exceeded"
    sent = stats["requests"]
    assert 1 < sent < 8
    assert first.metadata["attempt_errors"] == ["empty_response"] * sent + ["budget_exceeded"]
    billed = PriceTable.load().cost(
        first.metadata["model"],
        Usage(input_tokens=stats["input_tokens"], output_tokens=stats["output_tokens"]),
    )
    assert billed is not None and billed <= budget
    assert first.metadata["cost_usd"] == pytest.approx(billed)  # what the failed attempts were billed
    # the budget remembers: the next task is refused without a request
    assert not second.success and second.error_code == "budget_exceeded"
    assert after["requests"] == sent


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_result_costs_what_its_billed_attempts_cost(
    project: Path, tmp_path: Path, transport: str
) -> None:
    # No budget: a task whose every reply is a billed empty one fails, and its cost_usd is still what the
    # attempts were billed (the usage each 200 carried), not 0.
    from claude_force.models import Usage
    from claude_force.tracking.prices import PriceTable

    async def no_wait(seconds: float) -> None:
        return None

    async with EmulatorServer(EmulatorConfig(pnull=1.0)) as emu:
        async with make(
            project, tmp_path, emu.base_url, transport, max_attempts=3, prompt_cache_ttl="off", sleep=no_wait
        ) as orch:
            result = await orch.execute_agent("code-reviewer", "x")
        stats = await emu.stats()
    assert not result.success and result.error_code == "empty_response" and stats["requests"] == 3
    billed = PriceTable.load().cost(
        result.metadata["model"],
        Usage(input_tokens=stats["input_tokens"], output_tokens=stats["output_tokens"]),
    )
    assert billed is not None and billed > 0
    assert result.metadata["cost_usd"] == pytest.approx(billed)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_close_stops_calls_in_flight_and_sends_nothing_after(
    project: Path, tmp_path: Path, transport: str
) -> None:
    # Response cache off, so no single-flight task owns the calls: the transport closing under them is what
    # ends them, and the retry layer must not try again (it used to, through a session it reopened).
    arrived, release = 0, asyncio.Event()
    all_in = asyncio.Event()

    async def hang(seconds: float) -> None:  # the emulator's sleep: hangs park here until released
        nonlocal arrived
        if seconds < 1:
            return
        arrived += 1
        if arrived == 10:
            all_in.set()
        await release.wait()

    async with EmulatorServer(EmulatorConfig(phang=1.0, hang_seconds=60), sleep=hang) as emu:
        orch = make(project, tmp_path, emu.base_url, transport, max_concurrent=10, prompt_cache_ttl="off")
        batch = asyncio.ensure_future(orch.execute_multiple([("code-reviewer", f"t{i}") for i in range(10)]))
        await asyncio.wait_for(all_in.wait(), 30)
        await orch.close()
        results = await asyncio.wait_for(batch, 30)  # a guard against a hang, not a timing check
        release.set()
        stats = await emu.stats()
    assert [r.error_code for r in results] == ["closed"] * 10, [r.errors for r in results]
    assert stats["requests"] == 10  # not one attempt after close()
    if transport == "native":
        assert ", idle)" in repr(orch)  # no session was opened again after close()
