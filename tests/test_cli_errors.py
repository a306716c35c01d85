"""The CLI's error paths, in process through ``main()``: one readable line on stderr and exit 2, never a traceback.

The ``mock`` transport answers without a network, so every test is offline and fast. A test that expects a
clean error would see a traceback as an exception escaping ``main()`` (not ``SystemExit``), and fail.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from claude_force.cli.app import main
from claude_force.cli.common import THIRD_PARTY_LOGGERS, setup_logging
from claude_force.cli.project import write_project

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """``main()`` reconfigures logging (basicConfig(force=True)); put pytest's setup back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = ("claude_force", *THIRD_PARTY_LOGGERS)
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for n, lv in levels.items():
        logging.getLogger(n).setLevel(lv)


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_secret: str) -> Path:
    """A project in ``tmp_path`` (the cwd), the mock transport, no stray CLAUDE_FORCE_* settings."""
    for var in list(os.environ):
        if var.startswith("CLAUDE_FORCE_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CLAUDE_FORCE_TRANSPORT", "mock")
    monkeypatch.setenv("CLAUDE_CACHE_SECRET", cache_secret)
    monkeypatch.chdir(tmp_path)
    return write_project(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0 if code is None else 1), captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


# --- 1. oversized numbers are config errors that name their source ------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--budget-usd", "inf"),
        ("--budget-usd", "1e300"),
        ("--rpm", "inf"),
        ("--input-tpm", "inf"),
        ("--output-tpm", "1e300"),
        ("--max-tokens", "99999999999999999999999"),
        ("--timeout", "inf"),
        ("--timeout", "0"),
        ("--budget-usd", "-1"),
        ("--budget-usd", "nan"),
        ("--rpm", "nan"),
    ],
)
def test_oversized_flag_is_one_line_naming_the_flag(
    proj: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    code, out, err = run(capsys, "run", "agent", "code-reviewer", "-t", "hi", "--no-cache", flag, value)
    assert code == 2 and out == ""
    assert one_error_line(err).startswith(f"error: {flag}: invalid setting")
    if value == "nan":  # not "should be greater than or equal to 0", which nan is not wrong about
        assert one_error_line(err).endswith("Input should be a finite number")


def test_oversized_env_var_names_the_variable(
    proj: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_FORCE_BUDGET_USD", "inf")
    code, _, err = run(capsys, "run", "agent", "code-reviewer", "-t", "hi", "--no-cache")
    assert code == 2 and "environment variable CLAUDE_FORCE_BUDGET_USD" in one_error_line(err)
    monkeypatch.setenv("CLAUDE_FORCE_BUDGET_USD", "1")
    monkeypatch.setenv("CLAUDE_FORCE_MAX_TOKENS", "abc")
    code, _, err = run(capsys, "run", "agent", "code-reviewer", "-t", "hi", "--no-cache")
    assert code == 2 and "environment variable CLAUDE_FORCE_MAX_TOKENS" in one_error_line(err)
    assert "claude.json" not in err


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ({"budget_usd": 1e300}, "orchestrator.budget_usd"),
        ({"prices": {"claude-sonnet-5-5": {"input": 1e308, "output": 1e308}}}, "orchestrator.prices"),
        ({"rate_limits": {"m": {"rpm": 1e300}}}, "orchestrator.rate_limits.m.rpm"),
        ({"cache": {"max_disk_mb": 1e300}}, "orchestrator.cache.max_disk_mb"),
    ],
)
def test_oversized_config_value_names_the_key(
    proj: Path, capsys: pytest.CaptureFixture[str], block: dict[str, object], key: str
) -> None:
    doc = orjson.loads(proj.read_bytes())
    doc["orchestrator"] = block
    proj.write_bytes(orjson.dumps(doc))
    code, _, err = run(capsys, "run", "agent", "code-reviewer", "-t", "hi", "--no-cache")
    assert code == 2 and f"claude.json [{key}]: invalid setting" in one_error_line(err)


# --- 2. config text is never rendered as markup --------------------------------------------------------------


def test_config_values_and_paths_are_printed_literally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "[" / "x]"  # the path contains "[/x]", a closing tag with no opening one
    (root / ".claude").mkdir(parents=True)
    (root / ".claude" / "[bold]a.md").write_text("# A\nhello\n")
    config = root / ".claude" / "claude.json"
    config.write_bytes(
        orjson.dumps({"agents": {"a": {"file": "[bold]a.md", "domains": ["[/bold]"], "description": "d"}}})
    )
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "--config", str(config), "list", "agents")
    assert code == 0 and "[/bold]" in out and "[bold]a.md" in out
    code, out, _ = run(capsys, "--config", str(config), "info", "a")
    assert code == 0 and "[/bold]" in out and "[bold]a.md" in out
    code, out, _ = run(capsys, "--config", str(config), "validate")
    assert code == 0 and f"ok {config}" in out


