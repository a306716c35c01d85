"""Settings precedence: flag > CLAUDE_FORCE_* environment > config block > constants."""

from __future__ import annotations

import pytest

from claude_force import constants as C
from claude_force.errors import ConfigError
from claude_force.settings import resolve_settings


def test_defaults_come_from_constants() -> None:
    s = resolve_settings(env={})
    assert s.default_model == C.DEFAULT_MODEL
    assert s.max_concurrency == C.DEFAULT_MAX_CONCURRENCY
    assert s.base_url == C.DEFAULT_BASE_URL
    assert s.api_key is None


def test_precedence_flag_env_config_default() -> None:
    block = {"default_model": "from-config", "max_concurrency": 3, "rpm": 10, "max_tokens": 7}
    env = {"CLAUDE_FORCE_MODEL": "from-env", "CLAUDE_FORCE_MAX_CONCURRENCY": "4"}
    s = resolve_settings(flags={"max_concurrency": 5, "rpm": None}, env=env, config_block=block)
    assert s.default_model == "from-env"
    assert s.max_concurrency == 5
    assert s.rpm == 10
    assert s.max_tokens == 7
    s2 = resolve_settings(env={}, config_block=block)
    assert s2.default_model == "from-config" and s2.max_concurrency == 3


def test_anthropic_env_vars_are_honoured_and_key_hidden() -> None:
    s = resolve_settings(
        env={"ANTHROPIC_API_KEY": "sk-ant-secret-value-123", "ANTHROPIC_BASE_URL": "http://h:1/"}
    )
    assert s.base_url == "http://h:1"
    assert s.api_key is not None and s.api_key.get_secret_value() == "sk-ant-secret-value-123"
    assert "sk-ant-secret-value-123" not in repr(s)


def test_cache_dir_precedence() -> None:
    block = {"cache": {"dir": "/cfg", "ttl_hours": 2}}
    assert str(resolve_settings(env={}, config_block=block).cache.dir) == "/cfg"
    env = {"CLAUDE_FORCE_CACHE_DIR": "/env"}
    assert str(resolve_settings(env=env, config_block=block).cache.dir) == "/env"
    s = resolve_settings(flags={"cache_dir": "/flag", "enable_cache": False}, env=env, config_block=block)
    assert str(s.cache.dir) == "/flag" and s.cache.enabled is False and s.cache.ttl_hours == 2


def test_per_model_limits_fall_back_to_global() -> None:
    s = resolve_settings(
        env={}, config_block={"rpm": 60, "rate_limits": {"m1": {"rpm": 5, "output_tpm": 100}}}
    )
    assert s.limits_for("m1").rpm == 5 and s.limits_for("m1").output_tpm == 100
    assert s.limits_for("other").rpm == 60


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"transport": "smoke"}, "transport"),
        ({"base_url": "ftp://x"}, "base_url"),
    ],
)
def test_invalid_setting_names_key(block: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_settings(env={}, config_block=block)
    assert info.value.key == key
