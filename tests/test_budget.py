from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from claude_force.errors import (
    APIConnectionError,
    APITimeoutError,
    BudgetExceeded,
    EmptyResponse,
    MalformedResponse,
    Overloaded,
    RateLimited,
    ResponseTooLarge,
)
from claude_force.layers.base import Handler, compose
from claude_force.layers.budget import BudgetLayer
from claude_force.layers.retry import RetryLayer, RetryPolicy
from claude_force.models import Request, Response, Usage
from claude_force.tracking.prices import PriceTable

MODEL = "claude-sonnet-4-5"  # $3 / $15 per MTok
SYSTEM = "s" * 3_998  # with the 2-char task: 4,000 chars -> estimated 1,000 input tokens
MAX_TOKENS = 100
# Worst case: 1,000 x $3 + 100 x $15 per MTok = $0.0045.
WORST = 0.0045


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load()


def request(model: str = MODEL, ttl: str | None = None) -> Request:
    return Request(
        agent_name="a",
        model=model,
        system=SYSTEM,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=MAX_TOKENS,
        prompt_cache_ttl=ttl,
    )


def response(usage: Usage) -> Response:
    return Response(text="ok", model=MODEL, usage=usage)


BILLED = Usage(input_tokens=1_000, output_tokens=50)  # 1,000 x $3 + 50 x $15 per MTok
BILLED_USD = 0.00375


def sent_then(exc: BaseException, calls: list[Request] | None = None) -> Handler:
    """A next step that fails after the request may have reached the API (it sets the flag, as transports do)."""

    async def call_next(req: Request) -> Response:
        if calls is not None:
            calls.append(req)
        req.context.attempt_sent = True
        raise exc

    return call_next


def test_worst_case_reservation(prices: PriceTable) -> None:
    layer = BudgetLayer(budget_usd=1.0, prices=prices, input_margin=1.0)
    assert request().estimated_input_tokens() == 1_000
    assert layer.worst_case(request()) == pytest.approx(WORST)
    # A cache write bills input at 1.25x (5m) or 2x (1h): the reservation covers it.
    assert layer.worst_case(request(ttl="5m")) == pytest.approx(1_000 * 3.75e-6 + 100 * 15e-6)
    assert layer.worst_case(request(ttl="1h")) == pytest.approx(1_000 * 6e-6 + 100 * 15e-6)
    margin = BudgetLayer(budget_usd=1.0, prices=prices, input_margin=2.0)
    assert margin.worst_case(request()) == pytest.approx(2_000 * 3e-6 + 100 * 15e-6)
    # The default margin covers tokenizers that count ~30% more tokens than 4 characters per token.
    default = BudgetLayer(budget_usd=1.0, prices=prices)
    assert default.worst_case(request()) == pytest.approx(1_500 * 3e-6 + 100 * 15e-6)


async def test_reconciles_to_actual_cost(prices: PriceTable) -> None:
    layer = BudgetLayer(budget_usd=1.0, prices=prices, input_margin=1.0)
    seen: list[float] = []

    async def call_next(req: Request) -> Response:
        seen.append(layer.reserved)
        return response(Usage(input_tokens=500, output_tokens=10, cache_read_input_tokens=1_000))

    req = request()
    await layer(req, call_next)
    actual = (500 * 3 + 10 * 15 + 1_000 * 0.3) * 1e-6
    assert seen == [pytest.approx(WORST)]
    assert layer.reserved == 0.0
    assert layer.spent == pytest.approx(actual)
    assert layer.remaining == pytest.approx(1.0 - actual)


async def test_refuses_without_calling(prices: PriceTable) -> None:
    layer = BudgetLayer(budget_usd=WORST * 0.99, prices=prices, input_margin=1.0)
    calls = 0

    async def call_next(req: Request) -> Response:
        nonlocal calls
        calls += 1
        return response(Usage(1, 1))

    with pytest.raises(BudgetExceeded, match="budget exhausted") as info:
        await layer(request(), call_next)
    assert info.value.code == "budget_exceeded"
    assert calls == 0 and layer.refused == 1 and layer.spent == 0.0


async def test_unknown_model_is_refused_with_a_clear_message(prices: PriceTable) -> None:
    layer = BudgetLayer(budget_usd=100.0, prices=prices, input_margin=1.0)

    async def call_next(req: Request) -> Response:
        raise AssertionError("must not be called")

    with pytest.raises(BudgetExceeded, match=r"no price for model mystery-model.*orchestrator\.prices"):
        await layer(request(model="mystery-model"), call_next)


