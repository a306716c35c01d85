"""One call's arguments are checked before any work: each bad one is a typed ``InputError`` (a failed result with
code ``invalid_input``), never a request the API would refuse, an ``internal_error``, or a negative budget
reservation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from claude_force import AsyncAgentOrchestrator
from claude_force.layers.budget import BudgetLayer
from claude_force.models import Request
from claude_force.tracking.prices import PriceTable
from test_fanout import Recording

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_tokens": -10_000_000}, "max_tokens must be an integer from 1"),
        ({"max_tokens": 0}, "max_tokens must be an integer from 1"),
        ({"max_tokens": 2**31}, "max_tokens must be an integer from 1"),
        ({"max_tokens": "5"}, "max_tokens must be an integer"),
        ({"max_tokens": 5.5}, "max_tokens must be an integer"),
        ({"max_tokens": True}, "max_tokens must be an integer"),
        ({"model": 5}, "model must be a non-empty string"),
        ({"model": ""}, "model must be a non-empty string"),
        ({"previous_output": 5}, "previous_output must be a string"),
        ({"previous_output": "x\ud800"}, "previous_output is not valid text: a lone surrogate at index 1"),
        ({"temperature": object()}, "generation parameters must be JSON values"),
    ],
)
async def test_a_bad_argument_is_invalid_input_and_makes_no_call(
    project: Path, tmp_path: Path, kwargs: dict[str, Any], fragment: str
) -> None:
    transport = Recording()
    async with AsyncAgentOrchestrator(
        project, transport=transport, enable_cache=False, metrics_dir=tmp_path / "m", canary=False
    ) as o:
        result = await o.execute_agent("code-reviewer", "review this", **kwargs)
    assert not result.success and result.error_code == "invalid_input", result
    assert fragment in result.errors[0]
    assert transport.requests == []


async def test_a_task_with_a_lone_surrogate_is_invalid_input(project: Path, tmp_path: Path) -> None:
    transport = Recording()
    async with AsyncAgentOrchestrator(
        project, transport=transport, enable_cache=False, metrics_dir=tmp_path / "m", canary=False
    ) as o:
        results = await o.execute_multiple([("code-reviewer", "fine"), ("code-reviewer", "bad \udc80 text")])
    assert [r.error_code for r in results] == [None, "invalid_input"]
    assert "task is not valid text: a lone surrogate at index 4" in results[1].errors[0]
    assert [r.task for r in transport.requests] == ["fine"]


def test_a_hand_built_request_never_reserves_less_than_one_output_token() -> None:
    prices = PriceTable.load()
    layer = BudgetLayer(budget_usd=1.0, prices=prices)
    model = prices.models()[0]
    base = {"agent_name": "a", "model": model, "system": "s", "messages": [{"role": "user", "content": "t"}]}
    negative = layer.worst_case(Request(**base, max_tokens=-10_000_000))
    one = layer.worst_case(Request(**base, max_tokens=1))
    assert negative is not None and negative == one and negative > 0
