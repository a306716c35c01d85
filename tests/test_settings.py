"""Settings precedence: flag > CLAUDE_FORCE_* environment > config block > constants."""

from __future__ import annotations

import logging
from pathlib import Path

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


@pytest.mark.parametrize("key", ["sk-ant-ab\ncd", "sk-ant-ab cd", "sk-ant-ab\x00cd", "sk-ant-abcd\r"])
def test_an_api_key_no_header_can_carry_is_a_config_error(key: str) -> None:
    with pytest.raises(ConfigError, match=r"ANTHROPIC_API_KEY.*contains a space, a newline") as info:
        resolve_settings(env={"ANTHROPIC_API_KEY": key})
    assert "sk-ant-ab" not in str(info.value)


@pytest.mark.parametrize("bad", ["x", [], 5])
@pytest.mark.parametrize(
    ("env", "flags"), [({}, {}), ({"CLAUDE_FORCE_CACHE_DIR": "/e"}, {}), ({}, {"cache_dir": Path("/f")})]
)
def test_a_cache_block_that_is_not_an_object_is_an_error_even_when_its_dir_is_overridden(
    bad: object, env: dict[str, str], flags: dict[str, object]
) -> None:
    with pytest.raises(ConfigError, match=r"orchestrator\.cache.*must be an object"):
        resolve_settings(env=env, flags=flags, config_block={"cache": bad})


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
    assert info.value.key == f"orchestrator.{key}"
    assert f"[orchestrator.{key}]" in info.value.message


# --- bounds: every number is finite and bounded, so nothing downstream overflows ---------------------------------


@pytest.mark.parametrize(
    "block",
    [
        {"budget_usd": float("inf")},
        {"budget_usd": float("nan")},
        {"budget_usd": 1e300},
        {"rpm": float("inf")},
        {"input_tpm": float("inf")},
        {"output_tpm": 1e300},
        {"max_tokens": 2**31},
        {"max_tokens": 99999999999999999999999},
        {"timeout_seconds": float("inf")},
        {"deadline_seconds": 1e300},
        {"max_file_bytes": 2**63},
        {"rate_limits": {"m": {"rpm": float("inf")}}},
        {"cache": {"ttl_hours": float("inf")}},
        {"cache": {"max_disk_mb": 1e300}},
        {"cache": {"agent_quota_mb": float("nan")}},
        {"prices": {"m": {"input": 1e308, "output": 1.0}}},
        {"prices": {"m": {"input": float("inf"), "output": 1.0}}},
    ],
)
def test_absurd_numbers_are_config_errors(block: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_settings(env={}, config_block=block)
    assert info.value.key is not None and info.value.key.startswith(f"orchestrator.{next(iter(block))}")


def test_large_but_sane_numbers_are_accepted() -> None:
    s = resolve_settings(
        env={},
        config_block={"budget_usd": 1e9, "max_tokens": 2**31 - 1, "rpm": 1e6, "input_tpm": 1e10},
    )
    assert s.budget_usd == 1e9 and s.max_tokens == 2**31 - 1 and s.limits_for("x").input_tpm == 1e10


# --- errors name the source of the bad value -----------------------------------------------------------------


def test_env_error_names_the_variable_not_the_config() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_settings(
            env={"CLAUDE_FORCE_MAX_TOKENS": "abc"}, config_block={}, config_path=Path(".claude/claude.json")
        )
    assert info.value.message.startswith("environment variable CLAUDE_FORCE_MAX_TOKENS: invalid setting")
    assert "claude.json" not in info.value.message and info.value.path is None


def test_flag_error_names_the_flag() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_settings(
            flags={"default_model": ""},
            env={},
            config_path=Path(".claude/claude.json"),
            flag_names={"default_model": "--model"},
        )
    assert info.value.message.startswith("--model: invalid setting")
    with pytest.raises(ConfigError) as info:
        resolve_settings(flags={"cache_dir": "x", "budget_usd": float("inf")}, env={})
    assert info.value.message.startswith("argument budget_usd: invalid setting")


def test_config_error_names_the_orchestrator_key_and_file() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_settings(env={}, config_block={"cache": {"ttl_hours": 0}}, config_path=Path("p/claude.json"))
    assert info.value.message.startswith("p/claude.json [orchestrator.cache.ttl_hours]: invalid setting")
    # A key set by the environment and then by a flag is reported as the flag's (the value that was used).
    with pytest.raises(ConfigError) as info:
        resolve_settings(env={"CLAUDE_FORCE_CACHE_DIR": "/x"}, flags={"cache_dir": 5}, config_block={})
    assert info.value.message.startswith("argument cache_dir: invalid setting")


# --- secrets: environment beats config; a secret in the config is warned about ---------------------------------


def test_cache_secret_env_beats_config(monkeypatch: pytest.MonkeyPatch) -> None:
    block = {"cache_secret": "c" * 40}
    s = resolve_settings(env={}, config_block=block)
    assert s.cache_secret is not None and s.cache_secret.get_secret_value() == "c" * 40
    # A custom env mapping: its value is passed on.
    s = resolve_settings(env={"CLAUDE_CACHE_SECRET": "e" * 40}, config_block=block)
    assert s.cache_secret is not None and s.cache_secret.get_secret_value() == "e" * 40
    # The process environment: the config's value is dropped, so the cache reads (and names) the variable.
    monkeypatch.setenv("CLAUDE_CACHE_SECRET", "p" * 40)
    assert resolve_settings(config_block=block).cache_secret is None
    # An explicit argument still beats both.
    s = resolve_settings(flags={"cache_secret": "f" * 40}, config_block=block)
    assert s.cache_secret is not None and s.cache_secret.get_secret_value() == "f" * 40


@pytest.mark.parametrize(
    ("key", "var"), [("api_key", "ANTHROPIC_API_KEY"), ("cache_secret", "CLAUDE_CACHE_SECRET")]
)
def test_secret_in_config_is_warned_about(caplog: pytest.LogCaptureFixture, key: str, var: str) -> None:
    with caplog.at_level(logging.WARNING, logger="claude_force.settings"):
        resolve_settings(env={}, config_block={key: "s" * 40}, config_path=Path("p/claude.json"))
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert f"orchestrator.{key}" in message and "p/claude.json" in message and var in message
    assert "s" * 40 not in message
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="claude_force.settings"):
        resolve_settings(env={var: "s" * 40}, config_block={})
    assert caplog.records == []


def test_a_misspelt_keyword_is_an_error_with_a_hint() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown setting 'max_concurent' \(did you mean 'max_concurrent'\?\)"
    ):
        resolve_settings(env={}, flags={"max_concurent": 1})
    with pytest.raises(ConfigError, match=r"unknown setting 'bogus_option'$"):
        resolve_settings(env={}, flags={"bogus_option": True})
    # the config block stays lenient: a newer version's keys must not break an older one
    assert resolve_settings(env={}, config_block={"some_future_key": 1}).max_tokens == C.DEFAULT_MAX_TOKENS
