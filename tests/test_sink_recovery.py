"""The sink keeps records through a torn last line, an unencodable record, a slow close and a racing submit."""

from __future__ import annotations

import collections
import fcntl
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from claude_force.models import AgentResult
from claude_force.tracking import PerformanceTracker, Record, load_records
from claude_force.tracking.sink import FILE_NAME, MAX_NAME_CHARS, JsonlSink

LOGGER = "claude_force.tracking.sink"


def rec(i: int, *, agent: str = "a", model: str = "m") -> Record:
    return Record(float(i), agent, model, True, None, 1.0, 1, 1, 1, 0, 0, 0.1, False, False, None, None)


def write(d: Path, ids: range, **kw: Any) -> JsonlSink:
    s = JsonlSink(directory=d, **kw)
    for i in ids:
        s.submit(rec(i))
    s.close()
    return s


def test_record_after_a_torn_last_line_is_kept(tmp_path: Path) -> None:
    write(tmp_path, range(3))
    with (tmp_path / FILE_NAME).open("ab") as fh:  # a crash in the middle of a line
        fh.write(b'{"v":1,"ts":3.0,"agent":"a"')
    s = write(tmp_path, range(4, 7))
    assert s.written == 3
    assert [r.ts for r in load_records(tmp_path)] == [0.0, 1.0, 2.0, 4.0, 5.0, 6.0]
    lines = (tmp_path / FILE_NAME).read_bytes().split(b"\n")
    assert lines[3] == b'{"v":1,"ts":3.0,"agent":"a"'  # the torn line stays one skipped line


def test_one_unencodable_record_costs_only_itself(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lone_surrogate = json.loads('"\\ud800x"')
    s = JsonlSink(directory=tmp_path)  # default batch of 512: all 100 records in one batch
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for i in range(100):
            s.submit(rec(i, model=lone_surrogate if i == 50 else "m"))
        s.close()
    assert (s.written, s.dropped, s.errors) == (99, 1, 0)
    assert [r.ts for r in load_records(tmp_path)] == [float(i) for i in range(100) if i != 50]
    assert any("cannot encode" in r.getMessage() for r in caplog.records)


def test_long_workflow_name_is_cut_to_what_the_loader_accepts(tmp_path: Path) -> None:
    t = PerformanceTracker(sink_dir=tmp_path)
    result = AgentResult(agent_name="a", success=True, output="", errors=[], metadata={"model": "m"})
    t.record(result, workflow="w" * 500, position=0)
    t.close()
    loaded = list(load_records(tmp_path))
    assert [r.workflow for r in loaded] == ["w" * MAX_NAME_CHARS]
    assert t.recent()[0].workflow == "w" * MAX_NAME_CHARS


def test_close_timeout_counts_and_logs_what_is_still_queued(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = JsonlSink(directory=tmp_path, batch_size=10, flush_interval=3_600)
    with (tmp_path / "tasks.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another writer holds the directory: the sink's thread waits
        for i in range(50):
            s.submit(rec(i))
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            s.close(timeout=0.05)
        assert s.pending == 0
        assert s.dropped >= 40  # at most one batch of 10 was taken by the blocked thread
        assert any("unwritten" in r.getMessage() for r in caplog.records)
    thread = s._thread
    assert thread is not None
    thread.join(30)  # the lock is released: the batch in flight completes
    assert not thread.is_alive()
    assert s.written + s.dropped == 50 and s.errors == 0
    assert len(list(load_records(tmp_path))) == s.written


def test_submit_racing_close_is_counted_not_stranded(tmp_path: Path) -> None:
    s = JsonlSink(directory=tmp_path)

    class CloseFirst(collections.deque[Record]):
        """close() runs in full between submit's closed-check and its append (the race, made deterministic)."""

        def append(self, x: Record) -> None:
            if x.ts == 1.0:
                s.close()  # joins the writer thread, which writes record 0
            super().append(x)

    s._queue = CloseFirst()
    s.submit(rec(0))
    s.submit(rec(1))
    assert (s.pending, s.written, s.dropped) == (0, 1, 1)
    assert [r.ts for r in load_records(tmp_path)] == [0.0]
