"""Persistence of task records: a JSONL sink that writes off the event loop, and a tolerant loader.

``JsonlSink.submit`` is called on the hot path: it appends to a bounded in-memory queue and never blocks (a
full queue drops the record and counts it). A daemon thread drains the queue in batches, appends to
``tasks.jsonl`` and rotates by size (``tasks.jsonl`` -> ``tasks.1.jsonl`` -> ...), under a lock on the
directory so that several writers can share it (see :mod:`claude_force.tracking.rotation`). A write failure is
counted and logged once; it never reaches the task. Records hold counters only: no task, output or system text.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from claude_force.security.sanitize import safe
from claude_force.tracking import rotation
from claude_force.tracking.rotation import FILE_NAME as FILE_NAME

logger = logging.getLogger("claude_force.tracking.sink")

DEFAULT_ROTATE_BYTES = 16 * 1024 * 1024
DEFAULT_KEEP_FILES = 5
DEFAULT_QUEUE_SIZE = 65_536
DEFAULT_BATCH_SIZE = 512
#: Seconds the writer waits for a full batch before writing what it has.
DEFAULT_FLUSH_INTERVAL = 0.5
#: Longest line the loader accepts; longer lines are skipped.
MAX_LINE_BYTES = 64 * 1024
MAX_NAME_CHARS = 200
SCHEMA_VERSION = 1


class Record(NamedTuple):
    """One finished task, as the tracker keeps it in its ring and the sink writes it (no text content)."""

    ts: float
    agent: str
    model: str
    success: bool
    error_code: str | None
    latency_ms: float
    attempts: int
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: float | None
    cached: bool
    coalesced: bool
    workflow: str | None
    position: int | None


FIELDS: tuple[str, ...] = Record._fields
_KEYS = ("v", *FIELDS)


def record_to_dict(rec: Record) -> dict[str, Any]:
    """The JSON object of one line: ``{"v": 1, "ts": ..., "agent": ..., ...}``."""
    return dict(zip(_KEYS, (SCHEMA_VERSION, *rec), strict=True))


# --- loading ------------------------------------------------------------------------------------------------


def _num(value: Any, *, integer: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not finite")
    if value < 0:
        raise ValueError("negative")
    return int(value) if integer else float(value)


def _name(value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME_CHARS:
        raise TypeError("bad name")
    return value


def record_from_dict(d: Any) -> Record:
    """Validate one decoded line (the disk is untrusted).

    Raises ``TypeError``, ``ValueError`` or ``KeyError`` on a bad shape.
    """
    if not isinstance(d, dict):
        raise TypeError("not an object")
    cost = d.get("cost_usd")
    pos = d.get("position")
    return Record(
        ts=float(_num(d["ts"])),
        agent=_name(d["agent"]) or "",
        model=_name(d.get("model", "")) or "",
        success=bool(d["success"]),
        error_code=_name(d.get("error_code"), optional=True),
        latency_ms=float(_num(d.get("latency_ms", 0.0))),
        attempts=int(_num(d.get("attempts", 0), integer=True)),
        input_tokens=int(_num(d.get("input_tokens", 0), integer=True)),
        output_tokens=int(_num(d.get("output_tokens", 0), integer=True)),
        cache_creation_input_tokens=int(_num(d.get("cache_creation_input_tokens", 0), integer=True)),
        cache_read_input_tokens=int(_num(d.get("cache_read_input_tokens", 0), integer=True)),
        cost_usd=None if cost is None else float(_num(cost)),
        cached=bool(d.get("cached", False)),
        coalesced=bool(d.get("coalesced", False)),
        workflow=_name(d.get("workflow"), optional=True),
        position=None if pos is None else int(_num(pos, integer=True)),
    )


def sink_files(sink_dir: Path) -> list[Path]:
    """The sink's files, oldest first: ``tasks.N.jsonl`` ... ``tasks.1.jsonl``, ``tasks.jsonl``."""
    rotated: list[tuple[int, Path]] = []
    for p in sink_dir.glob("tasks.*.jsonl"):
        middle = p.name[len("tasks.") : -len(".jsonl")]
        if middle.isdigit():
            rotated.append((int(middle), p))
    files = [p for _, p in sorted(rotated, reverse=True)]
    current = sink_dir / FILE_NAME
    if current.exists():
        files.append(current)
    return files


def load_records(sink_dir: Path | str) -> Iterator[Record]:
    """Every valid record in ``sink_dir``, oldest first.

    Truncated, oversized or malformed lines are skipped (a crash can leave a half-written last line). Raises
    ``FileNotFoundError`` if the directory does not exist.
    """
    sink_dir = Path(sink_dir)
    if not sink_dir.is_dir():
        raise FileNotFoundError(f"no metrics directory at {sink_dir}")
    for path in sink_files(sink_dir):
        skipped = 0
        try:
            fh = path.open("rb")
        except OSError as exc:
            logger.warning("cannot read metrics file %s: %s", safe(path), type(exc).__name__)
            continue
        with fh:
            for line in fh:
                if len(line) > MAX_LINE_BYTES or not line.strip():
                    skipped += bool(line.strip())
                    continue
                try:
                    yield record_from_dict(orjson.loads(line))
                except (orjson.JSONDecodeError, TypeError, ValueError, KeyError):
                    skipped += 1
        if skipped:
            logger.debug("skipped %d malformed lines in %s", skipped, safe(path))


