"""Resolved settings and their precedence: CLI flag > ``CLAUDE_FORCE_*`` environment > config > defaults.

Every default lives in :mod:`claude_force.constants`. ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` are read as
the official SDK reads them; ``CLAUDE_CACHE_SECRET`` beats the config's ``cache_secret`` like any other variable.
Every number is finite and bounded, so an absurd value is a one-line :class:`ConfigError` naming where it came
from (the flag, the environment variable, or the config key), never an overflow deep inside a layer.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from claude_force import constants as C
from claude_force.errors import ConfigError
from claude_force.security.sanitize import safe

logger = logging.getLogger("claude_force.settings")

InjectionPolicy = Literal["off", "flag", "block"]
PromptCacheTTL = Literal["5m", "1h", "off"]
TransportName = Literal["native", "sdk", "mock"]

#: Upper bounds: far above any real use, low enough that no sum, product or conversion to an integer overflows.
MAX_INT = 2**31 - 1
MAX_BUDGET_USD = 1e9
MAX_RPM = 1e9
MAX_TPM = 1e12
MAX_SECONDS = 1e6
MAX_CACHE_HOURS = 24.0 * 365 * 100
MAX_CACHE_MB = 1e7
#: Prices are USD per million tokens; the same bound covers the multipliers and ``min_cacheable_tokens``.
MAX_PRICE = 1e6


class ModelLimits(BaseModel):
    """Rate limits for one model; each is optional (None = unlimited)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    rpm: float | None = Field(default=None, gt=0, le=MAX_RPM)
    input_tpm: float | None = Field(default=None, gt=0, le=MAX_TPM)
    output_tpm: float | None = Field(default=None, gt=0, le=MAX_TPM)


