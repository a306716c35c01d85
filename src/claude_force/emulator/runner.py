"""Running the emulator: in-process (:class:`EmulatorServer`) or until a signal (:func:`run`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from .config import EmulatorConfig
from .server import STATE_KEY, Sleep, create_app
from .state import EmulatorState

__all__ = ["EmulatorServer", "run", "serve"]

logger = logging.getLogger("claude_force.emulator")


class EmulatorServer:
    """The emulator on a loopback port, for tests, ``claude-force demo`` and benchmarks.

    Binds ``config.host``:``config.port`` (default ``127.0.0.1`` and a free port). Example::

        headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        async with EmulatorServer(EmulatorConfig(latency_ms=20, p529=0.1, seed=1)) as emu:
            async with aiohttp.ClientSession() as http:
                await http.post(emu.base_url + "/v1/messages", json=body, headers=headers)
            print(await emu.stats())
            emu.reset()
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self.app = create_app(self.config, clock=clock, sleep=sleep, wall_clock=wall_clock)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def state(self) -> EmulatorState:
        """The live state (counters, prompt cache, buckets)."""
        return self.app[STATE_KEY]

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._port is None:
            raise RuntimeError("EmulatorServer is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``; clients POST to ``base_url + "/v1/messages"``."""
        host = self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def start(self) -> EmulatorServer:
        if self._runner is not None:
            raise RuntimeError("EmulatorServer is already started")
        runner = web.AppRunner(
            self.app,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=self.config.shutdown_timeout,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        logger.info("emulator: listening on %s", self.base_url)
        return self

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            logger.info("emulator: stopped")

    async def __aenter__(self) -> EmulatorServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def stats(self) -> dict[str, Any]:
        """The same document as ``GET /_emulator/stats``."""
        return self.state.snapshot()

    def reset(self) -> None:
        """Zero the stats, empty the prompt cache, refill the rate-limit buckets."""
        self.state.reset()


async def serve(
    config: EmulatorConfig,
    *,
    on_ready: Callable[[EmulatorServer], None] | None = None,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
) -> None:
    """Serve until ``stop`` is set or (with ``handle_signals``) the process gets SIGINT/SIGTERM.

    ``on_ready`` is called with the started server, e.g. to print its URL.
    """
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM) if handle_signals else ():
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - Windows, threads
            pass
    try:
        async with EmulatorServer(config) as emu:
            if on_ready is not None:
                on_ready(emu)
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def run(config: EmulatorConfig, *, on_ready: Callable[[EmulatorServer], None] | None = None) -> None:
    """Blocking: serve ``config`` until SIGINT/SIGTERM (or Ctrl-C)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, on_ready=on_ready))
