"""``claude-force emulate``: serve the Anthropic-compatible emulator until Ctrl-C."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from claude_force.cli.common import fail
from claude_force.emulator import EmulatorConfig, EmulatorServer
from claude_force.emulator import run as run_emulator

__all__ = ["emulate", "register"]

_P = "Probability in [0, 1] of"


def emulate(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8765,
    latency_ms: Annotated[float, typer.Option(help="Latency added to every answer, ms.")] = 0.0,
    jitter_ms: Annotated[float, typer.Option(help="Uniform jitter +/- this many ms.")] = 0.0,
    rpm: Annotated[float | None, typer.Option(help="Requests per minute limit.")] = None,
    input_tpm: Annotated[float | None, typer.Option(help="Input tokens per minute limit.")] = None,
    output_tpm: Annotated[float | None, typer.Option(help="Output tokens per minute limit.")] = None,
    p429: Annotated[float, typer.Option(help=f"{_P} an injected 429.", min=0.0, max=1.0)] = 0.0,
    p529: Annotated[float, typer.Option(help=f"{_P} a 529 overloaded.", min=0.0, max=1.0)] = 0.0,
    p500: Annotated[float, typer.Option(help=f"{_P} a 500 api_error.", min=0.0, max=1.0)] = 0.0,
    phang: Annotated[float, typer.Option(help=f"{_P} hanging --hang-seconds.", min=0.0, max=1.0)] = 0.0,
    pnull: Annotated[float, typer.Option(help=f"{_P} a 200 with null content.", min=0.0, max=1.0)] = 0.0,
    pmalformed: Annotated[
        float, typer.Option(help=f"{_P} a 200 whose body is not JSON.", min=0.0, max=1.0)
    ] = 0.0,
    retry_after: Annotated[float, typer.Option(help="retry-after seconds on injected 429s.")] = 1.0,
    hang_seconds: Annotated[float, typer.Option(help="How long a hung request sleeps.")] = 30.0,
    seed: Annotated[int, typer.Option(help="Seed for fault and latency draws.")] = 0,
) -> None:
    """Serve an Anthropic-compatible emulator (POST /v1/messages) until Ctrl-C."""
    console = Console()
    try:
        config = EmulatorConfig(
            host=host,
            port=port,
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            rpm=rpm,
            input_tpm=input_tpm,
            output_tpm=output_tpm,
            p429=p429,
            p529=p529,
            p500=p500,
            phang=phang,
            pnull=pnull,
            pmalformed=pmalformed,
            retry_after=retry_after,
            hang_seconds=hang_seconds,
            seed=seed,
        )
    except ValueError as exc:
        fail(str(exc))

    def ready(emu: EmulatorServer) -> None:
        console.print(
            f"Emulator listening on {emu.base_url} (ANTHROPIC_BASE_URL={emu.base_url}); Ctrl-C to stop",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    try:
        run_emulator(config, on_ready=ready)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def register(app: typer.Typer) -> None:
    """Add the ``emulate`` command to ``app``."""
    app.command("emulate")(emulate)
