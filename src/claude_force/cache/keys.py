"""Cache keys: SHA-256 over a canonical, versioned encoding of everything that shapes a response.

What goes in (in this order): the key-format tag, the agent name, ``request.system_hash`` (agent definition
and contract), the model, the messages, ``max_tokens``, every generation parameter in ``request.params`` and
``prompt_cache_ttl``. What stays out: the per-request canary (``request.context.canary``) and everything
else in ``request.context``, so two identical tasks share one key while an edited agent file gets a new one.
"""

from __future__ import annotations

import hashlib
from typing import Final

import orjson

from claude_force.models import Request

__all__ = ["KEY_VERSION", "cache_key"]

#: Bump when the encoding or the set of fields changes: every old entry then simply misses.
KEY_VERSION: Final = "claude-force/cache-key/v1"


def cache_key(request: Request) -> str:
    """The hex SHA-256 key of ``request``; raises ``TypeError`` if a message or parameter is not JSON.

    Example::

        key = cache_key(request)
        request.context.cache_key = key  # single-flight reuses it
    """
    doc = (
        KEY_VERSION,
        request.agent_name,
        request.system_hash,
        request.model,
        request.messages,
        request.max_tokens,
        request.params,
        request.prompt_cache_ttl,
    )
    try:
        encoded = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"request is not JSON-serialisable, so it cannot be cached: {exc}") from None
    return hashlib.sha256(encoded).hexdigest()
