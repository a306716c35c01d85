"""Run ``module.function(**kwargs)`` in a fresh process and print its result as one JSON line.

Used for the micro-benchmarks other modules own (``benchmarks.bench_cache`` and friends), so their memory and
crashes stay out of the harness::

    python -m benchmarks.clients.call benchmarks.bench_tracker run --kwargs '{}'
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from typing import Any

from benchmarks.clients._common import emit


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("module")
    p.add_argument("function")
    p.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments")
    args = p.parse_args()
    start = time.perf_counter()
    try:
        func = getattr(importlib.import_module(args.module), args.function)
        value: Any = func(**json.loads(args.kwargs))
    except Exception as exc:
        emit({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]})
        return 1
    result = value if isinstance(value, dict) else {"value": value}
    emit({"result": result, "elapsed_s": round(time.perf_counter() - start, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
