"""Load ``.claude/claude.json``: agents, workflows and the ``orchestrator`` block, compatible with claude-force.

Unknown top-level keys (governance, skills_integration, paths, rules, ...) are kept in ``ProjectConfig.extra`` and
ignored. Agent and contract files are read relative to the config's directory, confined to it, and size-limited.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from claude_force import constants as C
from claude_force.errors import ConfigError, ConfigNotFound, FileTooLarge, UnknownAgent, UnknownWorkflow
from claude_force.security.paths import read_confined
from claude_force.security.sanitize import safe

logger = logging.getLogger("claude_force.config")

_AGENT_NAME = re.compile(C.AGENT_NAME_PATTERN)


class AgentEntry(BaseModel):
    """One ``agents`` entry: ``{file, contract?, domains?, priority?}`` plus claude-force extensions."""

    model_config = ConfigDict(extra="allow", frozen=True)

    file: str = Field(min_length=1)
    contract: str | None = None
    domains: list[str] = Field(default_factory=list)
    priority: int | None = None
    description: str | None = None
    model: str | None = None
    injection_policy: Literal["off", "flag", "block"] | None = None
    prompt_cache: Literal["5m", "1h", "off"] | None = None


class ConfigFile(BaseModel):
    """The shape of ``claude.json``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str | None = None
    version: str | None = None
    agents: dict[str, AgentEntry] = Field(default_factory=dict)
    workflows: dict[str, list[str]] = Field(default_factory=dict)
    orchestrator: dict[str, Any] = Field(default_factory=dict)

    @field_validator("agents")
    @classmethod
    def _names(cls, v: dict[str, AgentEntry]) -> dict[str, AgentEntry]:
        for name in v:
            if not _AGENT_NAME.match(name):
                raise ValueError(f"agent name {name!r} must match {C.AGENT_NAME_PATTERN}")
        return v


@dataclass(frozen=True, slots=True)
class Agent:
    """A loaded agent: its definition text, its optional contract, and its entry options."""

    name: str
    definition: str
    contract: str | None
    entry: AgentEntry


@dataclass(slots=True)
class ProjectConfig:
    """A validated config. Agents are loaded (read from disk) lazily, once each, on first use."""

    path: Path
    root: Path
    data: ConfigFile
    max_file_bytes: int = C.DEFAULT_MAX_FILE_BYTES
    _agents: dict[str, Agent] = field(default_factory=dict)

    @property
    def agent_names(self) -> list[str]:
        return list(self.data.agents)

    @property
    def workflows(self) -> dict[str, list[str]]:
        return dict(self.data.workflows)

    @property
    def orchestrator_block(self) -> dict[str, Any]:
        return dict(self.data.orchestrator)

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.data.model_extra or {})

    def entry(self, name: str) -> AgentEntry:
        try:
            return self.data.agents[name]
        except KeyError:
            known = ", ".join(sorted(self.data.agents)) or "none"
            raise UnknownAgent(
                f"unknown agent {safe(name, 64)!r} (known: {safe(known, 300)})", path=self.path, key="agents"
            ) from None

    def agent(self, name: str) -> Agent:
        """Load (once) and return an agent; raises UnknownAgent, UnsafePath, FileTooLarge or ConfigError."""
        cached = self._agents.get(name)
        if cached is not None:
            return cached
        entry = self.entry(name)
        definition = self._read(entry.file, key=f"agents.{name}.file")
        if not definition.strip():
            raise ConfigError("agent definition file is empty", path=self.path, key=f"agents.{name}.file")
        contract = None
        if entry.contract:
            contract = self._read(entry.contract, key=f"agents.{name}.contract")
        agent = Agent(name=name, definition=definition, contract=contract, entry=entry)
        self._agents[name] = agent
        return agent

    def workflow(self, name: str) -> list[str]:
        try:
            return list(self.data.workflows[name])
        except KeyError:
            known = ", ".join(sorted(self.data.workflows)) or "none"
            raise UnknownWorkflow(
                f"unknown workflow {safe(name, 64)!r} (known: {safe(known, 300)})",
                path=self.path,
                key="workflows",
            ) from None

    def _read(self, relative: str, *, key: str) -> str:
        try:
            return read_confined(self.root, relative, max_bytes=self.max_file_bytes, key=key)
        except ConfigError as exc:
            # Re-raise with the config path attached so the message names the file and the key.
            raise type(exc)(exc.message.split(": ", 1)[-1], path=self.path, key=key) from None

    def validate_all(self) -> list[str]:
        """Load every agent and check every workflow step; returns a list of problems (empty when valid)."""
        problems: list[str] = []
        for name in self.data.agents:
            try:
                self.agent(name)
            except ConfigError as exc:
                problems.append(exc.message)
        for wf, steps in self.data.workflows.items():
            if not steps:
                problems.append(f"{self.path} [workflows.{wf}]: workflow has no steps")
            for step in steps:
                if step not in self.data.agents:
                    problems.append(f"{self.path} [workflows.{wf}]: unknown agent {safe(step, 64)!r}")
        return problems


def load_config(path: str | Path, *, max_file_bytes: int = C.DEFAULT_MAX_FILE_BYTES) -> ProjectConfig:
    """Read and validate a ``claude.json``. Raises a :class:`ConfigError` naming the file and the key."""
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError
        if not stat.S_ISREG(mode):  # a FIFO or a device would block the read or never end
            raise ConfigError("config path is not a regular file", path=p)
        with open(p, "rb") as fh:
            raw = fh.read(C.DEFAULT_MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigNotFound(
            "config file not found (run `claude-force init` to create one)", path=p
        ) from None
    except IsADirectoryError:
        raise ConfigError("config path is a directory, expected claude.json", path=p) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", path=p) from None
    if len(raw) > C.DEFAULT_MAX_CONFIG_BYTES:
        raise FileTooLarge(f"config is larger than {C.DEFAULT_MAX_CONFIG_BYTES} bytes", path=p)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc}", path=p) from None
    if not isinstance(doc, dict):
        raise ConfigError("top level must be a JSON object", path=p)
    try:
        data = ConfigFile.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(first["msg"], path=p, key=key) from None
    for wf, steps in data.workflows.items():
        for step in steps:
            if step not in data.agents:
                raise UnknownAgent(
                    f"workflow step names unknown agent {safe(step, 64)!r}", path=p, key=f"workflows.{wf}"
                )
    return ProjectConfig(path=p, root=p.resolve().parent, data=data, max_file_bytes=max_file_bytes)
