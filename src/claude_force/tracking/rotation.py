"""The sink's file operations: append a batch to ``tasks.jsonl`` and rotate by size, under a directory lock.

Several writers (processes, or several sinks in one process) may share one metrics directory. Each batch is
written while holding an exclusive ``flock`` on ``<directory>/tasks.lock``: the size check, the rename chain
and the append happen as one step, so no writer renames a file another is about to append to. The size comes
from ``fstat`` of the live file, opened afresh under the lock, never from a cached value: a file rotated by
another writer is simply not the one opened.

Before appending to a non-empty file that does not end in ``\\n`` (a crash left half a line), a newline is
written first, so the torn line stays one malformed line that the loader skips and the new records survive.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    # Windows has no flock: writers there are not serialised, so each process needs its own metrics directory.
    fcntl = None  # type: ignore[assignment]

FILE_NAME = "tasks.jsonl"
LOCK_NAME = "tasks.lock"

_FLAGS = (
    os.O_CREAT
    | getattr(os, "O_NOFOLLOW", 0)  # a symlinked file is refused (ELOOP), not followed
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)  # Windows: no newline translation
)


@contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<directory>/tasks.lock`` (blocking). No-op lock where ``fcntl`` is missing.

    The lock file is opened for each use: ``flock`` locks belong to an open file description, so two sinks in
    one process exclude each other too, and a descriptor inherited across ``fork`` is never shared.
    """
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | _FLAGS, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _open_live(directory: Path) -> int:
    return os.open(directory / FILE_NAME, os.O_RDWR | os.O_APPEND | _FLAGS, 0o600)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _ends_torn(fd: int, size: int) -> bool:
    """Whether the file (``size`` > 0 bytes) does not end in a newline."""
    os.lseek(fd, size - 1, os.SEEK_SET)  # O_APPEND: the next write still goes to the end
    return os.read(fd, 1) != b"\n"


def append(directory: Path, data: bytes, *, rotate_bytes: int, keep_files: int) -> None:
    """Append ``data`` (whole lines) to the live file, rotating first if it would pass ``rotate_bytes``."""
    with directory_lock(directory):
        fd = _open_live(directory)
        try:
            size = os.fstat(fd).st_size
            if size > 0 and size + len(data) > rotate_bytes:
                os.close(fd)
                fd = -1
                rotate(directory, keep_files)
                fd = _open_live(directory)
                size = os.fstat(fd).st_size
            if size > 0 and _ends_torn(fd, size):
                _write_all(fd, b"\n")
            _write_all(fd, data)
        finally:
            if fd >= 0:
                os.close(fd)


def rotate(directory: Path, keep_files: int) -> None:
    """``tasks.jsonl`` -> ``tasks.1.jsonl`` -> ... -> ``tasks.<keep_files>.jsonl`` (the oldest is deleted).

    Call with :func:`directory_lock` held.
    """
    if keep_files == 0:
        (directory / FILE_NAME).unlink(missing_ok=True)
        return
    (directory / f"tasks.{keep_files}.jsonl").unlink(missing_ok=True)
    for i in range(keep_files - 1, 0, -1):
        src = directory / f"tasks.{i}.jsonl"
        if src.exists():
            os.replace(src, directory / f"tasks.{i + 1}.jsonl")
    os.replace(directory / FILE_NAME, directory / "tasks.1.jsonl")
