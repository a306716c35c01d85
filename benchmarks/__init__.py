"""claude-force benchmark suite: the project against the official SDK, LiteLLM and a lean floor client.

Run ``make bench`` (or ``python -m benchmarks [--only w2]``). Every workload starts the project's emulator in
its own process and runs each client in a fresh process; see ``docs/benchmarks.md`` for the results.
"""
