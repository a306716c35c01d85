"""The cache secret: where it comes from, and the rules it must pass.

Sources, first match wins: the explicit ``cache_secret`` argument, then ``CLAUDE_CACHE_SECRET``, then a per-
user key file of 32 random bytes (default ``platformdirs.user_config_dir("claude-force")/cache.key``),
created on first use with mode 0600, outside the cache directory. There is no built-in default secret
anywhere. (At the settings level the environment beats the config: :mod:`claude_force.settings` drops a
config ``cache_secret`` when ``CLAUDE_CACHE_SECRET`` is set, so only a flag or an argument beats the variable.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import platformdirs

from claude_force.constants import MIN_SECRET_BYTES
from claude_force.errors import SecretError
from claude_force.security.sanitize import register_secret, safe

__all__ = ["ENV_VAR", "KEY_FILE_NAME", "default_key_file", "resolve_secret"]

log = logging.getLogger("claude_force.cache.secret")

ENV_VAR: Final = "CLAUDE_CACHE_SECRET"
KEY_FILE_NAME: Final = "cache.key"
#: Secrets that appear in examples and must never be accepted.
KNOWN_BAD: Final = frozenset({b"default_secret_change_in_production"})
HOW_TO: Final = (
    'make one with: python -c "import secrets; print(secrets.token_hex(32))" and put it in '
    f"{ENV_VAR} or the cache_secret setting"
)


def default_key_file() -> Path:
    """``platformdirs.user_config_dir("claude-force")/cache.key``."""
    return Path(platformdirs.user_config_dir("claude-force")) / KEY_FILE_NAME


def _check(secret: bytes, source: str) -> bytes:
    if secret in KNOWN_BAD:
        raise SecretError(f"the cache secret from {source} is a published example value; {HOW_TO}")
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(
            f"the cache secret from {source} is {len(secret)} bytes; at least {MIN_SECRET_BYTES} are needed; "
            + HOW_TO
        )
    return secret


def _register(secret: bytes) -> None:
    register_secret(secret.hex())
    with contextlib.suppress(UnicodeDecodeError):
        register_secret(secret.decode("utf-8"))


def resolve_secret(
    explicit: str | bytes | None,
    *,
    env: Mapping[str, str] = os.environ,
    key_file: Path | None = None,
    cache_dir: Path | None = None,
) -> bytes:
    """The cache secret as bytes; raises :class:`~claude_force.errors.SecretError` naming the source at fault.

    ``cache_dir``, when given, is where the cache lives: a key file inside it is refused, because whoever can
    replace the cache's files must not also be able to read the key that signs them.

    Example::

        secret = resolve_secret(settings.cache_secret and settings.cache_secret.get_secret_value())
    """
    if explicit is not None:
        if not isinstance(
            explicit, (str, bytes, bytearray)
        ):  # bytes(123) would be 123 NUL bytes: a known key
            raise SecretError(f"the cache secret must be str or bytes, got {type(explicit).__name__}")
        raw = explicit.encode("utf-8") if isinstance(explicit, str) else bytes(explicit)
        secret = _check(raw, "the cache_secret setting")
    elif env.get(ENV_VAR):
        secret = _check(env[ENV_VAR].encode("utf-8"), f"the {ENV_VAR} environment variable")
    else:
        path = default_key_file() if key_file is None else Path(key_file)
        path = Path(os.path.abspath(path.expanduser()))
        if cache_dir is not None and _inside(path, cache_dir):
            raise SecretError(f"the key file {safe(path)} is inside the cache directory; keep it outside")
        secret = _check(_load_or_create(path), f"the key file {safe(path)}")
    _register(secret)
    return secret


def _inside(path: Path, directory: Path) -> bool:
    real_dir = Path(os.path.realpath(directory))
    real_path = Path(os.path.realpath(path))
    return real_path == real_dir or real_dir in real_path.parents


def _load_or_create(path: Path) -> bytes:
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    _create_key_file(path)
    return _read_key_file(path)


def _read_key_file(path: Path) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SecretError(f"cannot read the key file {safe(path)}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise SecretError(f"the key file {safe(path)} is a symlink; refusing it")
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SecretError(f"cannot open the key file {safe(path)}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SecretError(f"the key file {safe(path)} is not a regular file")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise SecretError(
                f"the key file {safe(path)} is owned by uid {st.st_uid}, not by you; refusing it"
            )
        mode = stat.S_IMODE(st.st_mode)
        if hasattr(os, "getuid") and mode & 0o077:
            raise SecretError(
                f"the key file {safe(path)} has mode {oct(mode)} and is readable by others; "
                f"run: chmod 600 {safe(path)} (or delete it to create a new one)"
            )
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    return data


def _create_key_file(path: Path) -> None:
    """Create the key file atomically: write a private temp file, then ``link`` it into place."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".cache.key.", dir=path.parent)  # O_CREAT | O_EXCL, mode 0600
    try:
        try:
            os.write(fd, secrets.token_bytes(MIN_SECRET_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
            log.info("created a new cache key file at %s", safe(path))
        except FileExistsError:
            pass  # another process won the race; its file is complete, because it was linked complete
        except OSError:
            # Filesystems without hard links: fall back to an exclusive create of the final name.
            _create_exclusive(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _create_exclusive(path: Path) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return
    try:
        os.write(fd, secrets.token_bytes(MIN_SECRET_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