class CacheSettings(BaseModel):
    """``orchestrator.cache`` block."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    enabled: bool = True
    dir: Path | None = None
    ttl_hours: float = Field(default=C.DEFAULT_CACHE_TTL_HOURS, gt=0, le=MAX_CACHE_HOURS)
    max_memory_mb: float = Field(default=C.DEFAULT_CACHE_MAX_MEMORY_MB, ge=0, le=MAX_CACHE_MB)
    max_disk_mb: float = Field(default=C.DEFAULT_CACHE_MAX_DISK_MB, gt=0, le=MAX_CACHE_MB)
    max_entry_bytes: int = Field(default=C.DEFAULT_CACHE_MAX_ENTRY_BYTES, gt=0, le=MAX_INT)
    agent_quota_mb: float | None = Field(default=None, gt=0, le=MAX_CACHE_MB)


class Settings(BaseModel):
    """Everything the orchestrator needs, after precedence is applied. Also the ``orchestrator`` config block."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, allow_inf_nan=False)

    default_model: str = Field(default=C.DEFAULT_MODEL, min_length=1, alias="model")
    max_tokens: int = Field(default=C.DEFAULT_MAX_TOKENS, gt=0, le=MAX_INT)
    max_concurrency: int = Field(default=C.DEFAULT_MAX_CONCURRENCY, gt=0, le=100_000)
    timeout_seconds: float = Field(default=C.DEFAULT_TIMEOUT_SECONDS, gt=0, le=MAX_SECONDS)
    deadline_seconds: float = Field(default=C.DEFAULT_DEADLINE_SECONDS, gt=0, le=MAX_SECONDS)
    transport: TransportName = C.DEFAULT_TRANSPORT
    base_url: str = C.DEFAULT_BASE_URL
    api_key: SecretStr | None = None
    # retry
    max_attempts: int = Field(default=C.DEFAULT_MAX_ATTEMPTS, ge=1, le=100)
    # limiter
    rpm: float | None = Field(default=None, gt=0, le=MAX_RPM)
    input_tpm: float | None = Field(default=None, gt=0, le=MAX_TPM)
    output_tpm: float | None = Field(default=None, gt=0, le=MAX_TPM)
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
    budget_usd: float | None = Field(default=None, ge=0, le=MAX_BUDGET_USD)
    prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    # limits
    max_file_bytes: int = Field(default=C.DEFAULT_MAX_FILE_BYTES, gt=0, le=MAX_INT)
    max_task_chars: int = Field(default=C.DEFAULT_MAX_TASK_CHARS, gt=0, le=MAX_INT)
    max_task_tokens: int = Field(default=C.DEFAULT_MAX_TASK_TOKENS, gt=0, le=MAX_INT)
    max_response_bytes: int = Field(default=C.DEFAULT_MAX_RESPONSE_BYTES, gt=0, le=MAX_INT)
    max_tasks_per_call: int = Field(default=C.DEFAULT_MAX_TASKS_PER_CALL, gt=0, le=MAX_INT)
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

    @field_validator("api_key")
    @classmethod
    def _key_is_one_token(cls, v: SecretStr | None) -> SecretStr | None:
        # An HTTP header cannot carry it, so every task would fail; say so once, here (without the key itself).
        if v is not None and any(c.isspace() or not c.isprintable() for c in v.get_secret_value()):
            raise ValueError("the API key contains a space, a newline or another control character")
        return v

    @field_validator("prices")
    @classmethod
    def _bounded_prices(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for entry in v.values():
            for value in entry.values():
                if not (math.isfinite(value) and 0 <= value <= MAX_PRICE):
                    raise ValueError(f"each price must be a finite number between 0 and {MAX_PRICE:g}")
        return v

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


#: Other environment variables and the setting each one sets (read as the SDK and the cache read them).
_OTHER_ENV_VARS: dict[str, str] = {
    "ANTHROPIC_BASE_URL": "base_url",
    "ANTHROPIC_API_KEY": "api_key",
}
SECRET_ENV_VAR = "CLAUDE_CACHE_SECRET"  # noqa: S105 - the variable's name, not a secret
#: Secrets that do not belong in ``claude.json`` (often committed), and where to put them instead.
_SECRET_KEYS: dict[str, str] = {"api_key": "ANTHROPIC_API_KEY", "cache_secret": "CLAUDE_CACHE_SECRET"}


#: Names ``flags`` may use besides the settings' own (and their aliases): the cache's two, set under ``cache``.
_FLAG_ONLY = frozenset({"cache_dir", "enable_cache"})


def _check_flag_names(flags: Mapping[str, Any]) -> None:
    """A misspelt keyword (``max_concurent=1``) is an error, not a setting silently left at its default. (The
    config block stays lenient: a newer version's keys must not break an older one.)"""
    known = (
        _FLAG_ONLY | set(Settings.model_fields) | {f.alias for f in Settings.model_fields.values() if f.alias}
    )
    unknown = sorted(k for k in flags if k not in known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known | {"max_concurrent"}), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown setting {safe(unknown[0], 60)!r}{hint}")


def resolve_settings(
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_block: Mapping[str, Any] | None = None,
    config_path: Path | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the four sources. ``None`` values in ``flags`` mean "not given". Raises :class:`ConfigError`.

    The error names the source of the bad value: ``flag_names`` maps a ``flags`` key to what the caller calls
    it (the CLI passes ``{"max_tokens": "--max-tokens", ...}``), an environment variable by its name, a config
    value by its key under ``orchestrator.``. A secret set in the config block logs a WARNING.
    """
    env = os.environ if env is None else env
    _check_flag_names(flags or {})
    merged: dict[str, Any] = {}
    #: Where each value came from, by setting key (``cache.dir`` for the nested cache keys).
    sources: dict[str, str] = {}
    block = dict(config_block or {})
    if "default_model" in block and "model" not in block:
        block["model"] = block.pop("default_model")
    if "max_concurrent" in block and "max_concurrency" not in block:
        block["max_concurrency"] = block.pop("max_concurrent")
    for key, var in _SECRET_KEYS.items():
        if block.get(key):
            logger.warning(
                "orchestrator.%s is set in %s, a file that is often committed; set %s in the environment instead",
                key,
                config_path if config_path is not None else "the config",
                var,
            )
    merged.update(block)
    raw_cache = merged.get("cache")
    if raw_cache is not None and not isinstance(raw_cache, dict):
        # Checked here: a --cache-dir or CLAUDE_FORCE_CACHE_DIR below would otherwise replace the bad block unseen.
        raise ConfigError(
            f"invalid setting: must be an object, got {type(raw_cache).__name__}",
            path=config_path,
            key="orchestrator.cache",
        )
    cache_block = dict(raw_cache or {})
    for var, key in ENV_VARS.items():
        if env.get(var):
            merged["model" if key == "default_model" else key] = env[var]
            sources[key] = f"environment variable {var}"
    for var, key in _OTHER_ENV_VARS.items():
        if env.get(var):
            merged[key] = env[var]
            sources[key] = f"environment variable {var}"
    secret = env.get(SECRET_ENV_VAR)
    if secret:
        # The cache reads CLAUDE_CACHE_SECRET itself (and names it in its errors), so the environment beats the
        # config by dropping the config's value; a custom ``env`` mapping is passed on explicitly.
        merged.pop("cache_secret", None)
        if os.environ.get(SECRET_ENV_VAR) != secret:
            merged["cache_secret"] = secret
            sources["cache_secret"] = f"environment variable {SECRET_ENV_VAR}"
    if env.get("CLAUDE_FORCE_CACHE_DIR"):
        cache_block["dir"] = env["CLAUDE_FORCE_CACHE_DIR"]
        sources["cache.dir"] = "environment variable CLAUDE_FORCE_CACHE_DIR"
    names = flag_names or {}
    for key, value in (flags or {}).items():
        if value is None:
            continue
        where = names.get(key, f"argument {key}")
        if key == "cache_dir":
            cache_block["dir"] = value
            sources["cache.dir"] = where
        elif key == "enable_cache":
            cache_block["enabled"] = value
            sources["cache.enabled"] = where
        else:
            merged["model" if key == "default_model" else key] = value
            sources[key] = where
    if cache_block:
        merged["cache"] = cache_block
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        key = ".".join(loc)
        top = "default_model" if loc and loc[0] == "model" else (loc[0] if loc else "")
        source = sources.get(".".join(loc[:2])) or sources.get(top)
        message = f"invalid setting: {first['msg']}"
        if source is None:
            raise ConfigError(message, path=config_path, key=f"orchestrator.{key}") from None
        error = ConfigError(f"{source}: {message}")
        error.key = key
        raise error from None
