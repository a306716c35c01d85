"""Config loading: compatibility, errors that name file and key, path confinement, size limits."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import orjson
import pytest

from claude_force.config import ProjectConfig, load_config
from claude_force.errors import (
    ConfigError,
    ConfigNotFound,
    FileTooLarge,
    UnknownAgent,
    UnknownWorkflow,
    UnsafePath,
)


def write(root: Path, doc: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "claude.json"
    path.write_bytes(orjson.dumps(doc))
    return path


def test_seed_config_loads_and_keeps_unknown_keys(tmp_path: Path) -> None:
    root = tmp_path / ".claude"
    (root / "agents").mkdir(parents=True)
    (root / "agents" / "a.md").write_text("# A\nDo things.")
    (root / "contracts").mkdir()
    (root / "contracts" / "a.contract").write_text("Deliver X.")
    path = write(
        root,
        {
            "name": "p",
            "version": "1",
            "agents": {
                "a": {
                    "file": "agents/a.md",
                    "contract": "contracts/a.contract",
                    "domains": ["x"],
                    "priority": 2,
                }
            },
            "workflows": {"w": ["a", "a"]},
            "governance": {"anything": True},
            "skills_integration": [1, 2],
            "paths": {},
            "rules": ["r"],
        },
    )
    cfg = load_config(path)
    agent = cfg.agent("a")
    assert agent.definition.startswith("# A")
    assert agent.contract == "Deliver X."
    assert cfg.workflow("w") == ["a", "a"]
    assert set(cfg.extra) == {"governance", "skills_integration", "paths", "rules"}
    assert cfg.validate_all() == []


def test_missing_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigNotFound, match=r"claude\.json"):
        load_config(tmp_path / "claude.json")


def test_bad_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "claude.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "invalid JSON" in str(info.value)


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, {"agents": {"a": {"file": 3}}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "agents.a.file" in str(info.value)
    assert info.value.key == "agents.a.file"


@pytest.mark.parametrize("name", ["-bad", "has space", "x" * 65, "semi;colon", ""])
def test_agent_name_pattern(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, {"agents": {name: {"file": "a.md"}}})
    with pytest.raises(ConfigError, match="must match"):
        load_config(path)


def test_workflow_with_unknown_agent(tmp_path: Path) -> None:
    path = write(tmp_path, {"agents": {}, "workflows": {"w": ["ghost"]}})
    with pytest.raises(UnknownAgent) as info:
        load_config(path)
    assert info.value.key == "workflows.w"


def test_unknown_agent_and_workflow(project: Path) -> None:
    cfg = load_config(project)
    with pytest.raises(UnknownAgent, match="nobody"):
        cfg.agent("nobody")
    with pytest.raises(UnknownWorkflow, match="nothing"):
        cfg.workflow("nothing")


def test_missing_agent_file_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, {"agents": {"a": {"file": "agents/missing.md"}}})
    cfg = load_config(path)
    with pytest.raises(ConfigError) as info:
        cfg.agent("a")
    assert (
        "agents.a.file" in str(info.value) and str(path) in str(info.value) and "not found" in str(info.value)
    )


@pytest.mark.parametrize("rel", ["../outside.md", "agents/../../outside.md", "/etc/passwd"])
def test_path_escape_is_refused(tmp_path: Path, rel: str) -> None:
    (tmp_path / "outside.md").write_text("secret")
    path = write(tmp_path / "proj", {"agents": {"a": {"file": rel}}})
    cfg = load_config(path)
    with pytest.raises(UnsafePath):
        cfg.agent("a")


def test_symlink_escape_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.md").write_text("secret")
    proj = tmp_path / "proj"
    (proj / "agents").mkdir(parents=True)
    os.symlink(tmp_path / "outside.md", proj / "agents" / "a.md")
    os.symlink(tmp_path, proj / "linkdir")
    cfg = load_config(
        write(proj, {"agents": {"a": {"file": "agents/a.md"}, "b": {"file": "linkdir/outside.md"}}})
    )
    with pytest.raises(UnsafePath, match="symlink"):
        cfg.agent("a")
    with pytest.raises(UnsafePath, match="symlink"):
        cfg.agent("b")


def test_symlink_inside_root_is_allowed(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    (proj / "agents").mkdir(parents=True)
    (proj / "agents" / "real.md").write_text("# real")
    os.symlink(proj / "agents" / "real.md", proj / "agents" / "alias.md")
    cfg = load_config(write(proj, {"agents": {"a": {"file": "agents/alias.md"}}}))
    assert cfg.agent("a").definition == "# real"


def test_oversized_agent_and_contract_files(tmp_path: Path) -> None:
    (tmp_path / "big.md").write_text("x" * 2048)
    (tmp_path / "ok.md").write_text("fine")
    path = write(
        tmp_path, {"agents": {"a": {"file": "big.md"}, "b": {"file": "ok.md", "contract": "big.md"}}}
    )
    cfg = load_config(path, max_file_bytes=1024)
    with pytest.raises(FileTooLarge, match="1024"):
        cfg.agent("a")
    with pytest.raises(FileTooLarge) as info:
        cfg.agent("b")
    assert info.value.key == "agents.b.contract"


def test_validate_all_reports_every_problem(tmp_path: Path) -> None:
    (tmp_path / "ok.md").write_text("fine")
    path = write(
        tmp_path, {"agents": {"a": {"file": "ok.md"}, "b": {"file": "nope.md"}, "c": {"file": "../x.md"}}}
    )
    problems = load_config(path).validate_all()
    assert len(problems) == 2
    assert any("agents.b.file" in p for p in problems) and any("agents.c.file" in p for p in problems)


def test_non_utf8_and_empty_files(tmp_path: Path) -> None:
    (tmp_path / "bin.md").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "empty.md").write_text("  \n")
    cfg = load_config(write(tmp_path, {"agents": {"a": {"file": "bin.md"}, "b": {"file": "empty.md"}}}))
    with pytest.raises(ConfigError, match="UTF-8"):
        cfg.agent("a")
    with pytest.raises(ConfigError, match="empty"):
        cfg.agent("b")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_agent_file_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.md")
    (tmp_path / "dir.md").mkdir()
    cfg = load_config(write(tmp_path, {"agents": {"f": {"file": "fifo.md"}, "d": {"file": "dir.md"}}}))
    outcome: list[BaseException] = []
    # Opening a FIFO for reading blocks until a writer appears: run the read where a regression cannot hang
    # the whole suite (the join is a bound on a failure, not synchronisation; the refusal is immediate).
    worker = threading.Thread(target=lambda: outcome.extend(problems_of(cfg)), daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "reading a FIFO agent file blocked"
    assert [type(e) for e in outcome] == [ConfigError, ConfigError]
    assert all("not a regular file" in str(e) for e in outcome)
    assert "agents.f.file" in str(outcome[0]) and "agents.d.file" in str(outcome[1])


def problems_of(cfg: ProjectConfig) -> list[BaseException]:
    found: list[BaseException] = []
    for name in ("f", "d"):
        try:
            cfg.agent(name)
        except ConfigError as exc:
            found.append(exc)
    return found


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_as_the_config_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "claude.json"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(fifo)


def test_a_nul_in_an_agent_path_is_an_unsafe_path(tmp_path: Path) -> None:
    from claude_force.errors import UnsafePath
    from claude_force.security.paths import confine

    with pytest.raises(UnsafePath, match="NUL"):
        confine(tmp_path, "agents/a\x00.md")
