"""claude-force: run fleets of Claude agents concurrently, within limits, without paying twice.

Example::

    import asyncio
    from claude_force import AsyncAgentOrchestrator

    async def main() -> None:
        async with AsyncAgentOrchestrator(".claude/claude.json") as orch:
            result = await orch.execute_agent("code-reviewer", "Review: def f(x): return x/0")
            print(result.success, result.output)

    asyncio.run(main())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from claude_force.config import Agent, ProjectConfig, load_config
from claude_force.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BudgetExceeded,
    CircuitOpen,
    ClaudeForceError,
    ConfigError,
    InputError,
    MalformedResponse,
    OrchestratorClosed,
    PromptInjectionBlocked,
    RateLimited,
    SecretError,
    TransportError,
)
from claude_force.models import AgentResult, Request, Response, Usage, WorkflowResult
from claude_force.orchestrator import AsyncAgentOrchestrator
from claude_force.settings import Settings, resolve_settings
from claude_force.transports import MockTransport, NativeTransport, Transport

if TYPE_CHECKING:
    from claude_force.cache import ResponseCache
    from claude_force.tracking import PerformanceTracker

_LAZY = {"ResponseCache": "claude_force.cache", "PerformanceTracker": "claude_force.tracking"}


def __getattr__(name: str) -> Any:
    """Import the cache and tracker on first use: most scripts need only the orchestrator."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'claude_force' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "Agent",
    "AgentResult",
    "AsyncAgentOrchestrator",
    "BudgetExceeded",
    "CircuitOpen",
    "ClaudeForceError",
    "ConfigError",
    "InputError",
    "MalformedResponse",
    "MockTransport",
    "NativeTransport",
    "OrchestratorClosed",
    "PerformanceTracker",
    "ProjectConfig",
    "PromptInjectionBlocked",
    "RateLimited",
    "Request",
    "Response",
    "ResponseCache",
    "SecretError",
    "Settings",
    "Transport",
    "TransportError",
    "Usage",
    "WorkflowResult",
    "__version__",
    "load_config",
    "resolve_settings",
]
