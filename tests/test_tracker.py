from __future__ import annotations

import itertools
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from claude_force.models import AgentResult
from claude_force.tracking import PerformanceTracker, Record, hooks, load_records
from claude_force.tracking.aggregate import OTHER
from claude_force.tracking.sink import JsonlSink, record_from_dict, sink_files


def fake_clock(start: float = 1_700_000_000.0) -> Any:
    counter = itertools.count()
    return lambda: start + next(counter)


def result(agent: str = "reviewer", *, ok: bool = True, **meta: Any) -> AgentResult:
    metadata: dict[str, Any] = {
        "model": "claude-sonnet-5-5",
        "latency_ms": 120.0,
        "attempts": 1,
        "input_tokens": 100,
        "output_tokens": 40,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cost_usd": 0.0006,
        "cached": False,
        "coalesced": False,
    }
    metadata.update(meta)
    return AgentResult(
        agent_name=agent,
        success=ok,
        output="TOP-SECRET-OUTPUT" if ok else "",
        errors=[] if ok else ["boom"],
        error_code=None if ok else "rate_limited",
        metadata=metadata,
    )


def rec(agent: str = "a", model: str = "m", latency: float = 10.0, **kw: Any) -> Record:
    fields: dict[str, Any] = {
        "ts": 1.0,
        "agent": agent,
        "model": model,
        "success": True,
        "error_code": None,
        "latency_ms": latency,
        "attempts": 1,
        "input_tokens": 1,
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cost_usd": 0.001,
        "cached": False,
        "coalesced": False,
        "workflow": None,
        "position": None,
    }
    fields.update(kw)
    return Record(**fields)


# --- aggregation -------------------------------------------------------------------------------------------


def test_empty_tracker_returns_zeros_and_none_percentiles() -> None:
    t = PerformanceTracker()
    s = t.summary()
    assert s.total.count == 0 and s.total.cost_usd == 0.0
    assert s.total.success_rate is None
    assert s.total.latency.p50_ms is None and s.total.latency.p99_ms is None
    assert s.first_ts is None
    assert t.by_agent() == [] and t.by_model() == []
    c = t.costs()
    assert c.total_usd == 0.0 and c.by_agent == () and c.unpriced == 0


def test_record_reads_result_metadata() -> None:
    t = PerformanceTracker(clock=fake_clock())
    t.record(
        result("a", latency_ms=100.0, cache_read_input_tokens=300, cached=True), workflow="wf", position=0
    )
    t.record(result("a", latency_ms=200.0, coalesced=True))
    t.record(result("b", ok=False, latency_ms=50.0, cost_usd=None, attempts=3))
    s = t.summary()
    assert (s.total.count, s.total.successes, s.total.failures) == (3, 2, 1)
    assert s.total.attempts == 5
    assert s.total.cached == 1 and s.total.coalesced == 1
    assert s.total.cost_usd == pytest.approx(0.0012)
    assert s.total.unpriced == 1
    assert s.total.errors == (("rate_limited", 1),)
    assert s.total.prompt_cache_read_share == pytest.approx(300 / 600)
    assert (s.agents, s.models) == (2, 1)
    assert s.first_ts == 1_700_000_000.0 and s.last_ts == 1_700_000_002.0
    a, b = t.by_agent()
    assert (a.name, a.count, a.success_rate) == ("a", 2, 1.0)
    assert a.latency.p50_ms == pytest.approx(100.0, rel=0.01)
    assert a.latency.max_ms == 200.0
    assert (b.name, b.failures, b.success_rate) == ("b", 1, 0.0)
    first = t.recent()[0]
    assert (first.workflow, first.position, first.cache_read_input_tokens) == ("wf", 0, 300)


