"""The official ``anthropic`` SDK used directly, with its defaults (``max_retries=2``), a semaphore and gather."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anthropic

from benchmarks.clients._common import (
    EmptyContent,
    Meter,
    build_parser,
    main,
    read_system,
    run_gather,
    task_order,
    user_message,
    warm_up,
)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    system = read_system(args.system_file)
    client = anthropic.AsyncAnthropic(base_url=args.url, api_key="bench")
    try:

        async def call(key: int) -> str:
            message = await client.messages.create(
                model=args.model,
                max_tokens=args.max_tokens,
                system=system,
                messages=[{"role": "user", "content": user_message(key, args.task_prefix)}],
            )
            if not message.content:
                raise EmptyContent
            text: str = getattr(message.content[0], "text", "")
            if not text:
                raise EmptyContent
            return text

        await warm_up(call, args.warmup, args.url)
        keys = task_order(args.n, args.distinct, args.seed)
        meter = Meter(args.n)
        meter.start()
        outcome = await run_gather(call, keys, args.concurrency, meter)
        figures = meter.stop()
    finally:
        await client.close()
    return {
        "client": "sdk",
        **outcome.as_dict(),
        **figures,
        "max_retries": client.max_retries,
        "version": anthropic.__version__,
    }


if __name__ == "__main__":
    sys.exit(main(run, build_parser(__doc__ or "sdk")))
