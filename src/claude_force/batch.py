"""JSONL batches: validate the input up front, stream it, append results as they finish, resume after a kill.

Input lines are ``{"id", "agent", "task", ...}``. Output lines are the ``--json`` result shape plus ``id``.
A file that cannot be opened (input or output) is a :class:`BatchInputError`, reported before any call is made.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from claude_force import constants as C
from claude_force.errors import BatchInputError
from claude_force.models import AgentResult

logger = logging.getLogger("claude_force.batch")

_TASK_KEYS = ("agent", "task")


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


@dataclass(frozen=True, slots=True)
class BatchTask:
    """One input line."""

    id: str
    line: int
    spec: dict[str, Any]


def _parse_line(raw: bytes, number: int, max_line_bytes: int) -> dict[str, Any] | None:
    if len(raw) > max_line_bytes:
        raise BatchInputError(f"line is longer than the limit of {max_line_bytes} bytes", line=number)
    if not raw.strip():
        return None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BatchInputError(f"invalid JSON ({exc})", line=number) from None
    if not isinstance(obj, dict):
        raise BatchInputError("each line must be a JSON object", line=number)
    ident = obj.get("id")
    if isinstance(ident, int) and not isinstance(ident, bool):
        obj["id"] = ident = str(ident)
    if not isinstance(ident, str) or not ident:
        raise BatchInputError("missing 'id' (a non-empty string or an integer)", line=number)
    for key in _TASK_KEYS:
        if not isinstance(obj.get(key), str) or (key == "agent" and not obj[key]):
            raise BatchInputError(
                f"'{key}' must be a non-empty string" if key == "agent" else "'task' must be a string",
                line=number,
            )
    return obj


def _lines(path: Path, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        number = 0
        while True:
            raw = fh.readline(max_line_bytes + 2)
            if not raw:
                return
            number += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                raise BatchInputError(f"line is longer than the limit of {max_line_bytes} bytes", line=number)
            yield number, raw


def validate_input(path: Path, *, max_line_bytes: int = C.DEFAULT_MAX_BATCH_LINE_BYTES) -> frozenset[str]:
    """First pass: check every line and reject duplicate or missing ids. Returns the ids."""
    seen: dict[str, int] = {}
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            # It is read twice (validate, then stream): a pipe or a device would hang or lose the first pass.
            raise BatchInputError(f"input must be a regular file: {path}")
        for number, raw in _lines(path, max_line_bytes):
            obj = _parse_line(raw.rstrip(b"\r\n"), number, max_line_bytes)
            if obj is None:
                continue
            first = seen.get(obj["id"])
            if first is not None:
                raise BatchInputError(f"duplicate id {obj['id'][:64]!r} (first on line {first})", line=number)
            seen[obj["id"]] = number
    except FileNotFoundError:
        raise BatchInputError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise BatchInputError(f"input path is a directory: {path}") from None
    except OSError as exc:
        raise BatchInputError(f"cannot read input file {path}: {_why(exc)}") from None
    return frozenset(seen)


def iter_tasks(
    path: Path, *, skip: frozenset[str] = frozenset(), max_line_bytes: int = C.DEFAULT_MAX_BATCH_LINE_BYTES
) -> Iterator[BatchTask]:
    """Second pass: stream the (already validated) tasks, skipping ids in ``skip``."""
    for number, raw in _lines(path, max_line_bytes):
        obj = _parse_line(raw.rstrip(b"\r\n"), number, max_line_bytes)
        if obj is None or obj["id"] in skip:
            continue
        yield BatchTask(id=obj["id"], line=number, spec=obj)


def check_output(input_path: Path, output_path: Path, *, resume: bool) -> None:
    """Refuse, before any call, an output that would destroy data: the input file itself, or (without
    ``resume``) a file that already holds results. Raises :class:`BatchInputError`."""
    try:
        same = os.path.samefile(input_path, output_path)
    except OSError:
        same = False  # the output does not exist yet (or cannot be read: opening it reports that)
    if same:
        raise BatchInputError(f"the output file {output_path} is the input file; write the results elsewhere")
    if resume:
        return
    try:
        st = os.stat(output_path)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_size > 0:  # a pipe or a device holds nothing to lose
        raise BatchInputError(
            f"the output file {output_path} already holds results, and writing to it would empty it; pass "
            "--resume to continue that batch, or choose another file"
        )


def completed_ids(path: Path) -> frozenset[str]:
    """Ids already in an output file.

    A torn last line (no newline: the process was killed mid-write) is cut off, so appending starts on a fresh
    line; a last line that is a whole result and lacks only its newline is kept, and the newline added. An
    unparseable line anywhere else is skipped and counted (one WARNING), never cut: every good result after it
    is kept.
    """
    try:
        fh = open(path, "r+b")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return frozenset()
    except OSError as exc:
        raise BatchInputError(f"cannot open output file {path} to resume: {_why(exc)}") from None
    done: set[str] = set()
    bad = 0
    with fh:
        end = 0
        for raw in fh:
            start, end = end, end + len(raw)
            last = not raw.endswith(b"\n")  # only the last line can lack its newline
            if not raw.strip():
                if last:
                    fh.truncate(start)  # trailing blanks without a newline: appending starts on a fresh line
                continue
            task_id = _result_id(raw)
            if task_id is not None:
                done.add(task_id)
                if last:
                    fh.write(b"\n")  # a whole result: finish its line so appending starts on a fresh one
            elif last:
                fh.truncate(start)  # torn mid-write: cut it, its task runs again
            else:
                bad += 1
    if bad:
        logger.warning("resume: skipped %d unreadable line(s) in %s; their tasks run again", bad, path)
    return frozenset(done)


def _result_id(raw: bytes) -> str | None:
    """The ``id`` of an output line that is a whole result, else None."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    task_id = obj.get("id") if isinstance(obj, dict) else None
    return task_id if isinstance(task_id, str) else None


class ResultWriter:
    """Appends one JSON line per result and flushes it at once, so a kill loses at most the line being written."""

    def __init__(self, path: Path, *, append: bool) -> None:
        try:
            self._fh: IO[bytes] = open(path, "ab" if append else "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise BatchInputError(f"cannot write output file {path}: {_why(exc)}") from None

    def write(self, task_id: str, result: AgentResult) -> None:
        record = {"id": task_id, **result.to_dict()}
        self._fh.write(orjson.dumps(record) + b"\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.flush()
        if stat.S_ISREG(os.fstat(self._fh.fileno()).st_mode):  # fsync of a pipe or a tty is an error (EINVAL)
            os.fsync(self._fh.fileno())
        self._fh.close()
