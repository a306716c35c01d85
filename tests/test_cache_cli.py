"""``claude-force cache stats|clear|prune|verify``: output and exit codes, on a local Typer app."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from claude_force.cache import ResponseCache
from claude_force.cache.dirs import DB_NAME
from claude_force.cli.cache import register
from claude_force.models import Response, Usage

SECRET = "cli-test-secret-0123456789abcdef-xyz!"


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        """Test root."""

    register(root)
    return root


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"CLAUDE_CACHE_SECRET": SECRET, "CLAUDE_FORCE_CACHE_DIR": str(tmp_path / "cache")}


def seed(cache_dir: Path, n: int, *, agent: str = "reviewer", created_ago: float = 0.0) -> None:
    with ResponseCache(
        cache_dir=cache_dir, secret=SECRET, clock=lambda: time.time() - created_ago, ttl_hours=1
    ) as c:
        for i in range(n):
            c.set(f"{agent}-{i}", Response(text=f"t{i}", model="m", usage=Usage(1, 2)), agent=agent)


def test_stats_on_an_empty_cache(app: typer.Typer, runner: CliRunner, env: dict[str, str]) -> None:
    result = runner.invoke(app, ["cache", "stats"], env=env)
    assert result.exit_code == 0, result.output
    assert "entries: 0" in result.stdout


def test_stats_json_shows_entries_per_agent(
    app: typer.Typer, runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    seed(tmp_path / "cache", 3, agent="reviewer")
    seed(tmp_path / "cache", 1, agent="fixer")
    result = runner.invoke(app, ["cache", "stats", "--json"], env=env)
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert doc["entries"] == 4
    assert {a["agent"]: a["entries"] for a in doc["agents"]} == {"reviewer": 3, "fixer": 1}
    table = runner.invoke(app, ["cache", "stats"], env=env)
    assert "reviewer" in table.stdout and "entries: 4" in table.stdout


def test_cache_dir_option_wins_over_env(
    app: typer.Typer, runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    seed(tmp_path / "other", 2)
    result = runner.invoke(app, ["cache", "stats", "--json", "--cache-dir", str(tmp_path / "other")], env=env)
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["entries"] == 2


def test_clear_removes_everything(
    app: typer.Typer, runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    seed(tmp_path / "cache", 5)
    result = runner.invoke(app, ["cache", "clear"], env=env)
    assert result.exit_code == 0, result.output
    assert "cleared 5 entries" in result.stdout
    again = runner.invoke(app, ["cache", "stats", "--json"], env=env)
    assert orjson.loads(again.stdout)["entries"] == 0


def test_prune_removes_expired_entries_only(
    app: typer.Typer, runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    seed(tmp_path / "cache", 2, agent="old", created_ago=7200)  # stored with a 1 h TTL, 2 h ago
    seed(tmp_path / "cache", 3, agent="new")
    result = runner.invoke(app, ["cache", "prune"], env=env)
    assert result.exit_code == 0, result.output
    assert "pruned 2 entries" in result.stdout
    assert orjson.loads(runner.invoke(app, ["cache", "stats", "--json"], env=env).stdout)["entries"] == 3


def test_prune_with_a_ttl_also_removes_older_entries(
    app: typer.Typer, runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    seed(tmp_path / "cache", 2, created_ago=1800)
    result = runner.invoke(app, ["cache", "prune", "--ttl-hours", "0.25"], env=env)
    assert result.exit_code == 0, result.output
    assert "pruned 2 entries" in result.stdout


def test_prune_rejects_a_zero_ttl(app: typer.Typer, runner: CliRunner, env: dict[str, str]) -> None:
    result = runner.invoke(app, ["cache", "prune", "--ttl-hours", "0"], env=env)
    assert result.exit_code == 2
    assert "ttl-hours" in result.stderr


def test_verify_clean_exits_0_and_corrupt_exits_1(
    app: typer.Typer, runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    seed(tmp_path / "cache", 3)
    clean = runner.invoke(app, ["cache", "verify"], env=env)
    assert clean.exit_code == 0, clean.output
    assert "checked 3: 3 ok, 0 corrupt" in clean.stdout
    conn = sqlite3.connect(tmp_path / "cache" / DB_NAME, isolation_level=None)
    conn.execute("UPDATE entries SET payload = randomblob(10) WHERE key = 'reviewer-1'")
    conn.close()
    dirty = runner.invoke(app, ["cache", "verify", "--json"], env=env)
    assert dirty.exit_code == 1
    assert orjson.loads(dirty.stdout) == {"checked": 3, "ok": 2, "corrupt": 1, "expired": 0}
    assert runner.invoke(app, ["cache", "verify"], env=env).exit_code == 0  # the bad one was deleted


@pytest.mark.parametrize("secret", ["short", "default_secret_change_in_production"])
def test_weak_secret_is_one_line_and_exit_2(
    app: typer.Typer, runner: CliRunner, env: dict[str, str], secret: str
) -> None:
    result = runner.invoke(app, ["cache", "stats"], env={**env, "CLAUDE_CACHE_SECRET": secret})
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error:")
    assert "CLAUDE_CACHE_SECRET" in lines[0]
    assert result.stdout == ""


def test_unsafe_cache_dir_is_one_line_and_exit_2(
    app: typer.Typer, runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    result = runner.invoke(app, ["cache", "clear", "--cache-dir", str(tmp_path / "link")], env=env)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: cache dir is a symlink"


def test_a_broken_database_is_reported_by_verify_and_fixed_by_clear(
    app: typer.Typer, runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o700)
    (cache_dir / DB_NAME).write_bytes(b"garbage" * 1000)
    (cache_dir / DB_NAME).chmod(0o600)
    broken = runner.invoke(app, ["cache", "verify"], env=env)
    assert broken.exit_code == 2
    assert broken.stderr.startswith("error: cannot verify the cache")
    fixed = runner.invoke(app, ["cache", "clear"], env=env)
    assert fixed.exit_code == 0, fixed.output
    assert runner.invoke(app, ["cache", "verify"], env=env).exit_code == 0


def test_cache_dir_and_secret_come_from_the_config(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_force.cli.common import STATE

    cfg_dir = tmp_path / "proj" / ".claude"
    cfg_dir.mkdir(parents=True)
    (cfg_dir / "claude.json").write_bytes(
        orjson.dumps(
            {
                "agents": {},
                "orchestrator": {"cache": {"dir": str(tmp_path / "cfgcache")}, "cache_secret": SECRET},
            }
        )
    )
    seed(tmp_path / "cfgcache", 3)
    monkeypatch.setattr(STATE, "config", cfg_dir / "claude.json")
    result = runner.invoke(
        app, ["cache", "stats", "--json"], env={"CLAUDE_FORCE_CACHE_DIR": None, "CLAUDE_CACHE_SECRET": None}
    )
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["entries"] == 3


def _config(tmp_path: Path, orchestrator: dict[str, object]) -> Path:
    cfg_dir = tmp_path / "proj" / ".claude"
    cfg_dir.mkdir(parents=True)
    (cfg_dir / "claude.json").write_bytes(orjson.dumps({"agents": {}, "orchestrator": orchestrator}))
    return cfg_dir / "claude.json"


def test_prune_applies_the_configured_max_disk_mb(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_force.cli.common import STATE

    seed(tmp_path / "cfgcache", 3)
    # A limit of about one byte: every entry is over it.
    config = _config(tmp_path, {"cache": {"dir": str(tmp_path / "cfgcache"), "max_disk_mb": 1e-6}})
    monkeypatch.setattr(STATE, "config", config)
    env = {"CLAUDE_FORCE_CACHE_DIR": None, "CLAUDE_CACHE_SECRET": SECRET}
    result = runner.invoke(app, ["cache", "prune"], env=env)
    assert result.exit_code == 0, result.output
    assert "pruned 3 entries" in result.stdout
    assert orjson.loads(runner.invoke(app, ["cache", "stats", "--json"], env=env).stdout)["entries"] == 0


def test_secret_from_the_environment_beats_the_config(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_force.cli.common import STATE

    seed(tmp_path / "cfgcache", 3)  # signed with SECRET
    config = _config(
        tmp_path,
        {"cache": {"dir": str(tmp_path / "cfgcache")}, "cache_secret": "another-secret-0123456789-abcdef!"},
    )
    monkeypatch.setattr(STATE, "config", config)
    result = runner.invoke(
        app,
        ["cache", "verify", "--json"],
        env={"CLAUDE_FORCE_CACHE_DIR": None, "CLAUDE_CACHE_SECRET": SECRET},
    )
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert doc["ok"] == 3 and doc["corrupt"] == 0