async def test_error_and_cancellation_release_the_reservation(prices: PriceTable) -> None:
    layer = BudgetLayer(budget_usd=1.0, prices=prices, input_margin=1.0)

    async def failing(req: Request) -> Response:
        raise Overloaded("busy", status=529)

    with pytest.raises(Overloaded):
        await layer(request(), failing)
    assert layer.reserved == 0.0 and layer.spent == 0.0

    gate, entered = asyncio.Event(), asyncio.Event()

    async def hanging(req: Request) -> Response:
        entered.set()
        await gate.wait()
        raise AssertionError("unreachable")

    task = asyncio.ensure_future(layer(request(), hanging))
    await entered.wait()  # the layer has reserved and called inward
    assert layer.reserved == pytest.approx(WORST)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert layer.reserved == 0.0 and layer.remaining == 1.0


async def test_200_concurrent_tasks_never_overspend(prices: PriceTable) -> None:
    # All 200 arrive before any finishes: exactly floor(budget / worst) = 50 may run.
    budget = WORST * 50.5
    layer = BudgetLayer(budget_usd=budget, prices=prices, input_margin=1.0)
    in_flight = peak = 0

    async def call_next(req: Request) -> Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(3):
            await asyncio.sleep(0)
        in_flight -= 1
        return response(Usage(input_tokens=1_000, output_tokens=MAX_TOKENS))  # costs exactly the worst case

    results = await asyncio.gather(*(layer(request(), call_next) for _ in range(200)), return_exceptions=True)
    ok = [r for r in results if isinstance(r, Response)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(ok) == 50 and len(refused) == 150 and peak == 50
    assert layer.spent <= budget
    assert layer.spent == pytest.approx(50 * WORST)
    assert layer.reserved == 0.0


async def test_staggered_arrivals_with_cheaper_calls_stay_within_budget(prices: PriceTable) -> None:
    # Real costs below the reservation free budget for later arrivals; spent must still never pass the budget.
    rng = random.Random(42)
    budget = WORST * 50
    layer = BudgetLayer(budget_usd=budget, prices=prices, input_margin=1.0)
    costs: list[float] = []

    async def call_next(req: Request) -> Response:
        for _ in range(rng.randint(0, 5)):
            await asyncio.sleep(0)
        usage = Usage(input_tokens=rng.randint(500, 1_000), output_tokens=rng.randint(10, MAX_TOKENS))
        cost = prices.cost(MODEL, usage)
        assert cost is not None
        costs.append(cost)
        return response(usage)

    async def task() -> Response:
        for _ in range(rng.randint(0, 40)):
            await asyncio.sleep(0)
        assert layer.spent + layer.reserved <= budget + 1e-12
        return await layer(request(), call_next)

    results = await asyncio.gather(*(task() for _ in range(200)), return_exceptions=True)
    ok = sum(isinstance(r, Response) for r in results)
    assert all(isinstance(r, (Response, BudgetExceeded)) for r in results)
    assert 50 <= ok < 200, ok
    assert layer.spent <= budget
    assert layer.spent == pytest.approx(sum(costs))
    assert layer.reserved == 0.0
    assert layer.refused == 200 - ok


def test_validation_and_repr(prices: PriceTable) -> None:
    with pytest.raises(ValueError, match="budget_usd"):
        BudgetLayer(budget_usd=-1.0, prices=prices)
    with pytest.raises(ValueError, match="budget_usd"):
        BudgetLayer(budget_usd=float("nan"), prices=prices)
    with pytest.raises(ValueError, match="input_margin"):
        BudgetLayer(budget_usd=1.0, prices=prices, input_margin=0.5)
    assert "remaining=$2.0000" in repr(BudgetLayer(budget_usd=2.0, prices=prices))


async def test_underestimated_call_is_charged_in_full_and_warned(
    prices: PriceTable, caplog: pytest.LogCaptureFixture
) -> None:
    layer = BudgetLayer(budget_usd=1.0, prices=prices)

    async def call_next(req: Request) -> Response:
        return response(Usage(input_tokens=3_000, output_tokens=MAX_TOKENS))  # 3x the estimate

    with caplog.at_level("WARNING", logger="claude_force.layers.budget"):
        await layer(request(), call_next)
        await layer(request(), call_next)
    assert layer.spent == pytest.approx(2 * (3_000 * 3 + 100 * 15) * 1e-6)
    assert len(caplog.records) == 1 and "input_margin" in caplog.records[0].getMessage()


@pytest.mark.integration
async def test_prompt_cache_accounting_against_the_emulator(prices: PriceTable) -> None:
    # Real loopback HTTP to the in-process emulator: the first call writes the prompt cache, the next ones read it.
    aiohttp = pytest.importorskip("aiohttp")
    from claude_force.emulator import EmulatorConfig, EmulatorServer
    from claude_force.transports.base import parse_message

    layer = BudgetLayer(budget_usd=1.0, prices=prices)
    async with EmulatorServer(EmulatorConfig(seed=3)) as emu, aiohttp.ClientSession() as http:

        async def call_next(req: Request) -> Response:
            headers = {
                "x-api-key": "test-key",
                "anthropic-version": "2023-06-01",
                "content-type": "application/json",
            }
            async with http.post(
                f"{emu.base_url}/v1/messages", data=req.body_bytes(), headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()
                return parse_message(await resp.json())

        def cached_request(task: str) -> Request:
            return Request(
                agent_name="a",
                model="claude-sonnet-5-5",
                system="d" * 8_000,  # ~2,000 tokens, above the minimum cacheable length
                messages=[{"role": "user", "content": task}],
                max_tokens=64,
                prompt_cache_ttl="5m",
            )

        first, second = cached_request("task one"), cached_request("task two")
        r1 = await layer(first, call_next)
        spent1 = layer.spent
        r2 = await layer(second, call_next)

    assert r1.usage.cache_creation_input_tokens > 1_000 and r1.usage.cache_read_input_tokens == 0
    assert r2.usage.cache_read_input_tokens == r1.usage.cache_creation_input_tokens
    # Sonnet 5.5: $2 input, write 1.25x, read 0.05x, $10 output (per MTok).
    expected1 = (
        r1.usage.input_tokens * 2 + r1.usage.cache_creation_input_tokens * 2.5 + r1.usage.output_tokens * 10
    ) * 1e-6
    expected2 = (
        r2.usage.input_tokens * 2 + r2.usage.cache_read_input_tokens * 0.1 + r2.usage.output_tokens * 10
    ) * 1e-6
    assert spent1 == pytest.approx(expected1)
    assert layer.spent - spent1 == pytest.approx(expected2)
    assert expected2 < expected1 / 5
    assert layer.spent == pytest.approx(expected1 + expected2) and layer.reserved == 0.0


@pytest.mark.parametrize(
    ("exc", "charged"),
    [
        (Overloaded("busy", status=529), 0.0),  # an error status is not billed
        (RateLimited("slow down", status=429), 0.0),
        (EmptyResponse("content is null", usage=BILLED), BILLED_USD),  # a billed 200: its usage
        (MalformedResponse("text is not a string", usage=BILLED), BILLED_USD),
        (EmptyResponse("content is null"), WORST),  # billed, usage unreadable: the reservation
        (MalformedResponse("truncated body"), WORST),
        (ResponseTooLarge("too big"), WORST),
        (APITimeoutError("timed out"), WORST),  # may have been billed: the reservation
        (APIConnectionError("reset by peer"), WORST),
    ],
)
async def test_a_failed_attempt_is_charged_what_the_api_may_have_billed(
    prices: PriceTable, exc: Exception, charged: float
) -> None:
    layer = BudgetLayer(budget_usd=1.0, prices=prices, input_margin=1.0)
    req = request()
    with pytest.raises(type(exc)):
        await layer(req, sent_then(exc))
    assert layer.reserved == 0.0
    assert layer.spent == pytest.approx(charged)
    assert layer.failed_billed == (1 if charged else 0)


async def test_an_attempt_that_was_never_sent_is_not_charged(prices: PriceTable) -> None:
    layer = BudgetLayer(budget_usd=1.0, prices=prices, input_margin=1.0)
    req = request()
    req.context.attempt_sent = True  # left over from an earlier attempt: the layer clears it per attempt

    async def refused(r: Request) -> Response:
        raise APIConnectionError("connection refused")  # the transport never marked it sent

    with pytest.raises(APIConnectionError):
        await layer(req, refused)
    assert layer.spent == 0.0 and layer.failed_billed == 0


async def test_a_cancelled_attempt_after_sending_is_charged_its_reservation(prices: PriceTable) -> None:
    layer = BudgetLayer(budget_usd=1.0, prices=prices, input_margin=1.0)
    gate, sent = asyncio.Event(), asyncio.Event()

    async def in_flight(r: Request) -> Response:
        r.context.attempt_sent = True
        sent.set()
        await gate.wait()
        raise AssertionError("unreachable")

    task = asyncio.ensure_future(layer(request(), in_flight))
    await sent.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert layer.reserved == 0.0 and layer.spent == pytest.approx(WORST) and layer.failed_billed == 1


async def test_retried_billed_failures_are_each_charged_and_stop_at_the_budget(prices: PriceTable) -> None:
    # Inside the retry layer every attempt is reserved and settled: billed empty replies of unknown usage
    # use up the budget, and the next attempt is refused instead of sent.
    async def no_wait(seconds: float) -> None:
        return None

    budget = BudgetLayer(budget_usd=WORST * 3.5, prices=prices, input_margin=1.0)
    retry = RetryLayer(policy=RetryPolicy(max_attempts=8), sleep=no_wait)
    calls: list[Request] = []
    handler = compose([retry, budget], sent_then(EmptyResponse("content is null"), calls))
    req = request()
    with pytest.raises(BudgetExceeded):
        await handler(req)
    assert len(calls) == 3
    assert req.context.attempt_errors == ["empty_response"] * 3 + ["budget_exceeded"]
    assert budget.spent == pytest.approx(WORST * 3) and budget.spent <= budget.budget_usd


async def test_a_response_without_usage_is_charged_its_reservation(prices: PriceTable) -> None:
    # Billed, but by how much is unknown: zeros would let the budget be passed unnoticed.
    from claude_force.models import MISSING_USAGE, WARNING_HEADER

    layer = BudgetLayer(budget_usd=1.0, prices=prices, input_margin=1.0)

    async def no_usage(req: Request) -> Response:
        return Response(text="ok", model=MODEL, usage=Usage(), headers={WARNING_HEADER: MISSING_USAGE})

    await layer(request(), no_usage)
    assert layer.spent == pytest.approx(WORST) and layer.reserved == 0.0


async def test_a_failed_attempt_above_its_reservation_is_warned(
    prices: PriceTable, caplog: pytest.LogCaptureFixture
) -> None:
    layer = BudgetLayer(budget_usd=1.0, prices=prices, input_margin=1.0)
    big = Usage(input_tokens=100_000, output_tokens=50)  # far above the 1,000 estimated tokens
    with caplog.at_level("WARNING", logger="claude_force.layers.budget"):
        with pytest.raises(EmptyResponse):
            await layer(request(), sent_then(EmptyResponse("content is null", usage=big)))
    assert layer.spent > WORST
    assert [r.getMessage() for r in caplog.records if "input_margin" in r.getMessage()]


class _SilentTransport:
    """A custom transport (a real one of a user's, not a mock of ours) that never touches ``attempt_sent``."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls = 0

    async def send(self, request: Request, *, timeout: float | None = None) -> Response:
        self.calls += 1
        raise self.exc

    async def aclose(self) -> None:
        return None


@pytest.mark.usefixtures("isolated_env")
@pytest.mark.parametrize(
    ("exc", "charged"),
    [(APITimeoutError("timed out"), True), (Overloaded("overloaded", status=529), False)],
)
async def test_a_custom_transport_that_never_says_is_charged_as_if_it_sent(
    project: Path, tmp_path: Path, prices: PriceTable, exc: BaseException, charged: bool
) -> None:
    """Before, a transport that never set ``attempt_sent`` had every failure treated as unbilled.

    The budget holds one call's worst case and a half: a failure charged its reservation leaves too little for the
    second call, which is refused without reaching the transport; an error status (never billed) leaves it all.
    """
    from claude_force import AsyncAgentOrchestrator

    transport = _SilentTransport(exc)
    options: dict[str, Any] = {"enable_cache": False, "metrics_dir": tmp_path / "m", "max_attempts": 1}
    async with AsyncAgentOrchestrator(project, transport=transport, **options) as probe:
        worst = BudgetLayer(budget_usd=1.0, prices=prices).worst_case(
            probe.build_request("code-reviewer", "review this")
        )
    assert worst is not None
    async with AsyncAgentOrchestrator(
        project, transport=transport, budget_usd=worst * 1.5, **options
    ) as orch:
        first = await orch.execute_agent("code-reviewer", "review this")
        second = await orch.execute_agent("code-reviewer", "review this")
    assert first.error_code == type(exc).code
    if charged:
        assert second.error_code == "budget_exceeded" and transport.calls == 1
    else:
        assert second.error_code == type(exc).code and transport.calls == 2