def test_malformed_metadata_never_raises() -> None:
    t = PerformanceTracker()
    t.record(
        AgentResult(
            agent_name="x",
            success=True,
            metadata={"latency_ms": "nan", "attempts": "many", "input_tokens": -5, "cost_usd": "0.5"},
        )
    )
    t.record(AgentResult(agent_name="y", success=True))  # no metadata at all
    t.record(AgentResult(agent_name="z" * 5_000, success=True))
    s = t.summary().total
    assert s.count == 3 and s.input_tokens == 0 and s.attempts == 0
    assert len(t.recent()[-1].agent) == 200
    assert s.cost_usd == pytest.approx(0.5)
    assert t.recent()[0].latency_ms == 0.0


def test_costs_sorted_by_spend() -> None:
    t = PerformanceTracker()
    t.add(rec("cheap", "m1", cost_usd=0.01))
    t.add(rec("pricey", "m2", cost_usd=0.50))
    t.add(rec("pricey", "m2", cost_usd=None))
    c = t.costs()
    assert [line.name for line in c.by_agent] == ["pricey", "cheap"]
    assert c.by_agent[0].unpriced == 1 and c.by_agent[0].count == 2
    assert c.total_usd == pytest.approx(0.51)
    assert [line.name for line in c.by_model] == ["m2", "m1"]


def test_memory_is_bounded_over_100k_records() -> None:
    t = PerformanceTracker(ring_size=1_000)
    agents, models = ("a", "b", "c"), ("m1", "m2")
    for i in range(100_000):
        t.add(rec(agents[i % 3], models[i % 2], latency=1.0 + (i % 5_000)))
    s = t.summary()
    assert s.total.count == 100_000
    assert s.ring_len == 1_000 and len(t.recent()) == 1_000
    assert (s.agents, s.models) == (3, 2)
    # Aggregates are O(agents + models): each histogram holds at most one counter per 2 % range of latency.
    assert t.latency_histogram().bucket_count < 500
    assert t.recent(2)[-1].latency_ms == 1.0 + (99_999 % 5_000)


def test_distinct_keys_are_capped() -> None:
    t = PerformanceTracker(max_keys=4)
    for i in range(10):
        t.add(rec(f"agent-{i}", f"model-{i}"))
    names = [g.name for g in t.by_agent()]
    assert len(names) == 4 and OTHER in names
    assert sum(g.count for g in t.by_agent()) == 10


def test_observers_are_called_and_a_broken_one_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Record] = []
    calls = {"bad": 0}

    def bad(r: Record) -> None:
        calls["bad"] += 1
        raise RuntimeError("exporter bug")

    t = PerformanceTracker(observers=[seen.append, bad])
    with caplog.at_level(logging.WARNING, logger="claude_force.tracking.tracker"):
        t.record(result())
        t.record(result())
    assert len(seen) == 2 and calls["bad"] == 1
    assert len(caplog.records) == 1


def test_validation_and_repr() -> None:
    with pytest.raises(ValueError, match="ring_size"):
        PerformanceTracker(ring_size=0)
    t = PerformanceTracker()
    t.record(result())
    assert "records=1" in repr(t)
    assert t.recent(0) == []


# --- persistence --------------------------------------------------------------------------------------------


def test_sink_persists_records_without_text(tmp_path: Path) -> None:
    t = PerformanceTracker(sink_dir=tmp_path / "metrics", clock=fake_clock())
    for i in range(10):
        t.record(result(f"agent-{i % 2}"), workflow="bug-fix", position=i)
    t.close()
    raw = (tmp_path / "metrics" / "tasks.jsonl").read_bytes()
    assert b"TOP-SECRET-OUTPUT" not in raw and b"boom" not in raw
    lines = raw.splitlines()
    assert len(lines) == 10
    first = orjson.loads(lines[0])
    assert first["v"] == 1 and first["agent"] == "agent-0" and first["position"] == 0
    loaded = list(load_records(tmp_path / "metrics"))
    assert loaded == t.recent()
    assert t.summary().sink_written == 10


async def test_aclose_flushes(tmp_path: Path) -> None:
    t = PerformanceTracker(sink_dir=tmp_path)
    t.record(result())
    await t.aclose()
    assert len(list(load_records(tmp_path))) == 1


