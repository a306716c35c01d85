"""``claude-force run agent|workflow|batch``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from claude_force.batch import ResultWriter, check_output, completed_ids, iter_tasks, validate_input
from claude_force.cli.common import (
    STATE,
    BaseUrlOpt,
    BudgetOpt,
    CacheDirOpt,
    ConcOpt,
    ItpmOpt,
    MaxTokensOpt,
    MetricsDirOpt,
    ModelOpt,
    NoCacheOpt,
    OtpmOpt,
    OutputFile,
    PolicyOpt,
    PromptCacheOpt,
    RpmOpt,
    TimeoutOpt,
    TransportOpt,
    err,
    load_project,
    out,
    read_task,
    run_flags,
)
from claude_force.cli.summary import BatchProgress, RunSummary
from claude_force.orchestrator import AsyncAgentOrchestrator

app = typer.Typer(help="Run an agent, a workflow, or a JSONL batch.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
TaskOpt = Annotated[str | None, typer.Option("--task", "-t", help="The task text.")]
TaskFileOpt = Annotated[Path | None, typer.Option("--task-file", "-f", help="Read the task from a file.")]


def _orchestrator(flags: dict[str, Any]) -> AsyncAgentOrchestrator:
    # Settings are resolved here, not in the orchestrator, so a bad value names the flag that set it.
    _, settings = load_project(flags)
    return AsyncAgentOrchestrator(STATE.config, settings=settings)


def _emit(payload: dict[str, Any], as_json: bool, output: OutputFile | None, text: str) -> None:
    data = orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() if as_json else text
    if output is not None:
        output.write(data + "\n")
    elif as_json:
        print(data)
    else:
        # soft_wrap: the answer's lines as they are, never broken at the terminal (or pipe) width
        out.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command("agent")
def run_agent(
    agent: Annotated[str, typer.Argument(help="Agent name from the config.")],
    task: TaskOpt = None,
    task_file: TaskFileOpt = None,
    as_json: JsonOpt = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the output to a file.")] = None,
    model: ModelOpt = None,
    max_tokens: MaxTokensOpt = None,
    max_concurrency: ConcOpt = None,
    timeout: TimeoutOpt = None,
    transport: TransportOpt = None,
    base_url: BaseUrlOpt = None,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    rpm: RpmOpt = None,
    input_tpm: ItpmOpt = None,
    output_tpm: OtpmOpt = None,
    budget_usd: BudgetOpt = None,
    injection_policy: PolicyOpt = None,
    prompt_cache: PromptCacheOpt = None,
    metrics_dir: MetricsDirOpt = None,
) -> None:
    """Run one task with one agent. Exit 0 on success, 1 if the task failed."""
    flags = run_flags(
        **{k: v for k, v in locals().items() if k not in ("agent", "task", "task_file", "as_json", "output")}
    )
    text = read_task(task, task_file)

    async def go() -> Any:
        async with _orchestrator(flags) as orch:
            orch.config.agent(
                agent
            )  # an unknown or unreadable agent is a usage error (exit 2), not a task failure
            return await orch.execute_agent(agent, text)

    sink = OutputFile(output) if output is not None else None  # before the (paid) call, not after it
    try:
        result = asyncio.run(go())
        shown = (
            result.output if result.success else f"failed [{result.error_code}]: {'; '.join(result.errors)}"
        )
        _emit(result.to_dict(), as_json, sink, shown)
    finally:
        if sink is not None:
            sink.close()
    if not result.success:
        raise typer.Exit(1)


@app.command("workflow")
def run_workflow(
    name: Annotated[str, typer.Argument(help="Workflow name from the config.")],
    task: TaskOpt = None,
    task_file: TaskFileOpt = None,
    as_json: JsonOpt = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the output to a file.")] = None,
    model: ModelOpt = None,
    max_tokens: MaxTokensOpt = None,
    max_concurrency: ConcOpt = None,
    timeout: TimeoutOpt = None,
    transport: TransportOpt = None,
    base_url: BaseUrlOpt = None,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    rpm: RpmOpt = None,
    input_tpm: ItpmOpt = None,
    output_tpm: OtpmOpt = None,
    budget_usd: BudgetOpt = None,
    injection_policy: PolicyOpt = None,
    prompt_cache: PromptCacheOpt = None,
    metrics_dir: MetricsDirOpt = None,
) -> None:
    """Run a workflow's agents in order. Exit 0 if every step succeeded, 1 otherwise."""
    flags = run_flags(
        **{k: v for k, v in locals().items() if k not in ("name", "task", "task_file", "as_json", "output")}
    )
    text = read_task(task, task_file)

    async def go() -> Any:
        async with _orchestrator(flags) as orch:
            for step in orch.config.workflow(name):
                orch.config.agent(step)
            return await orch.execute_workflow(name, text)

    sink = OutputFile(output) if output is not None else None  # before the (paid) calls, not after them
    try:
        result = asyncio.run(go())
        if result.success:
            shown = result.output
        else:
            failed = result.steps[-1]
            shown = f"failed at step {result.failed_step} ({result.failed_agent}) [{failed.error_code}]: {'; '.join(failed.errors)}"
        _emit(result.to_dict(), as_json, sink, shown)
    finally:
        if sink is not None:
            sink.close()
    if not result.success:
        raise typer.Exit(1)


