"""LiteLLM: ``litellm.acompletion(model="anthropic/...", api_base=url)`` with its defaults, semaphore and gather.

The harness sets ``LITELLM_LOCAL_MODEL_COST_MAP=True`` so LiteLLM loads its bundled price map instead of
fetching one over the network.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

import litellm

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
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    model = f"anthropic/{args.model}"

    async def call(key: int) -> str:
        response = await litellm.acompletion(
            model=model,
            api_base=args.url,
            api_key="bench",
            messages=[
                {"role": "system", "content": system},
                {"role": "user", "content": user_message(key, args.task_prefix)},
            ],
            max_tokens=args.max_tokens,
        )
        text = response.choices[0].message.content
        if not text:
            raise EmptyContent
        return str(text)

    await warm_up(call, args.warmup, args.url)
    keys = task_order(args.n, args.distinct, args.seed)
    meter = Meter(args.n)
    meter.start()
    outcome = await run_gather(call, keys, args.concurrency, meter)
    figures = meter.stop()
    return {"client": "litellm", **outcome.as_dict(), **figures, "model": model, "version": _version()}


def _version() -> str:
    from importlib.metadata import version

    return version("litellm")


if __name__ == "__main__":
    sys.exit(main(run, build_parser(__doc__ or "litellm")))