def test_rotation_by_size_keeps_order(tmp_path: Path) -> None:
    sink = JsonlSink(directory=tmp_path, rotate_bytes=2_000, keep_files=3, batch_size=1)
    for i in range(40):
        sink.submit(rec(ts=float(i)))
    sink.close()
    names = [p.name for p in sink_files(tmp_path)]
    assert names == ["tasks.3.jsonl", "tasks.2.jsonl", "tasks.1.jsonl", "tasks.jsonl"]
    for p in sink_files(tmp_path):
        assert p.stat().st_size <= 2_000
    ts = [r.ts for r in load_records(tmp_path)]
    assert ts == sorted(ts) and ts[-1] == 39.0
    assert len(ts) < 40  # the oldest file was rotated away


def test_loader_tolerates_truncated_and_malformed_lines(tmp_path: Path) -> None:
    good = orjson.dumps({"v": 1, **rec()._asdict()})
    bad_values = orjson.dumps({**rec()._asdict(), "input_tokens": -1})
    bad_name = orjson.dumps({**rec()._asdict(), "agent": "x" * 500})
    (tmp_path / "tasks.jsonl").write_bytes(
        b"\n".join([good, b"not json", bad_values, b"[1, 2]", bad_name, good, b"", good[:25]])
    )
    assert len(list(load_records(tmp_path))) == 2
    with pytest.raises(FileNotFoundError):
        list(load_records(tmp_path / "missing"))


def test_record_from_dict_defaults_and_types() -> None:
    r = record_from_dict({"ts": 5, "agent": "a", "success": True})
    assert (r.model, r.attempts, r.cost_usd, r.workflow) == ("", 0, None, None)
    with pytest.raises(TypeError):
        record_from_dict({"ts": True, "agent": "a", "success": True})
    with pytest.raises(KeyError):
        record_from_dict({"agent": "a", "success": True})


def test_sink_failure_is_counted_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    t = PerformanceTracker(sink_dir=blocker / "metrics")
    with caplog.at_level(logging.WARNING, logger="claude_force.tracking.sink"):
        for _ in range(3):
            t.record(result())
        t.close()
    sink = t.sink
    assert sink is not None and sink.errors >= 1 and sink.written == 0
    assert len([r for r in caplog.records if "cannot write" in r.getMessage()]) == 1
    assert t.summary().total.count == 3


