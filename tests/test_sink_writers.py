"""Several writers on one metrics directory: no record is lost to interleaved rotations or stale sizes."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

from claude_force.tracking import Record, load_records
from claude_force.tracking.sink import JsonlSink, sink_files

ROTATE = 10_000  # a batch of 16 records is ~4.5 KB: each file holds 20 to 35 records, so ~200 rotations
KEEP = 400  # > 6,000 records / 20: nothing is rotated away, so every record must load back


def rec(agent: str, i: int) -> Record:
    return Record(float(i), agent, "m", True, None, 1.0, 1, 1, 1, 0, 0, 0.1, False, False, None, None)


def sink(d: Path) -> JsonlSink:
    return JsonlSink(directory=d, rotate_bytes=ROTATE, keep_files=KEEP, batch_size=16, flush_interval=0.001)


def assert_all_loaded(d: Path, writers: list[str], n: int) -> None:
    seen = collections.Counter((r.agent, r.ts) for r in load_records(d))
    assert max(seen.values()) == 1  # no duplicates
    per_writer = collections.Counter(agent for agent, _ in seen)
    assert per_writer == {w: n for w in writers}
    files = sink_files(d)
    assert 100 < len(files) <= KEEP  # the writers really did rotate, many times, and kept every file
    for p in files:
        assert p.stat().st_size <= ROTATE  # each writer saw the other's appends (no stale cached size)
        assert p.read_bytes().endswith(b"\n")


def test_two_sinks_in_one_process_lose_nothing(tmp_path: Path) -> None:
    n = 3_000
    sinks = [sink(tmp_path), sink(tmp_path)]
    for i in range(n):
        for w, s in enumerate(sinks):
            s.submit(rec(f"w{w}", i))
    for s in sinks:
        s.close()
    for s in sinks:
        assert (s.written, s.dropped, s.errors) == (n, 0, 0)
    assert_all_loaded(tmp_path, ["w0", "w1"], n)


_CHILD = """
import sys
from pathlib import Path
from claude_force.tracking import Record
from claude_force.tracking.sink import JsonlSink
d, agent, n, rotate, keep = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = JsonlSink(directory=d, rotate_bytes=rotate, keep_files=keep, batch_size=16, flush_interval=0.001)
sys.stdin.readline()  # start together: the parent releases both children at once
for i in range(n):
    s.submit(Record(float(i), agent, "m", True, None, 1.0, 1, 1, 1, 0, 0, 0.1, False, False, None, None))
s.close()
print(s.written, s.dropped, s.errors)
"""


def test_two_processes_lose_nothing(tmp_path: Path) -> None:
    n = 3_000
    args = [str(tmp_path), "", str(n), str(ROTATE), str(KEEP)]
    procs = []
    for w in ("p0", "p1"):
        args[1] = w
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _CHILD, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.split() == [str(n), "0", "0"], err
    assert_all_loaded(tmp_path, ["p0", "p1"], n)
