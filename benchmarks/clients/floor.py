"""The lean floor: aiohttp ``ClientSession`` + orjson + ``asyncio.Semaphore`` + ``gather``, nothing else.

No retries, no limiter, no cache. ``--dedup`` adds the smallest possible "never pay twice": one in-memory
future per distinct body (used by W5 only).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import aiohttp
import orjson

from benchmarks.clients._common import (
    EmptyContent,
    Meter,
    build_parser,
    main,
    read_system,
    run_gather,
    task_order,
    user_message,
)
from benchmarks.clients._common import warm_up as _warm_up


class HTTPStatusError(Exception):
    """A non-200 answer."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


async def run(args: argparse.Namespace) -> dict[str, Any]:
    system = read_system(args.system_file)
    url = args.url.rstrip("/") + "/v1/messages"
    headers = {"x-api-key": "bench", "anthropic-version": "2023-06-01", "content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def call(key: int) -> str:
            body = orjson.dumps(
                {
                    "model": args.model,
                    "max_tokens": args.max_tokens,
                    "system": system,
                    "messages": [{"role": "user", "content": user_message(key, args.task_prefix)}],
                }
            )
            async with session.post(url, data=body) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    raise HTTPStatusError(resp.status)
            content = orjson.loads(raw).get("content")
            if not content:
                raise EmptyContent
            text: str = content[0]["text"]
            return text

        memo: dict[int, asyncio.Task[str]] = {}

        async def dedup_call(key: int) -> str:
            task = memo.get(key)
            if task is None:
                task = memo[key] = asyncio.ensure_future(call(key))
            return await task

        chosen = dedup_call if args.dedup else call
        await _warm_up(call, args.warmup, args.url)
        keys = task_order(args.n, args.distinct, args.seed)
        meter = Meter(args.n)
        meter.start()
        outcome = await run_gather(chosen, keys, args.concurrency, meter)
        figures = meter.stop()
    return {"client": "floor", **outcome.as_dict(), **figures, "dedup": bool(args.dedup)}


def _parser() -> argparse.ArgumentParser:
    p = build_parser(__doc__ or "floor")
    p.add_argument("--dedup", action="store_true", help="share one call per distinct task")
    return p


if __name__ == "__main__":
    sys.exit(main(run, _parser()))
