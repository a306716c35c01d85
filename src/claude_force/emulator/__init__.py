"""An Anthropic Messages API emulator, for running agents offline, tests and benchmarks.

Example::

    from claude_force.emulator import EmulatorConfig, EmulatorServer

    async with EmulatorServer(EmulatorConfig(latency_ms=50, p529=0.05, seed=1)) as emu:
        ...  # point a client at emu.base_url
        print(await emu.stats())

From a shell: ``python -m claude_force.emulator --port 8765`` or ``claude-force emulate``.
"""

from .config import DEFAULT_MIN_CACHEABLE_TOKENS, MIN_CACHEABLE_TOKENS, EmulatorConfig
from .runner import EmulatorServer, run, serve
from .server import STATE_KEY, create_app
from .state import EmulatorState
from .tokens import estimate_tokens

__all__ = [
    "DEFAULT_MIN_CACHEABLE_TOKENS",
    "MIN_CACHEABLE_TOKENS",
    "STATE_KEY",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "create_app",
    "estimate_tokens",
    "run",
    "serve",
]
