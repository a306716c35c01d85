"""resolve_secret: precedence, strength rules, and the per-user key file."""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from claude_force.cache import ResponseCache, resolve_secret
from claude_force.cache.secret import ENV_VAR, default_key_file
from claude_force.errors import SecretError
from claude_force.models import Response, Usage
from claude_force.security.sanitize import redact

GOOD = "0123456789abcdef0123456789abcdef-good"
OTHER = "fedcba9876543210fedcba9876543210-env!"


def test_explicit_wins_over_env_and_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "conf" / "cache.key"
    got = resolve_secret(GOOD, env={ENV_VAR: OTHER}, key_file=key_file)
    assert got == GOOD.encode()
    assert not key_file.exists()


def test_bytes_are_accepted_as_is() -> None:
    raw = bytes(range(40))
    assert resolve_secret(raw, env={}) == raw


def test_env_wins_over_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "conf" / "cache.key"
    assert resolve_secret(None, env={ENV_VAR: OTHER}, key_file=key_file) == OTHER.encode()
    assert not key_file.exists()


@pytest.mark.parametrize(
    ("explicit", "env", "source"),
    [
        ("short", {}, "cache_secret setting"),
        (None, {ENV_VAR: "x" * 31}, ENV_VAR),
        ("default_secret_change_in_production", {}, "cache_secret setting"),
        (None, {ENV_VAR: "default_secret_change_in_production"}, ENV_VAR),
    ],
)
def test_weak_secrets_are_refused_naming_the_source_and_the_fix(
    tmp_path: Path, explicit: str | None, env: dict[str, str], source: str
) -> None:
    with pytest.raises(SecretError) as info:
        resolve_secret(explicit, env=env, key_file=tmp_path / "k")
    message = str(info.value)
    assert source in message
    assert "secrets.token_hex(32)" in message
    assert info.value.code == "weak_secret"


def test_exactly_32_bytes_is_enough() -> None:
    assert len(resolve_secret("x" * 32, env={})) == 32


def test_empty_env_var_counts_as_unset(tmp_path: Path) -> None:
    key_file = tmp_path / "conf" / "cache.key"
    secret = resolve_secret(None, env={ENV_VAR: ""}, key_file=key_file)
    assert len(secret) == 32
    assert key_file.exists()


def test_key_file_is_created_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "conf" / "cache.key"
    first = resolve_secret(None, env={}, key_file=key_file)
    assert len(first) == 32
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key_file.parent).st_mode) == 0o700
    assert resolve_secret(None, env={}, key_file=key_file) == first
    assert [p.name for p in key_file.parent.iterdir()] == ["cache.key"]  # no temp file left behind


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    key_file = tmp_path / "conf" / "cache.key"
    results: list[bytes] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(resolve_secret(None, env={}, key_file=key_file))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1


def test_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(os.urandom(32))
    os.chmod(target, 0o600)
    link = tmp_path / "cache.key"
    link.symlink_to(target)
    with pytest.raises(SecretError, match="symlink"):
        resolve_secret(None, env={}, key_file=link)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_group_or_world_readable_key_file_is_refused(tmp_path: Path, mode: int) -> None:
    key_file = tmp_path / "cache.key"
    key_file.write_bytes(os.urandom(32))
    os.chmod(key_file, mode)
    with pytest.raises(SecretError, match="chmod 600"):
        resolve_secret(None, env={}, key_file=key_file)


def test_key_file_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "cache.key"
    key_file.write_bytes(os.urandom(32))
    os.chmod(key_file, 0o600)
    os.chown(key_file, 12345, 12345)  # the tests run as root, so chown works
    with pytest.raises(SecretError, match="owned by uid 12345"):
        resolve_secret(None, env={}, key_file=key_file)


def test_short_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "cache.key"
    key_file.write_bytes(b"short")
    os.chmod(key_file, 0o600)
    with pytest.raises(SecretError, match=r"key file .* is 5 bytes"):
        resolve_secret(None, env={}, key_file=key_file)


def test_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "cache.key"
    key_file.mkdir()
    with pytest.raises(SecretError):
        resolve_secret(None, env={}, key_file=key_file)


def test_key_file_inside_the_cache_dir_is_refused(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with pytest.raises(SecretError, match="inside the cache directory"):
        ResponseCache(cache_dir=cache_dir, key_file=cache_dir / "cache.key", env={})


def test_default_key_file_is_in_the_user_config_dir_not_the_cache_dir() -> None:
    path = default_key_file()
    assert path.name == "cache.key"
    assert "claude-force" in path.parts[-2]


def test_secret_is_registered_for_redaction_and_never_in_repr(tmp_path: Path) -> None:
    secret = "registered-secret-0123456789abcdef-xyz"
    cache = ResponseCache(cache_dir=tmp_path / "c", secret=secret)
    try:
        assert redact(f"leaked {secret}!") == "leaked [REDACTED]!"
        assert secret not in repr(cache)
        assert secret.encode().hex() not in repr(cache)
    finally:
        cache.close()


def test_key_file_secret_is_redacted_in_hex(tmp_path: Path) -> None:
    secret = resolve_secret(None, env={}, key_file=tmp_path / "k" / "cache.key")
    assert secret.hex() not in redact(f"x {secret.hex()} y")


def test_no_secret_anywhere_creates_a_key_file_rather_than_using_a_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="claude_force.cache.secret")
    key_file = tmp_path / "conf" / "cache.key"
    with ResponseCache(cache_dir=tmp_path / "c", key_file=key_file, env={}) as cache:
        assert cache.set("k", _resp(), agent="a")
    assert key_file.exists()
    assert "created a new cache key file" in caplog.text


def _resp() -> Response:
    return Response(text="t", model="m", usage=Usage())


@pytest.mark.parametrize("bad", [123, 1.5, ["s" * 64]])
def test_a_secret_that_is_not_text_or_bytes_is_refused(bad: object) -> None:
    with pytest.raises(SecretError, match="must be str or bytes"):
        resolve_secret(bad)  # type: ignore[arg-type]


def test_cache_sizes_must_be_finite(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="finite"):
        ResponseCache(cache_dir=tmp_path / "c", secret="s" * 64, max_disk_mb=float("inf"))