# --- writing ------------------------------------------------------------------------------------------------


class JsonlSink:
    """Append records to ``<directory>/tasks.jsonl`` from a background thread.

    Example::

        sink = JsonlSink(directory=Path(".claude/metrics"))
        sink.submit(record)   # never blocks; drops (and counts) when the queue is full
        sink.close()          # flush and stop the thread (or: await sink.aclose())
    """

    __slots__ = (
        "_batch_size",
        "_closed",
        "_dir",
        "_dir_ready",
        "_finished",
        "_flush_interval",
        "_keep",
        "_lock",
        "_logged_encode",
        "_logged_error",
        "_queue",
        "_queue_size",
        "_rotate_bytes",
        "_stop",
        "_thread",
        "_wake",
        "dropped",
        "errors",
        "written",
    )

    def __init__(
        self,
        *,
        directory: Path,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
        keep_files: int = DEFAULT_KEEP_FILES,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    ) -> None:
        if rotate_bytes <= 0 or keep_files < 0 or queue_size <= 0 or batch_size <= 0 or flush_interval <= 0:
            raise ValueError("rotate_bytes, queue_size, batch_size and flush_interval must be > 0")
        self._dir = Path(directory)
        self._rotate_bytes = rotate_bytes
        self._keep = keep_files
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        # A deque's append/popleft are atomic under the GIL: the hot path takes no lock.
        self._queue: collections.deque[Record] = collections.deque()
        self._wake = threading.Event()
        self._stop = False
        self._closed = False
        # Set (under _lock) once close() has swept the queue: from then on nothing drains it but submit itself.
        self._finished = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._dir_ready = False
        self._logged_error = False
        self._logged_encode = False
        self.dropped = 0
        self.errors = 0
        self.written = 0

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def pending(self) -> int:
        return len(self._queue)

    def submit(self, rec: Record) -> None:
        """Queue one record; drop it (``dropped += 1``) if the queue is full or the sink is closed."""
        queue = self._queue
        if self._closed or len(queue) >= self._queue_size:
            self.dropped += 1
            return
        queue.append(rec)
        if self._closed:
            # close() ran between the check and the append: the record may be past the last drain.
            self._sweep_late()
            return
        if self._thread is None:
            self._start()
        elif len(queue) >= self._batch_size:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            t = threading.Thread(target=self._run, name="claude-force-metrics-sink", daemon=True)
            self._thread = t
            t.start()

    # --- writer thread --------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            stopping = self._stop
            self._drain()
            if stopping:
                self._drain()
                return

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch: list[Record] = []
            while queue and len(batch) < self._batch_size:
                batch.append(queue.popleft())
            data, n = self._encode(batch)
            if not n:
                continue
            try:
                self._write(data)
                self.written += n
            except Exception as exc:  # any failure is counted, logged once, and never reaches a task
                self.errors += 1
                self._dir_ready = False
                if not self._logged_error:
                    self._logged_error = True
                    logger.warning(
                        "metrics sink cannot write to %s (%s: %s); records are being dropped",
                        safe(self._dir),
                        type(exc).__name__,
                        safe(exc),
                    )

    def _encode(self, batch: list[Record]) -> tuple[bytes, int]:
        """The batch's lines and how many records they hold.

        A record orjson cannot encode (a lone surrogate in a name) is dropped and counted on its own, so it
        never costs the rest of its batch.
        """
        lines: list[bytes] = []
        for r in batch:
            try:
                lines.append(orjson.dumps(record_to_dict(r), option=orjson.OPT_APPEND_NEWLINE))
            except orjson.JSONEncodeError as exc:
                self.dropped += 1
                if not self._logged_encode:
                    self._logged_encode = True
                    logger.warning("metrics sink dropped a record it cannot encode (%s)", safe(exc))
        return b"".join(lines), len(lines)

    def _write(self, data: bytes) -> None:
        if not self._dir_ready:
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._dir_ready = True
        rotation.append(self._dir, data, rotate_bytes=self._rotate_bytes, keep_files=self._keep)

    # --- lifecycle ------------------------------------------------------------------------------------------

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything queued, then stop the writer thread. Idempotent; later submits are dropped.

        If the thread has not finished within ``timeout`` seconds, what is still queued is dropped, counted
        and logged (the thread is a daemon: it would be lost at exit anyway). A batch already being written
        may still complete.
        """
        with self._lock:
            self._closed = True
            t = self._thread
        if t is not None:
            self._stop = True
            self._wake.set()
            t.join(timeout)
        with self._lock:
            self._finished = True
            left = self._discard_queue()
        if left:  # the thread timed out (a daemon: these would be lost at exit), or a submit raced close()
            logger.warning("metrics sink %s closed with %d records unwritten; dropped", safe(self._dir), left)

    def _sweep_late(self) -> None:
        # A submit that raced close(): once close() has swept, nobody else will drain the queue.
        with self._lock:
            if self._finished:
                self._discard_queue()

    def _discard_queue(self) -> int:
        queue = self._queue
        n = 0
        while queue:
            try:
                queue.popleft()  # the writer thread may be popping too: each record goes to one of us
            except IndexError:
                break
            n += 1
        self.dropped += n
        return n

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self._thread is not None else "idle")
        return (
            f"JsonlSink(dir={str(self._dir)!r}, state={state}, pending={len(self._queue)}, "
            f"written={self.written}, dropped={self.dropped}, errors={self.errors})"
        )