def test_full_queue_drops_instead_of_blocking(tmp_path: Path) -> None:
    # The writer only wakes for a full batch (never reached) or close(): the queue fills deterministically.
    sink = JsonlSink(directory=tmp_path, queue_size=5, batch_size=1_000, flush_interval=3_600)
    for i in range(12):
        sink.submit(rec(ts=float(i)))
    assert sink.dropped == 7 and sink.pending == 5
    sink.close()
    assert sink.written == 5
    sink.submit(rec())  # after close: dropped, not written
    sink.close()  # idempotent
    assert sink.dropped == 8
    assert [r.ts for r in load_records(tmp_path)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert "closed" in repr(sink)


def test_sink_validates_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rotate_bytes"):
        JsonlSink(directory=tmp_path, rotate_bytes=0)


def test_sink_refuses_to_follow_a_symlinked_file(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("")
    (tmp_path / "tasks.jsonl").symlink_to(target)
    sink = JsonlSink(directory=tmp_path)
    sink.submit(rec())
    sink.close()
    assert sink.errors == 1 and target.read_text() == ""


# --- optional exporters -----------------------------------------------------------------------------------


def test_hooks_import_nothing_optional() -> None:
    code = (
        "import sys, claude_force.tracking, claude_force.tracking.hooks;"
        "print(any(m.startswith(('prometheus_client', 'opentelemetry')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_prometheus_observer_updates_metrics() -> None:
    prom = pytest.importorskip("prometheus_client")
    registry = prom.CollectorRegistry()
    observe = hooks.prometheus_observer(registry=registry)
    assert hooks.prometheus_observer(registry=registry) is observe  # never registers twice
    t = PerformanceTracker(observers=[observe])
    t.record(result("rev", cache_read_input_tokens=7, cost_usd=0.25, latency_ms=1500.0))
    t.record(result("rev", ok=False))
    labels = {"agent": "rev", "model": "claude-sonnet-5-5"}
    assert registry.get_sample_value("claude_force_tasks_total", {**labels, "status": "ok"}) == 1.0
    assert registry.get_sample_value("claude_force_tasks_total", {**labels, "status": "rate_limited"}) == 1.0
    assert registry.get_sample_value("claude_force_tokens_total", {**labels, "kind": "cache_read"}) == 7.0
    assert registry.get_sample_value("claude_force_cost_usd_total", labels) == pytest.approx(0.2506)
    assert registry.get_sample_value("claude_force_task_latency_seconds_count", labels) == 2.0
    # The histogram is cumulative over the default buckets: 1.5 s is above le=1.0 and within le=2.5.
    bucket = "claude_force_task_latency_seconds_bucket"
    in_1s = registry.get_sample_value(bucket, {**labels, "le": "1.0"})
    assert registry.get_sample_value(bucket, {**labels, "le": "2.5"}) == in_1s + 1.0
    assert registry.get_sample_value(bucket, {**labels, "le": "+Inf"}) == 2.0
    assert registry.get_sample_value("claude_force_task_latency_seconds_sum", labels) >= 1.5
    text = prom.generate_latest(registry).decode()
    assert 'claude_force_tasks_total{agent="rev",model="claude-sonnet-5-5",status="ok"} 1.0' in text


def test_prometheus_label_sets_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    prom = pytest.importorskip("prometheus_client")
    monkeypatch.setattr(hooks, "MAX_LABEL_SETS", 3)
    registry = prom.CollectorRegistry()
    t = PerformanceTracker(observers=[hooks.prometheus_observer(registry=registry)])
    for i in range(10):
        t.record(result(f"agent-{i}"))
    families = {m.name: m for m in registry.collect()}
    agents = {s.labels["agent"] for s in families["claude_force_tasks"].samples}
    assert len(agents) == 4 and "other" in agents  # 3 kept, the rest folded into one series
    other = {"agent": "other", "model": "other", "status": "ok"}
    assert registry.get_sample_value("claude_force_tasks_total", other) == 7.0


def test_otel_spans_when_installed() -> None:
    trace = pytest.importorskip("opentelemetry.trace")
    hooks.reset()
    with hooks.task_span("rev", model="m", workflow="wf", position=1) as span:
        assert isinstance(span, trace.Span)
        with hooks.attempt_span("rev", 1) as inner:
            assert isinstance(inner, trace.Span)


def test_hooks_are_noops_without_their_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hide the optional packages (an entry of None makes ``import`` raise ImportError).
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    hooks.reset()
    try:
        assert not hooks.prometheus_available() and not hooks.otel_available()
        observe = hooks.prometheus_observer()
        observe(rec())  # no-op, no error
        with hooks.task_span("a") as span, hooks.attempt_span("a", 2) as inner:
            assert span is None and inner is None
    finally:
        monkeypatch.undo()
        hooks.reset()


def test_a_hand_built_result_with_odd_values_is_still_recorded() -> None:
    from claude_force.tracking import PerformanceTracker

    t = PerformanceTracker()
    odd = AgentResult(agent_name=3, success=False, error_code="unknown_agent", metadata={"model": 5})  # type: ignore[arg-type]
    t.record(odd)
    t.record(
        AgentResult(
            agent_name="a", success=True, metadata={"cost_usd": float("nan"), "latency_ms": float("inf")}
        )
    )
    assert t.summary().total.count == 2
    assert t.costs().total_usd == 0.0  # not nan
