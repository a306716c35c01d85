"""Shared fixtures: a real .claude/ project on disk, and the in-process emulator over loopback."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from claude_force.cli.project import write_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A working .claude/ (three agents, one workflow), as `claude-force init` writes it. Returns claude.json."""
    return write_project(tmp_path)


@pytest.fixture
def cache_secret() -> str:
    return secrets.token_hex(32)


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the user's real cache/config dirs and environment out of the tests."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "CLAUDE_CACHE_SECRET", "CLAUDE_FORCE_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
async def emulator() -> AsyncIterator[object]:
    from claude_force.emulator import EmulatorConfig, EmulatorServer

    async with EmulatorServer(EmulatorConfig(latency_ms=0)) as emu:
        yield emu
