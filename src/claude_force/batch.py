"""JSONL batches: validate the input up front, stream it, append results as they finish, resume after a kill.

Input lines are ``{"id", "agent", "task", ...}``. Output lines are the ``--json`` result shape plus ``id``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from claude_force import constants as C
from claude_force.errors import BatchInputError
from claude_force.models import AgentResult

_TASK_KEYS = ("agent", "task")


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


def completed_ids(path: Path) -> frozenset[str]:
    """Ids already in an output file. A torn last line (the process was killed mid-write) is cut off."""
    if not path.exists():
        return frozenset()
    done: set[str] = set()
    with open(path, "r+b") as fh:
        good_end = 0
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                break
            if isinstance(obj, dict) and isinstance(obj.get("id"), str):
                done.add(obj["id"])
            good_end += len(raw)
        fh.truncate(good_end)
    return frozenset(done)


class ResultWriter:
    """Appends one JSON line per result and flushes it at once, so a kill loses at most the line being written."""

    def __init__(self, path: Path, *, append: bool) -> None:
        self._fh: IO[bytes] = open(path, "ab" if append else "wb")  # noqa: SIM115 - closed in close()

    def write(self, task_id: str, result: AgentResult) -> None:
        record = {"id": task_id, **result.to_dict()}
        self._fh.write(orjson.dumps(record) + b"\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
