"""Transports: ``native`` (aiohttp + orjson, default), ``sdk`` (official anthropic client), ``mock`` (tests)."""

from __future__ import annotations

from claude_force.errors import ConfigError
from claude_force.transports.base import Transport, parse_message, parse_retry_after
from claude_force.transports.mock import MockTransport
from claude_force.transports.native import NativeTransport

__all__ = [
    "MockTransport",
    "NativeTransport",
    "Transport",
    "make_transport",
    "parse_message",
    "parse_retry_after",
]


def make_transport(
    name: str, *, api_key: str, base_url: str, pool_size: int, max_response_bytes: int
) -> Transport:
    """Build a transport by name."""
    if name == "native":
        return NativeTransport(
            api_key=api_key, base_url=base_url, pool_size=pool_size, max_response_bytes=max_response_bytes
        )
    if name == "sdk":
        from claude_force.transports.sdk import SDKTransport

        return SDKTransport(
            api_key=api_key, base_url=base_url, pool_size=pool_size, max_response_bytes=max_response_bytes
        )
    if name == "mock":
        return MockTransport()
    raise ConfigError(f"unknown transport {name!r} (choose native, sdk or mock)", key="transport")
