"""Benchmark clients: each is ``python -m benchmarks.clients.<module> --url ... --n ... --concurrency ...``.

Every client prints exactly one JSON line on stdout (see :func:`benchmarks.clients._common.emit`).
"""

from __future__ import annotations

#: Client name (as used in the results) -> module under ``benchmarks.clients``.
CLIENT_MODULES: dict[str, str] = {
    "floor": "benchmarks.clients.floor",
    "sdk": "benchmarks.clients.sdk",
    "litellm": "benchmarks.clients.litellm_peer",
    "claude_force": "benchmarks.clients.claude_force_client",
    "claude_force_sdk": "benchmarks.clients.claude_force_client",
    "claude_force_screen": "benchmarks.clients.claude_force_client",
}
