"""``run batch`` files: what ``--resume`` keeps of an output file, and input files that cannot be read twice."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import orjson
import pytest

from claude_force.batch import check_output, completed_ids, validate_input
from claude_force.errors import BatchInputError


def line(task_id: str) -> bytes:
    return orjson.dumps({"id": task_id, "success": True}) + b"\n"


def test_a_bad_middle_line_is_skipped_not_cut(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out.jsonl"
    data = line("a") + b"{torn-then-continued\n" + line("c") + b"\n" + b"[1, 2]\n" + line("e")
    out.write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="claude_force.batch"):
        assert completed_ids(out) == {"a", "c", "e"}
    assert out.read_bytes() == data  # every good line after the bad ones is still there
    assert "skipped 2 unreadable line(s)" in caplog.text


def test_only_a_torn_last_line_is_cut(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(line("a") + b"{oops\n" + line("c") + b'{"id": "d", "succ')
    assert completed_ids(out) == {"a", "c"}
    assert out.read_bytes() == line("a") + b"{oops\n" + line("c")
    # A last line that is a whole result and lacks only its newline is kept (no prefix of one JSON object is a
    # whole JSON object, so it was written in full), and its newline added: it is not paid for again.
    out.write_bytes(line("a") + line("b").rstrip(b"\n"))
    assert completed_ids(out) == {"a", "b"} and out.read_bytes() == line("a") + line("b")
    # Trailing blanks without a newline (found by the fuzz test) are cut too, so the next result starts a line.
    for tail in (b" ", b"\t \r"):
        out.write_bytes(line("a") + tail)
        assert completed_ids(out) == {"a"} and out.read_bytes() == line("a")


def test_missing_output_means_nothing_done(tmp_path: Path) -> None:
    assert completed_ids(tmp_path / "none.jsonl") == frozenset()


def test_output_that_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(BatchInputError, match="cannot open output file"):
        completed_ids(tmp_path / "dir.jsonl")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_input_must_be_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "in.jsonl")  # read twice, so refused up front (it is never opened: nothing blocks)
    outcome: list[BaseException] = []

    def check() -> None:
        try:
            validate_input(tmp_path / "in.jsonl")
        except BaseException as exc:
            outcome.append(exc)

    # A regression would block in open() waiting for a writer: the join bounds that failure.
    worker = threading.Thread(target=check, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "validate_input blocked on a FIFO"
    assert len(outcome) == 1 and isinstance(outcome[0], BatchInputError)
    assert "regular file" in str(outcome[0])
    (tmp_path / "f").write_text("")
    with pytest.raises(BatchInputError, match="cannot read input file"):
        validate_input(tmp_path / "f" / "in.jsonl")


def test_an_output_that_would_lose_data_is_refused(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_bytes(b'{"id": "a", "agent": "x", "task": "t"}\n')
    with pytest.raises(BatchInputError, match="is the input file"):
        check_output(tasks, tasks, resume=False)
    with pytest.raises(BatchInputError, match="is the input file"):
        check_output(tasks, tasks, resume=True)
    (tmp_path / "link.jsonl").symlink_to(tasks)  # the same file by another name
    with pytest.raises(BatchInputError, match="is the input file"):
        check_output(tasks, tmp_path / "link.jsonl", resume=True)
    done = tmp_path / "done.jsonl"
    done.write_bytes(line("a"))
    with pytest.raises(
        BatchInputError, match="already holds results, and writing to it would empty it; pass --resume"
    ):
        check_output(tasks, done, resume=False)
    assert done.read_bytes() == line("a")
    check_output(tasks, done, resume=True)  # continuing it is what --resume is for
    (tmp_path / "empty.jsonl").write_bytes(b"")
    check_output(tasks, tmp_path / "empty.jsonl", resume=False)
    check_output(tasks, tmp_path / "new.jsonl", resume=False)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_results_can_go_to_a_pipe(tmp_path: Path) -> None:
    from claude_force.batch import ResultWriter
    from claude_force.models import AgentResult

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    check_output(tmp_path / "in.jsonl", fifo, resume=False)  # a pipe holds no results to protect
    writer = ResultWriter(fifo, append=False)
    writer.write("a", AgentResult(agent_name="x", success=True, output="ok"))
    writer.close()  # fsync of a pipe is EINVAL: it must not be tried
    reader.join(30)
    assert orjson.loads(got[0])["id"] == "a"
