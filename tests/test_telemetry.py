"""OpenTelemetry: one span per task and one per attempt, through the real pipeline.

opentelemetry-sdk is not a dependency, so a minimal recording TracerProvider written against the public
opentelemetry-api interfaces stands in for an exporter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claude_force import AsyncAgentOrchestrator
from claude_force import errors as E
from claude_force.models import Request, Response, Usage
from claude_force.transports import MockTransport

trace = pytest.importorskip("opentelemetry.trace")

pytestmark = pytest.mark.usefixtures("isolated_env")


class RecordedSpan(trace.NonRecordingSpan):  # type: ignore[misc]
    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        super().__init__(trace.INVALID_SPAN_CONTEXT)
        self.name = name
        self.attributes = dict(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value


class RecordingTracer(trace.Tracer):  # type: ignore[misc]
    def __init__(self, spans: list[RecordedSpan]) -> None:
        self.spans = spans

    def start_span(self, name: str, *args: Any, attributes: Any = None, **kwargs: Any) -> RecordedSpan:
        span = RecordedSpan(name, attributes or {})
        self.spans.append(span)
        return span

    @contextlib.contextmanager
    def start_as_current_span(
        self, name: str, *args: Any, attributes: Any = None, **kwargs: Any
    ) -> Iterator[RecordedSpan]:
        yield self.start_span(name, attributes=attributes)


class RecordingProvider(trace.TracerProvider):  # type: ignore[misc]
    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []

    def get_tracer(self, *args: Any, **kwargs: Any) -> RecordingTracer:
        return RecordingTracer(self.spans)


PROVIDER = RecordingProvider()


@pytest.fixture
def spans() -> Iterator[list[RecordedSpan]]:
    trace.set_tracer_provider(PROVIDER)  # once per process; later calls are ignored by the API
    PROVIDER.spans.clear()
    yield PROVIDER.spans
    PROVIDER.spans.clear()


async def test_one_span_per_task_and_per_attempt(
    project: Path, tmp_path: Path, spans: list[RecordedSpan]
) -> None:
    calls = 0

    def flaky(request: Request) -> Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise E.ServerError("api_error: boom", status=500)
        return Response(text="ok", model=request.model, usage=Usage(1, 1))

    async with AsyncAgentOrchestrator(
        project,
        transport=MockTransport(flaky),
        enable_cache=False,
        metrics_dir=tmp_path / "m",
        max_attempts=3,
        sleep=_no_sleep,  # the retry backoff is not what this test is about
    ) as orch:
        result = await orch.execute_agent("code-reviewer", "x")
    assert result.success and result.metadata["attempts"] == 2
    names = [s.name for s in spans]
    assert names.count("claude_force.task") == 1 and names.count("claude_force.attempt") == 2
    task = next(s for s in spans if s.name == "claude_force.task")
    assert (
        task.attributes["claude_force.agent"] == "code-reviewer"
        and task.attributes["claude_force.attempts"] == 2
    )
    failed_attempt = next(s for s in spans if s.name == "claude_force.attempt")
    assert failed_attempt.attributes["claude_force.error_code"] == "server_error"
    assert all(v != "x" for s in spans for v in s.attributes.values())  # no task text in spans


async def _no_sleep(seconds: float) -> None:
    return None


async def test_telemetry_off_adds_no_span_layers(
    project: Path, tmp_path: Path, spans: list[RecordedSpan]
) -> None:
    async with AsyncAgentOrchestrator(
        project, transport=MockTransport(), enable_cache=False, metrics_dir=tmp_path / "m", telemetry=False
    ) as orch:
        await orch.execute_agent("code-reviewer", "x")
    assert spans == []