def test_a_link_in_the_config_is_shown_not_hidden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.md").write_text("# A\n")
    config = tmp_path / "claude.json"
    config.write_bytes(
        orjson.dumps({"agents": {"a": {"file": "a.md", "contract": "[link=http://e]x[/link]"}}})
    )
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "--config", str(config), "list", "agents")
    assert code == 0 and "[link=http://e]x[/link]" in out


# --- 3. OSError on input and output paths ---------------------------------------------------------------------


def test_unwritable_output_fails_before_the_call(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "run", "agent", "code-reviewer", "-t", "hi", "--no-cache", "-o", "missing-dir/o.txt"
    )
    assert code == 2 and out == ""
    assert "cannot write missing-dir/o.txt" in one_error_line(err)
    # No task ran, so the tracker wrote no record: the paid call was never made.
    assert not (proj.parent / "metrics" / "tasks.jsonl").exists()


def test_output_file_is_written_on_success_and_not_left_behind_on_error(
    proj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(
        capsys, "run", "agent", "code-reviewer", "-t", "hi", "--no-cache", "--json", "-o", "o.json"
    )
    assert code == 0 and orjson.loads(Path("o.json").read_bytes())["success"] is True
    code, _, err = run(capsys, "run", "agent", "ghost", "-t", "hi", "--no-cache", "-o", "new.txt")
    assert code == 2 and "unknown agent" in one_error_line(err)
    assert not Path("new.txt").exists()


def test_output_to_a_device_that_cannot_be_truncated(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # /dev/null is seekable but refuses truncate(): the result goes there, and the run still succeeds.
    code, _, err = run(capsys, "run", "agent", "code-reviewer", "-t", "hi", "--no-cache", "-o", os.devnull)
    assert code == 0, err


def test_batch_paths_that_cannot_be_opened(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("in.jsonl").write_bytes(orjson.dumps({"id": "a", "agent": "code-reviewer", "task": "x"}) + b"\n")
    code, _, err = run(capsys, "run", "batch", "-i", "in.jsonl", "-o", "missing-dir/out.jsonl", "--no-cache")
    assert code == 2 and "cannot write output file missing-dir/out.jsonl" in one_error_line(err)
    code, _, err = run(capsys, "run", "batch", "-i", "in.jsonl/x", "-o", "out.jsonl", "--no-cache")
    assert code == 2 and "cannot read input file in.jsonl/x" in one_error_line(err)


def test_batch_outputs_that_would_lose_data_are_refused(
    proj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = orjson.dumps({"id": "a", "agent": "code-reviewer", "task": "x"}) + b"\n"
    Path("in.jsonl").write_bytes(tasks)
    code, _, err = run(capsys, "run", "batch", "-i", "in.jsonl", "-o", "in.jsonl", "--no-cache")
    assert code == 2 and "is the input file" in one_error_line(err)
    assert Path("in.jsonl").read_bytes() == tasks
    earlier = orjson.dumps({"id": "old", "success": True}) + b"\n"
    Path("out.jsonl").write_bytes(earlier)
    code, _, err = run(capsys, "run", "batch", "-i", "in.jsonl", "-o", "out.jsonl", "--no-cache")
    assert (
        code == 2
        and "already holds results, and writing to it would empty it; pass --resume" in one_error_line(err)
    )
    assert Path("out.jsonl").read_bytes() == earlier  # the results already paid for are still there


def test_init_never_overwrites_without_force_nor_writes_through_a_symlink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    mine = Path("p/.claude/agents/code-reviewer.md")
    mine.parent.mkdir(parents=True)
    mine.write_text("MY CUSTOM AGENT")  # a project with agents but no claude.json yet
    code, _, err = run(capsys, "init", "p")
    assert code == 2 and "code-reviewer.md already exists (use --force" in one_error_line(err)
    assert mine.read_text() == "MY CUSTOM AGENT" and not Path("p/.claude/claude.json").exists()
    victim = tmp_path / "victim.txt"
    victim.write_text("outside the project")
    mine.unlink()
    mine.symlink_to(victim)
    code, _, err = run(capsys, "init", "p", "--force")
    assert code == 0, err
    assert victim.read_text() == "outside the project"  # the link was replaced, not written through
    assert not mine.is_symlink() and "You are" in mine.read_text()
    Path("q/.claude").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    Path("q/.claude/agents").symlink_to(tmp_path / "elsewhere")
    code, _, err = run(capsys, "init", "q", "--force")
    assert code == 2 and "is a symlink" in one_error_line(err)
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.parametrize("command", [["init"], ["demo", "--tasks", "1", "--keep"]])
def test_init_and_demo_into_an_impossible_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("")
    code, _, err = run(capsys, *command, str(tmp_path / "a-file" / "sub"))
    assert code == 2 and "cannot create" in one_error_line(err)


# --- 4. non-UTF-8 task text -----------------------------------------------------------------------------------


def test_task_argument_that_is_not_utf8(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # What Python makes of the argv bytes b"hi\xff": a lone surrogate (surrogateescape).
    code, _, err = run(capsys, "run", "agent", "code-reviewer", "--no-cache", "-t", "hi\udcff")
    assert code == 2 and one_error_line(err) == "error: --task is not valid UTF-8"


def test_stdin_that_is_not_utf8(
    proj: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"hi\xff"), encoding="utf-8"))
    code, _, err = run(capsys, "run", "agent", "code-reviewer", "--no-cache")
    assert code == 2 and one_error_line(err) == "error: standard input is not valid UTF-8"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("héllo".encode()), encoding="utf-8"))
    code, out, _ = run(capsys, "run", "agent", "code-reviewer", "--no-cache")
    assert code == 0 and out.strip()


# --- 5. validate, info and metrics see what run sees ----------------------------------------------------------


def test_validate_and_info_apply_the_configured_max_file_bytes(
    proj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (proj.parent / "agents" / "big.md").write_text("# big\n" + "x" * 1_500_000)
    doc = orjson.loads(proj.read_bytes())
    doc["agents"]["big"] = {"file": "agents/big.md"}
    doc["orchestrator"]["max_file_bytes"] = 2_000_000
    proj.write_bytes(orjson.dumps(doc))
    code, out, err = run(capsys, "validate")
    assert code == 0, out + err
    code, out, _ = run(capsys, "info", "big")
    assert code == 0 and "1,500,006 chars" in out


def test_validate_reports_a_bad_orchestrator_block(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = orjson.loads(proj.read_bytes())
    doc["orchestrator"]["max_tokens"] = 0
    proj.write_bytes(orjson.dumps(doc))
    code, out, err = run(capsys, "validate")
    assert code == 2 and "[orchestrator.max_tokens]" in out and "1 problem(s)" in err


def test_validate_reports_a_cache_secret_run_would_refuse(
    proj: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLAUDE_CACHE_SECRET")
    doc = orjson.loads(proj.read_bytes())
    doc["orchestrator"]["cache_secret"] = "short"
    proj.write_bytes(orjson.dumps(doc))
    code, out, err = run(capsys, "validate")
    assert code == 2 and "is 5 bytes; at least 32 are needed" in out and "1 problem(s)" in err
    code, _, err = run(capsys, "run", "agent", "code-reviewer", "-t", "hi")
    warning, error = err.strip().splitlines()  # a log line is one line too, in a pipe
    assert "WARNING claude_force.settings: orchestrator.cache_secret is set in" in warning
    assert code == 2 and error.startswith("error: ") and "is 5 bytes" in error  # what validate warned of
    monkeypatch.setenv("CLAUDE_CACHE_SECRET", "s" * 64)  # the variable beats the config's value
    code, out, err = run(capsys, "validate")
    assert code == 0, out + err


def test_metrics_read_the_directory_runs_write(
    proj: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # runs write to <config dir>/metrics, not ./.claude/metrics
    code, _, _ = run(capsys, "--config", str(proj), "run", "agent", "code-reviewer", "-t", "hi", "--no-cache")
    assert code == 0 and (proj.parent / "metrics" / "tasks.jsonl").exists()
    code, out, _ = run(capsys, "--config", str(proj), "metrics", "export")
    assert code == 0 and len(orjson.loads(out)) == 1
    # The environment variable moves both the writer and the reader.
    monkeypatch.setenv("CLAUDE_FORCE_METRICS_DIR", str(tmp_path / "env-metrics"))
    run(capsys, "--config", str(proj), "run", "agent", "doc-writer", "-t", "hi", "--no-cache")
    code, out, _ = run(capsys, "--config", str(proj), "metrics", "export")
    assert code == 0 and [r["agent"] for r in orjson.loads(out)] == ["doc-writer"]


# --- 6. resume keeps every good result after a bad line -------------------------------------------------------


def test_resume_skips_a_bad_middle_line_and_reruns_only_the_missing_ids(
    proj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [f"t{i}" for i in range(5)]
    Path("in.jsonl").write_bytes(
        b"".join(orjson.dumps({"id": i, "agent": "code-reviewer", "task": f"task {i}"}) + b"\n" for i in ids)
    )
    done = [orjson.dumps({"id": i, "success": True, "output": "old"}) + b"\n" for i in ids]
    done[1] = b"{garbage, not json\n"  # line 2 of 5
    Path("out.jsonl").write_bytes(b"".join(done))
    code, _, err = run(capsys, "run", "batch", "-i", "in.jsonl", "-o", "out.jsonl", "--resume", "--no-cache")
    assert code == 0, err
    assert "4 tasks already done, 1 to run" in err
    lines = Path("out.jsonl").read_bytes().splitlines(keepends=True)
    assert lines[:5] == done  # nothing before or after the bad line was cut
    assert [orjson.loads(line)["id"] for line in lines[5:]] == ["t1"]


# --- 7. error lines never wrap; emulate reports on stderr ------------------------------------------------------


def test_long_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / ("d" * 150) / "claude.json"
    code, out, err = run(capsys, "--config", str(deep), "list", "agents")
    assert code == 2 and out == "" and str(deep) in one_error_line(err)


def test_a_long_result_line_is_not_broken_at_the_width_of_a_pipe(
    proj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "run", "agent", "code-reviewer", "-t", "hi", "--no-cache", "--budget-usd", "0")
    assert code == 1
    (line,) = out.splitlines()  # one line, though longer than the 80 columns a pipe gets
    assert len(line) > 80 and line.startswith("failed [budget_exceeded]")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "agent", "code-reviewer", "-t", "hi", "--max-concurrency", "-1"], "'--max-concurrency'"),
        (["run", "agent", "code-reviewer", "-t", "hi", "--max-concurrency", "abc"], "'--max-concurrency'"),
        (["run", "agent", "code-reviewer", "-t", "hi", "--max-tokens", "0"], "'--max-tokens'"),
        (["--bogus"], "No such option: --bogus"),
        (["run", "agent"], "Missing argument"),
        (["demo", "--tasks", "0"], "'--tasks'"),
    ],
)
@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_a_bad_flag_is_one_line_and_exit_2(
    proj: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str, debug: list[str]
) -> None:
    code, out, err = run(capsys, *debug, *args)
    assert code == 2 and out == ""
    assert fragment in one_error_line(err) and "--help" in one_error_line(err)


def test_debug_keeps_exit_2_and_adds_the_traceback(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--debug", "run", "agent", "nope", "-t", "hi")
    assert code == 2  # a config error, as without --debug (it used to re-raise: exit 1, "some task failed")
    lines = err.splitlines()
    assert lines[0] == "Traceback (most recent call last):" and lines[-1].startswith("error: ")
    assert "claude_force.errors.UnknownAgent" in err


def test_ctrl_c_is_exit_130_with_one_line(
    proj: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("claude_force.cli.project.load_config", interrupted)
    code, _, err = run(capsys, "validate")
    assert code == 130 and err.strip() == "interrupted"


def test_a_logged_traceback_in_a_pipe_is_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(False)  # stderr is captured, not a terminal: the plain handler
    try:
        raise ValueError("bad \x1b[31mred\n2026-01-01 CRITICAL forged")
    except ValueError:
        logging.getLogger("claude_force.test").exception("it broke for %s", "agent-x")
    err = capsys.readouterr().err
    assert "ERROR claude_force.test: it broke for agent-x" in err
    assert "\x1b" not in err and not any(line.startswith("2026-01-01") for line in err.splitlines())


def test_emulate_bad_option_goes_to_stderr_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "emulate", "--port", "0", "--latency-ms", "-5")
    assert code == 2 and out == "" and "latency_ms" in one_error_line(err)


# --- 10. --debug does not turn on the HTTP libraries' request logging ----------------------------------------


def test_debug_logging_is_for_claude_force_only() -> None:
    setup_logging(True)
    assert logging.getLogger("claude_force.orchestrator").getEffectiveLevel() == logging.DEBUG
    for name in ("anthropic", "anthropic._base_client", "httpx", "httpcore", "urllib3", "aiohttp", "other"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name
    setup_logging(False)
    assert logging.getLogger("claude_force.orchestrator").getEffectiveLevel() == logging.WARNING
