"""Cache-directory safety: where the cache lives, and what it must pass before anything is written there.

The allowed root, below which no path component may be a symlink:

* the user's home directory, when the cache dir lies under it (the home itself may be a symlink, as on
  systems where ``/home`` points elsewhere);
* otherwise the nearest existing ancestor of the cache dir: every component created below it is created here
  with mode 0700 and re-checked with ``lstat`` after creation.

The cache dir itself, whatever the root, must not be a symlink, must be a directory owned by the current
user, and must not be group- or world-writable. New directories are created 0700; files inside are created
0600. Containment always compares :class:`~pathlib.Path` objects, never strings.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Final

import platformdirs

from claude_force.errors import UnsafeCacheDir
from claude_force.security.sanitize import safe

__all__ = ["DB_NAME", "check_db_file", "create_db_file", "default_cache_dir", "ensure_cache_dir"]

DB_NAME: Final = "cache.sqlite3"
#: SQLite's side files; each must be as safe as the database itself.
DB_SIDE_SUFFIXES: Final = ("-wal", "-shm", "-journal")


def default_cache_dir() -> Path:
    """``platformdirs.user_cache_dir("claude-force")``."""
    return Path(platformdirs.user_cache_dir("claude-force"))


def _uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def _absolute(path: Path) -> Path:
    # abspath normalises "." and ".." lexically without following symlinks, so the symlink checks below
    # still see every component as it is on disk.
    return Path(os.path.abspath(path.expanduser()))


def _allowed_root(target: Path, home: Path | None) -> Path:
    if home is not None:
        home = _absolute(home)
        if target != home and home in target.parents:
            return home
    ancestor = target.parent
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    return ancestor


def ensure_cache_dir(path: Path | None = None, *, home: Path | None = None) -> Path:
    """Create (0700) or check the cache directory and return its absolute path; raise ``UnsafeCacheDir``.

    ``home`` defaults to :meth:`Path.home`; see the module docstring for what is checked.

    Example::

        cache_dir = ensure_cache_dir(settings.cache.dir)  # None means the platform default
    """
    target = _absolute(default_cache_dir() if path is None else Path(path))
    if home is None:
        try:
            home = Path.home()
        except (KeyError, RuntimeError):  # no home directory: only the nearest-ancestor rule applies
            home = None
    root = _allowed_root(target, home)
    # Walk down from the root, creating what is missing, and lstat every component below the root.
    current = root
    for part in target.relative_to(root).parts:
        current = current / part
        try:
            os.mkdir(current, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise UnsafeCacheDir(
                f"cannot create cache dir component {safe(current)}: {exc.strerror}"
            ) from None
        st = os.lstat(current)
        if stat.S_ISLNK(st.st_mode):
            what = "cache dir" if current == target else f"component {safe(current)}"
            raise UnsafeCacheDir(f"{what} is a symlink")
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeCacheDir(f"cache dir component {safe(current)} is not a directory")
    _check_final(target)
    return target


def _check_final(target: Path) -> None:
    try:
        st = os.lstat(target)
    except OSError as exc:
        raise UnsafeCacheDir(f"cannot inspect cache dir {safe(target)}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeCacheDir("cache dir is a symlink")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeCacheDir(f"cache dir {safe(target)} is not a directory")
    uid = _uid()
    if uid is None:
        return
    if st.st_uid != uid:
        raise UnsafeCacheDir(f"cache dir {safe(target)} is owned by uid {st.st_uid}, not by uid {uid}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        raise UnsafeCacheDir(f"cache dir {safe(target)}: mode {oct(mode)} is group/world-writable")


def check_db_file(path: Path) -> None:
    """Refuse a database (or WAL/SHM side file) that is a symlink, not a regular file, or someone else's.

    Raises ``UnsafeCacheDir`` for those, ``OSError`` if a file cannot be inspected at all.

    A missing file passes (it is created inside the already-checked 0700 directory). An existing file that is
    readable by others has the group/other bits cleared (0644 becomes 0600, 0444 becomes 0400) rather than being
    refused: it is ours, and the directory protects it. For the same reason a chmod that fails (a read-only
    filesystem, say) is not fatal: it would only have tightened the mode.
    """
    uid = _uid()
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in DB_SIDE_SUFFIXES)):
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            continue
        # Any other OSError (the directory replaced by a file, an I/O error) propagates: it is a storage
        # failure, not an unsafe file, and the store counts it and degrades (it never opens what it could not
        # check).
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeCacheDir(f"cache database file {safe(candidate.name)} is a symlink")
        if not stat.S_ISREG(st.st_mode):
            continue  # not our attack surface: SQLite fails to open it and the cache degrades to misses
        if uid is not None and st.st_uid != uid:
            raise UnsafeCacheDir(f"cache database file {safe(candidate.name)} is owned by uid {st.st_uid}")
        mode = stat.S_IMODE(st.st_mode)
        if uid is not None and mode & 0o077:
            with contextlib.suppress(OSError):
                os.chmod(candidate, mode & ~0o077)  # never adds a bit: a 0444 file stays unwritable


def create_db_file(path: Path) -> None:
    """Create an empty database file with mode 0600 (exclusive, never through a symlink), if it is missing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return
    os.close(fd)
