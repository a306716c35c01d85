"""Resolved settings and their precedence: CLI flag > ``CLAUDE_FORCE_*`` environment > config > defaults.

Every default lives in :mod:`claude_force.constants`. ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` are read as
the official SDK reads them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from claude_force import constants as C
from claude_force.errors import ConfigError

InjectionPolicy = Literal["off", "flag", "block"]
PromptCacheTTL = Literal["5m", "1h", "off"]
TransportName = Literal["native", "sdk", "mock"]


class ModelLimits(BaseModel):
    """Rate limits for one model; each is optional (None = unlimited)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: float | None = Field(default=None, gt=0)
    input_tpm: float | None = Field(default=None, gt=0)
    output_tpm: float | None = Field(default=None, gt=0)


class CacheSettings(BaseModel):
    """``orchestrator.cache`` block."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    enabled: bool = True
    dir: Path | None = None
    ttl_hours: float = Field(default=C.DEFAULT_CACHE_TTL_HOURS, gt=0)
    max_memory_mb: float = Field(default=C.DEFAULT_CACHE_MAX_MEMORY_MB, ge=0)
    max_disk_mb: float = Field(default=C.DEFAULT_CACHE_MAX_DISK_MB, gt=0)
    max_entry_bytes: int = Field(default=C.DEFAULT_CACHE_MAX_ENTRY_BYTES, gt=0)
    agent_quota_mb: float | None = Field(default=None, gt=0)


class Settings(BaseModel):
    """Everything the orchestrator needs, after precedence is applied. Also the ``orchestrator`` config block."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    default_model: str = Field(default=C.DEFAULT_MODEL, min_length=1, alias="model")
    max_tokens: int = Field(default=C.DEFAULT_MAX_TOKENS, gt=0)
    max_concurrency: int = Field(default=C.DEFAULT_MAX_CONCURRENCY, gt=0, le=100_000)
    timeout_seconds: float = Field(default=C.DEFAULT_TIMEOUT_SECONDS, gt=0)
    deadline_seconds: float = Field(default=C.DEFAULT_DEADLINE_SECONDS, gt=0)
    transport: TransportName = C.DEFAULT_TRANSPORT
    base_url: str = C.DEFAULT_BASE_URL
    api_key: SecretStr | None = None
    # retry
    max_attempts: int = Field(default=C.DEFAULT_MAX_ATTEMPTS, ge=1, le=100)
    # limiter
    rpm: float | None = Field(default=None, gt=0)
    input_tpm: float | None = Field(default=None, gt=0)
    output_tpm: float | None = Field(default=None, gt=0)
    rate_limits: dict[str, ModelLimits] = Field(default_factory=dict)
    # cache
    cache: CacheSettings = Field(default_factory=CacheSettings)
    cache_secret: SecretStr | None = None
    # prompt caching, screening, budget
    prompt_cache_ttl: PromptCacheTTL = C.DEFAULT_PROMPT_CACHE_TTL
    injection_policy: InjectionPolicy = C.DEFAULT_INJECTION_POLICY
    #: Set by ``--injection-policy`` / ``CLAUDE_FORCE_INJECTION_POLICY``: beats the per-agent setting too.
    injection_policy_override: InjectionPolicy | None = None
    canary: bool = True
    budget_usd: float | None = Field(default=None, ge=0)
    prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    # limits
    max_file_bytes: int = Field(default=C.DEFAULT_MAX_FILE_BYTES, gt=0)
    max_task_chars: int = Field(default=C.DEFAULT_MAX_TASK_CHARS, gt=0)
    max_task_tokens: int = Field(default=C.DEFAULT_MAX_TASK_TOKENS, gt=0)
    max_response_bytes: int = Field(default=C.DEFAULT_MAX_RESPONSE_BYTES, gt=0)
    max_tasks_per_call: int = Field(default=C.DEFAULT_MAX_TASKS_PER_CALL, gt=0)
    # tracking
    metrics_dir: Path | None = None
    #: Prometheus counters and OpenTelemetry spans, when those optional packages are installed.
    telemetry: bool = True
    #: With True, callers wait out an open circuit's cool-down instead of failing fast with ``circuit_open``.
    breaker_wait_when_open: bool = False

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return v.rstrip("/")

    def limits_for(self, model: str) -> ModelLimits:
        """The per-model limits, falling back to the global ``rpm``/``input_tpm``/``output_tpm``."""
        specific = self.rate_limits.get(model)
        if specific is not None:
            return specific
        return ModelLimits(rpm=self.rpm, input_tpm=self.input_tpm, output_tpm=self.output_tpm)


#: Environment variables and the setting each one sets.
ENV_VARS: dict[str, str] = {
    "CLAUDE_FORCE_MODEL": "default_model",
    "CLAUDE_FORCE_MAX_TOKENS": "max_tokens",
    "CLAUDE_FORCE_MAX_CONCURRENCY": "max_concurrency",
    "CLAUDE_FORCE_TIMEOUT": "timeout_seconds",
    "CLAUDE_FORCE_DEADLINE": "deadline_seconds",
    "CLAUDE_FORCE_TRANSPORT": "transport",
    "CLAUDE_FORCE_MAX_ATTEMPTS": "max_attempts",
    "CLAUDE_FORCE_RPM": "rpm",
    "CLAUDE_FORCE_INPUT_TPM": "input_tpm",
    "CLAUDE_FORCE_OUTPUT_TPM": "output_tpm",
    "CLAUDE_FORCE_INJECTION_POLICY": "injection_policy_override",
    "CLAUDE_FORCE_PROMPT_CACHE_TTL": "prompt_cache_ttl",
    "CLAUDE_FORCE_BUDGET_USD": "budget_usd",
    "CLAUDE_FORCE_METRICS_DIR": "metrics_dir",
}


def resolve_settings(
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_block: Mapping[str, Any] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Merge the four sources. ``None`` values in ``flags`` mean "not given". Raises :class:`ConfigError`."""
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    block = dict(config_block or {})
    if "default_model" in block and "model" not in block:
        block["model"] = block.pop("default_model")
    if "max_concurrent" in block and "max_concurrency" not in block:
        block["max_concurrency"] = block.pop("max_concurrent")
    merged.update(block)
    cache_block = dict(merged.get("cache") or {}) if isinstance(merged.get("cache"), dict) else {}
    for var, key in ENV_VARS.items():
        if env.get(var):
            merged["model" if key == "default_model" else key] = env[var]
    if env.get("ANTHROPIC_BASE_URL"):
        merged["base_url"] = env["ANTHROPIC_BASE_URL"]
    if env.get("ANTHROPIC_API_KEY"):
        merged["api_key"] = env["ANTHROPIC_API_KEY"]
    if env.get("CLAUDE_FORCE_CACHE_DIR"):
        cache_block["dir"] = env["CLAUDE_FORCE_CACHE_DIR"]
    for key, value in (flags or {}).items():
        if value is None:
            continue
        if key == "cache_dir":
            cache_block["dir"] = value
        elif key == "enable_cache":
            cache_block["enabled"] = value
        else:
            merged["model" if key == "default_model" else key] = value
    if cache_block:
        merged["cache"] = cache_block
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting: {first['msg']}", path=config_path, key=key) from None