async def run_batch_async(
    orch: AsyncAgentOrchestrator,
    input_path: Path,
    output_path: Path,
    *,
    resume: bool,
    max_line_bytes: int,
) -> RunSummary:
    """Run a validated JSONL batch, appending each result as it finishes; returns the summary.

    The input is read twice (validated up front, then streamed), so a huge batch never sits in memory.
    """
    ids_in_input = validate_input(input_path, max_line_bytes=max_line_bytes)
    check_output(input_path, output_path, resume=resume)
    skip = completed_ids(output_path) & ids_in_input if resume else frozenset()
    todo = len(ids_in_input) - len(skip)
    if skip:
        err.print(f"resume: {len(skip)} tasks already done, {todo} to run")
    ids: dict[int, str] = {}

    def specs() -> Iterator[dict[str, Any]]:
        for i, item in enumerate(iter_tasks(input_path, skip=skip, max_line_bytes=max_line_bytes)):
            ids[i] = item.id
            yield item.spec

    summary = RunSummary()
    writer = ResultWriter(output_path, append=resume)
    try:
        with BatchProgress(err, todo, "batch") as bar:
            async for index, result in orch.stream_multiple(specs()):
                writer.write(ids.pop(index), result)
                summary.add(result)
                bar.advance(result)
    finally:
        writer.close()
    return summary


@app.command("batch")
def run_batch(
    input_path: Annotated[Path, typer.Option("--input", "-i", help="Tasks, one JSON object per line.")],
    output_path: Annotated[Path, typer.Option("--output", "-o", help="Results, one JSON object per line.")],
    resume: Annotated[bool, typer.Option("--resume", help="Skip ids already in the output file.")] = False,
    max_line_bytes: Annotated[
        int, typer.Option("--max-line-bytes", min=1, help="Reject longer input lines.")
    ] = 1024 * 1024,
    model: ModelOpt = None,
    max_tokens: MaxTokensOpt = None,
    max_concurrency: ConcOpt = None,
    timeout: TimeoutOpt = None,
    transport: TransportOpt = None,
    base_url: BaseUrlOpt = None,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    rpm: RpmOpt = None,
    input_tpm: ItpmOpt = None,
    output_tpm: OtpmOpt = None,
    budget_usd: BudgetOpt = None,
    injection_policy: PolicyOpt = None,
    prompt_cache: PromptCacheOpt = None,
    metrics_dir: MetricsDirOpt = None,
) -> None:
    """Run a JSONL batch with a progress bar and a summary. Exit 0 if all succeeded, 1 if any failed."""
    flags = run_flags(
        **{
            k: v
            for k, v in locals().items()
            if k not in ("input_path", "output_path", "resume", "max_line_bytes")
        }
    )

    async def go() -> RunSummary:
        async with _orchestrator(flags) as orch:
            return await run_batch_async(
                orch, input_path, output_path, resume=resume, max_line_bytes=max_line_bytes
            )

    start = time.perf_counter()
    summary = asyncio.run(go())
    err.print(summary.table(time.perf_counter() - start))
    if summary.failed_total:
        raise typer.Exit(1)
