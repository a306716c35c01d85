"""The CLI as a user runs it: real subprocesses, the emulator over loopback, exit codes, batch resume after kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.integration

EXE = [sys.executable, "-m", "claude_force.cli"]


@pytest.fixture
def emulator_url() -> Iterator[str]:
    """The emulator in its own process, as users run it (`python -m claude_force.emulator`)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_force.emulator", "--port", "0", "--print-port", "--latency-ms", "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().strip())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def cli(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXE, *args], env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def env(tmp_path: Path, emulator_url: str, cache_secret: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    e.update(
        ANTHROPIC_API_KEY="sk-ant-test-" + "K" * 30,
        ANTHROPIC_BASE_URL=emulator_url,
        CLAUDE_CACHE_SECRET=cache_secret,
        CLAUDE_FORCE_CACHE_DIR=str(tmp_path / "cache"),
        HOME=str(tmp_path / "home"),
        COLUMNS="200",
    )
    return e


def test_init_validate_list_info(tmp_path: Path, env: dict[str, str]) -> None:
    assert cli(["init"], env, tmp_path).returncode == 0
    assert (tmp_path / ".claude" / "claude.json").exists()
    r = cli(["validate"], env, tmp_path)
    assert r.returncode == 0 and "3 agents" in r.stdout
    r = cli(["list", "agents"], env, tmp_path)
    assert r.returncode == 0 and "code-reviewer" in r.stdout
    r = cli(["list", "workflows"], env, tmp_path)
    assert "bug-investigator" in r.stdout
    r = cli(["info", "code-reviewer"], env, tmp_path)
    assert r.returncode == 0 and "contract" in r.stdout


def test_run_agent_json_and_stdin(tmp_path: Path, env: dict[str, str]) -> None:
    cli(["init"], env, tmp_path)
    r = cli(["run", "agent", "code-reviewer", "--task", "review x", "--json"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    doc = orjson.loads(r.stdout)
    assert set(doc) == {"agent", "success", "output", "error_code", "errors", "metadata"} and doc["success"]
    r = cli(["run", "agent", "doc-writer"], env, tmp_path, stdin="document y")
    assert r.returncode == 0 and "Emulated reply" in r.stdout
    r = cli(["run", "workflow", "bug-fix", "--task", "z", "--json", "-o", "wf.json"], env, tmp_path)
    assert r.returncode == 0 and orjson.loads((tmp_path / "wf.json").read_bytes())["success"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "agent", "ghost", "--task", "x"], "unknown agent"),
        (["--config", "nope/claude.json", "list", "agents"], "config file not found"),
        (["run", "workflow", "nothing", "--task", "x"], "unknown workflow"),
        (["run", "agent", "code-reviewer", "--task", "x", "--transport", "smoke"], "transport"),
        (["run", "batch", "--input", "missing.jsonl", "--output", "o.jsonl"], "not found"),
    ],
)
def test_usage_and_config_errors_exit_2_with_one_line(
    tmp_path: Path, env: dict[str, str], args: list[str], needle: str
) -> None:
    cli(["init"], env, tmp_path)
    r = cli(args, env, tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr.lower()
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_debug_shows_traceback(tmp_path: Path, env: dict[str, str]) -> None:
    cli(["init"], env, tmp_path)
    r = cli(["--debug", "run", "agent", "ghost", "--task", "x"], env, tmp_path)
    assert r.returncode != 0 and "Traceback" in r.stderr
    assert "K" * 30 not in r.stderr


def test_failed_task_exits_1(tmp_path: Path, env: dict[str, str]) -> None:
    cli(["init"], env, tmp_path)
    r = cli(["run", "agent", "code-reviewer", "--task", "x", "--json", "--budget-usd", "0"], env, tmp_path)
    assert r.returncode == 1
    assert orjson.loads(r.stdout)["error_code"] == "budget_exceeded"


def write_tasks(path: Path, n: int, bad: str | None = None) -> None:
    lines = [
        orjson.dumps({"id": f"t{i}", "agent": "code-reviewer", "task": f"task {i}"}).decode()
        for i in range(n)
    ]
    if bad is not None:
        lines.insert(2, bad)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("{not json", "line 3"),
        ('{"agent": "a", "task": "t"}', "line 3: missing 'id'"),
        ('{"id": "t0", "agent": "a", "task": "x"}', "duplicate id"),
    ],
)
def test_batch_rejects_bad_input_up_front(tmp_path: Path, env: dict[str, str], bad: str, needle: str) -> None:
    cli(["init"], env, tmp_path)
    write_tasks(tmp_path / "in.jsonl", 5, bad)
    r = cli(["run", "batch", "-i", "in.jsonl", "-o", "out.jsonl"], env, tmp_path)
    assert r.returncode == 2 and needle in r.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_batch_resume_after_kill(tmp_path: Path, env: dict[str, str]) -> None:
    cli(["init"], env, tmp_path)
    write_tasks(tmp_path / "in.jsonl", 100)
    env = {**env, "CLAUDE_FORCE_MAX_CONCURRENCY": "2"}
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [*EXE, "run", "batch", "-i", "in.jsonl", "-o", "out.jsonl", "--no-cache"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Wait (bounded) until some results are on disk, then kill -9 mid-batch.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 5):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    done_before = out.read_bytes().count(b"\n")
    assert 5 <= done_before < 100
    r = cli(["run", "batch", "-i", "in.jsonl", "-o", "out.jsonl", "--resume", "--no-cache"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "already done" in r.stderr
    ids = [orjson.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(f"t{i}" for i in range(100)) and len(ids) == 100


def test_batch_summary_and_output_shape(tmp_path: Path, env: dict[str, str]) -> None:
    cli(["init"], env, tmp_path)
    write_tasks(tmp_path / "in.jsonl", 8)
    r = cli(["run", "batch", "-i", "in.jsonl", "-o", "out.jsonl"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "total cost" in r.stderr and "p50" in r.stderr
    rows = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {row["id"] for row in rows} == {f"t{i}" for i in range(8)}
    assert all(
        set(row) == {"id", "agent", "success", "output", "error_code", "errors", "metadata"} for row in rows
    )


def test_error_line_does_not_wrap_when_stderr_is_a_pipe(tmp_path: Path, env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "COLUMNS"}  # a pipe, no terminal width: rich assumes 80
    deep = tmp_path / ("d" * 120) / "claude.json"
    r = cli(["--config", str(deep), "list", "agents"], env, tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and str(deep) in r.stderr and len(r.stderr) > 120


def test_emulate_bind_failure_is_one_line_on_stderr_exit_2(tmp_path: Path, env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = cli(["emulate", "--port", str(port)], env, tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}") and r.stderr.count("\n") == 1


def test_debug_with_the_sdk_does_not_log_request_bodies(tmp_path: Path, env: dict[str, str]) -> None:
    pytest.importorskip("anthropic")
    cli(["init"], env, tmp_path)
    marker = "zq7-private-task"
    args = ["--debug", "run", "agent", "code-reviewer", "-t", marker, "--transport", "sdk", "--no-cache"]
    r = cli(args, env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert marker in r.stdout  # the emulator echoes the task: it was sent
    assert marker not in r.stderr and "Request options" not in r.stderr
