"""Checks of one call's arguments, shared by ``build_request`` and the task-spec parser of a batch.

Each raises :class:`~claude_force.errors.InputError` (a failed result with code ``invalid_input`` in a batch) that
names the argument, before any work is done: a value the API would refuse, or one that would reach the budget
as a negative worst case, never gets that far.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from claude_force.errors import InputError

__all__ = ["MAX_TOKENS_LIMIT", "check_overrides", "check_params", "check_text"]

#: ``max_tokens`` must be below this (the API's field is a 32-bit integer).
MAX_TOKENS_LIMIT = 2**31


def check_text(name: str, value: object, *, optional: bool = False) -> None:
    """``value`` must be a ``str`` (or None when ``optional``) that UTF-8 can encode (no lone surrogate)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, got {type(value).__name__}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(
                f"{name} is not valid text: a lone surrogate at index {exc.start} (decode it with errors='replace')"
            ) from None


def check_overrides(model: object, max_tokens: object) -> None:
    """A per-call ``model`` (None or a non-empty string) and ``max_tokens`` (None or 1 <= n < 2**31)."""
    if model is not None and (not isinstance(model, str) or not model):
        raise InputError(f"model must be a non-empty string, got {model!r:.40}")
    if max_tokens is not None and (
        isinstance(max_tokens, bool)
        or not isinstance(max_tokens, int)
        or not 1 <= max_tokens < MAX_TOKENS_LIMIT
    ):
        raise InputError(
            f"max_tokens must be an integer from 1 to {MAX_TOKENS_LIMIT - 1}, got {max_tokens!r:.40}"
        )


def check_params(params: Mapping[str, Any], *, reserved: frozenset[str]) -> None:
    """Generation parameters: string keys, none of ``reserved`` (the request builds those), JSON values."""
    if not all(isinstance(k, str) for k in params):
        raise InputError("generation parameters must have string keys")
    clash = sorted(reserved.intersection(params))
    if clash:
        raise InputError(
            f"generation parameters may not set {', '.join(map(repr, clash))}: the request builds them itself"
        )
    try:
        orjson.dumps(dict(params))
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise InputError(f"generation parameters must be JSON values: {exc}") from None
