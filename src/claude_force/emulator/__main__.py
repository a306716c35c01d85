"""``python -m claude_force.emulator --port 0 --print-port ...``: serve until SIGTERM/SIGINT.

With ``--print-port`` the bound port is the first line on stdout (flushed), so a parent process
started with ``--port 0`` can read it and connect.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .config import EmulatorConfig
from .runner import EmulatorServer, run


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability in [0, 1]")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m claude_force.emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--print-port", action="store_true", help="print the bound port as the first line")
    p.add_argument("--api-key", default=None, help="if set, require exactly this key")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--rpm", type=float, default=None)
    p.add_argument("--input-tpm", type=float, default=None)
    p.add_argument("--output-tpm", type=float, default=None)
    for name in ("p429", "p529", "p500", "phang", "pnull", "pmalformed"):
        p.add_argument(f"--{name}", type=_probability, default=0.0)
    p.add_argument("--retry-after", type=float, default=1.0, help="seconds sent with injected 429s")
    p.add_argument("--hang-seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-body-bytes", type=int, default=32 * 1024 * 1024)
    p.add_argument("--log-level", default="WARNING")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        config = EmulatorConfig(
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            rpm=args.rpm,
            input_tpm=args.input_tpm,
            output_tpm=args.output_tpm,
            p429=args.p429,
            p529=args.p529,
            p500=args.p500,
            phang=args.phang,
            pnull=args.pnull,
            pmalformed=args.pmalformed,
            retry_after=args.retry_after,
            hang_seconds=args.hang_seconds,
            seed=args.seed,
            max_body_bytes=args.max_body_bytes,
        )
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2

    def ready(emu: EmulatorServer) -> None:
        if args.print_port:
            sys.stdout.write(f"{emu.port}\n")
            sys.stdout.flush()
        sys.stderr.write(f"claude-force emulator listening on {emu.base_url}\n")
        sys.stderr.flush()

    run(config, on_ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
