"""Path confinement: a file named by the config may not leave the config's directory.

Containment compares resolved paths (``Path.is_relative_to`` semantics via ``relative_to``), never strings, and
symlinks are resolved before the check, so a link pointing outside the root is refused. Only regular files are
read: a FIFO, a device or a socket is refused before it is opened (and again after, on the open descriptor), so
reading the config's files can never block.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from claude_force.errors import ConfigError, FileTooLarge, UnsafePath


def confine(root: Path, relative: str | os.PathLike[str], *, key: str | None = None) -> Path:
    """Resolve ``relative`` under ``root`` and refuse anything that escapes it (``..``, absolute, symlink)."""
    if "\x00" in os.fspath(relative):  # the OS would refuse it with a bare ValueError
        raise UnsafePath("path may not contain a NUL character", key=key)
    rel = Path(relative)
    if rel.is_absolute():
        raise UnsafePath(f"path must be relative to the config directory, got {str(rel)!r}", key=key)
    if ".." in rel.parts:
        raise UnsafePath(f"path may not contain '..': {str(rel)!r}", key=key)
    real_root = root.resolve()
    candidate = (real_root / rel).resolve()
    try:
        candidate.relative_to(real_root)
    except ValueError:
        raise UnsafePath(
            f"path {str(rel)!r} resolves outside the config directory (symlink escape)", key=key
        ) from None
    return candidate


def read_confined(root: Path, relative: str, *, max_bytes: int, key: str | None = None) -> str:
    """Read a UTF-8 text file confined under ``root``, refusing files larger than ``max_bytes``."""
    path = confine(root, relative, key=key)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ConfigError(f"not a regular file: {relative!r}", key=key)
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, opening it still cannot hang.
        flags = (
            os.O_RDONLY
            | getattr(os, "O_NONBLOCK", 0)
            | getattr(os, "O_CLOEXEC", 0)
            | getattr(os, "O_BINARY", 0)
        )
        fd = os.open(path, flags)
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError(f"not a regular file: {relative!r}", key=key)
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ConfigError(f"file not found: {relative!r}", key=key) from None
    except IsADirectoryError:
        raise ConfigError(f"not a file: {relative!r}", key=key) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {relative!r}: {exc.strerror}", key=key) from None
    if len(data) > max_bytes:
        raise FileTooLarge(f"{relative!r} is larger than the limit of {max_bytes} bytes", key=key)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{relative!r} is not valid UTF-8", key=key) from None
