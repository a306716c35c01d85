"""Property tests over the public entry points: arbitrary input yields documented errors or failed results only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_force import AsyncAgentOrchestrator
from claude_force.batch import completed_ids, iter_tasks, validate_input
from claude_force.cli.project import write_project
from claude_force.config import load_config
from claude_force.errors import BatchInputError, ClaudeForceError, ConfigError
from claude_force.transports import MockTransport

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@FAST
@given(data=st.binary(max_size=2000))
def test_config_loading_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "claude.json"
    path.write_bytes(data)
    try:
        cfg = load_config(path)
    except ConfigError:
        return
    cfg.validate_all()


@FAST
@given(
    doc=st.dictionaries(st.sampled_from(["agents", "workflows", "orchestrator", "name", "x"]), json_values)
)
def test_config_loading_shapes(tmp_path: Path, doc: dict[str, object]) -> None:
    path = tmp_path / "claude.json"
    path.write_bytes(orjson.dumps(doc))
    try:
        cfg = load_config(path)
        assert all(isinstance(p, str) for p in cfg.validate_all())
    except ConfigError:
        pass


@FAST
@given(lines=st.lists(st.binary(max_size=200) | json_values.map(orjson.dumps), max_size=12))
def test_batch_reader(tmp_path: Path, lines: list[bytes]) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines))
    error: BatchInputError | None = None
    try:
        ids = validate_input(path, max_line_bytes=150)
    except BatchInputError as exc:
        error = exc
    if error is not None:
        assert error.line is None or 1 <= error.line <= max(1, len(lines))
        return
    tasks = list(iter_tasks(path, max_line_bytes=150))
    assert len(tasks) == len(ids) and {t.id for t in tasks} == ids


@FAST
@given(data=st.binary(max_size=500))
def test_resume_reader_never_raises_on_garbage(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(data)
    ids = completed_ids(path)
    assert all(isinstance(i, str) for i in ids)
    assert path.read_bytes() == b"" or path.read_bytes().endswith(b"\n")


@pytest.fixture(scope="module")
def shared_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("fuzzproj"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    agent=st.text(max_size=70) | st.sampled_from(["code-reviewer", "doc-writer"]),
    task=st.text(max_size=3000),
    model=st.none() | st.text(max_size=30),
    max_tokens=st.none() | st.integers(min_value=-5, max_value=10**7),
)
def test_execute_agent_inputs(
    shared_project: Path, tmp_path: Path, agent: str, task: str, model: str | None, max_tokens: int | None
) -> None:
    async def run() -> None:
        async with AsyncAgentOrchestrator(
            shared_project,
            transport=MockTransport(),
            enable_cache=False,
            metrics_dir=tmp_path / "m",
            max_task_chars=2000,
            env={},
        ) as orch:
            result = await orch.execute_agent(agent, task, model=model or None, max_tokens=max_tokens)
            if result.success:
                assert result.error_code is None
            else:
                assert result.error_code and result.errors

    raised: ClaudeForceError | None = None
    try:
        asyncio.run(run())
    except ClaudeForceError as exc:
        raised = exc
    # only construction-time config errors may raise; every task problem is a failed result
    assert raised is None or isinstance(raised, ConfigError)
