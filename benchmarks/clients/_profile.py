"""Turn a pyinstrument session into "top functions by self time" and "self time by module" tables.

The event loop waiting in ``epoll.poll`` is idle, not work, and is left out. Built-in (C) functions are
attributed to the module of the Python code that called them, so ``re.Pattern.search`` called by the injection
screen counts towards ``claude_force/security/injection.py``.
"""

from __future__ import annotations

from typing import Any

#: Function names (as pyinstrument reports them) that are the event loop waiting for I/O.
IDLE_FUNCTIONS = frozenset({"epoll.poll", "poll", "select", "select.select", "kqueue.control"})


def _module(path: str) -> str:
    """A short module bucket: ``claude_force/layers/cache.py``, ``aiohttp``, ``asyncio``, ..."""
    if "claude_force/" in path:
        return "claude_force/" + path.split("claude_force/", 1)[1]
    head = path.split("/", 1)[0]
    return head or path


def self_time_tables(session: Any, *, top: int = 25) -> dict[str, Any]:
    """``{"top_self": [...], "by_module": [...], "busy_s": ..., "idle_s": ...}`` for one session."""
    root = session.root_frame()
    by_function: dict[tuple[str, str, int], float] = {}
    by_module: dict[str, float] = {}
    idle = 0.0
    stack: list[tuple[Any, str]] = [(root, "?")] if root is not None else []
    while stack:
        frame, caller_module = stack.pop()
        path = str(frame.file_path_short or "")
        builtin = path.startswith("<") or not path
        module = caller_module if builtin else _module(path)
        children = list(frame.children)
        stack.extend((c, module) for c in children)
        if frame.is_synthetic:
            continue
        own = frame.time - sum(c.time for c in children if not c.is_synthetic)
        if own <= 0:
            continue
        name = str(frame.function)
        if name in IDLE_FUNCTIONS:
            idle += own
            continue
        key = (name, path, int(frame.line_no or 0))
        by_function[key] = by_function.get(key, 0.0) + own
        by_module[module] = by_module.get(module, 0.0) + own
    busy = sum(by_function.values()) or 1.0
    functions = sorted(by_function.items(), key=lambda kv: kv[1], reverse=True)[:top]
    modules = sorted(by_module.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return {
        "busy_s": round(busy, 3),
        "idle_s": round(idle, 3),
        "top_self": [
            {"function": f, "file": p, "line": ln, "self_s": round(t, 4), "share": round(t / busy, 4)}
            for (f, p, ln), t in functions
        ],
        "by_module": [{"module": m, "self_s": round(t, 4), "share": round(t / busy, 4)} for m, t in modules],
    }
