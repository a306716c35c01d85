"""Process plumbing: the emulator in its own process, each client in a fresh process, medians and ratios.

Every subprocess has a timeout. A client that crashes or times out becomes a result with ``"error"`` for that
run; it never stops the suite. Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import platform
import selectors
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from benchmarks.clients import CLIENT_MODULES

ROOT = Path(__file__).resolve().parent.parent
#: Seconds to wait for the emulator's port line.
EMULATOR_START_TIMEOUT = 20.0
#: Numeric fields of a client result whose median is reported.
MEDIAN_FIELDS = ("ok", "failed", "wall_s", "cpu_s", "cpu_ms_per_call", "peak_rss_mb")


@dataclass(frozen=True, kw_only=True)
class EmulatorOptions:
    """Command-line options of ``python -m claude_force.emulator`` for one workload."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    rpm: float | None = None
    p429: float = 0.0
    p529: float = 0.0
    p500: float = 0.0
    pnull: float = 0.0
    retry_after: float = 1.0
    seed: int = 7

    def argv(self) -> list[str]:
        args = [
            "--latency-ms",
            str(self.latency_ms),
            "--jitter-ms",
            str(self.jitter_ms),
            "--seed",
            str(self.seed),
        ]
        if self.rpm is not None:
            args += ["--rpm", str(self.rpm)]
        for name in ("p429", "p529", "p500", "pnull"):
            value = getattr(self, name)
            if value:
                args += [f"--{name}", str(value)]
        if self.p429:
            args += ["--retry-after", str(self.retry_after)]
        return args

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v not in (None, 0.0) or k == "latency_ms"}
        if not self.p429:
            out.pop("retry_after", None)
        return out


class Emulator:
    """The project's emulator in a separate process; ``with Emulator(opts) as emu: emu.url``.

    Example::

        with Emulator(EmulatorOptions(latency_ms=100)) as emu:
            emu.reset()
            print(emu.stats()["requests"])
    """

    __slots__ = ("_log", "_proc", "options", "url")

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def __repr__(self) -> str:
        alive = self._proc is not None and self._proc.poll() is None
        return f"Emulator(url={self.url!r}, running={alive})"

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "claude_force.emulator",
            "--port",
            "0",
            "--print-port",
            *self.options.argv(),
        ]
        self._log = open(os.devnull, "wb")  # noqa: SIM115  (closed in stop())
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, cwd=ROOT)
        assert self._proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self._proc.stdout, selectors.EVENT_READ)
        try:
            ready = sel.select(timeout=EMULATOR_START_TIMEOUT)
            line = self._proc.stdout.readline().decode().strip() if ready else ""
        finally:
            sel.close()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"the emulator did not print its port within {EMULATOR_START_TIMEOUT:.0f} s")
        self.url = f"http://127.0.0.1:{int(line)}"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _request(self, path: str, method: str) -> dict[str, Any]:
        data = b"" if method == "POST" else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else {}

    def stats(self) -> dict[str, Any]:
        return self._request("/_emulator/stats", "GET")

    def reset(self) -> None:
        self._request("/_emulator/reset", "POST")


def client_env() -> dict[str, str]:
    """The clients' environment: no proxies, no real API settings, LiteLLM offline."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "CLAUDE_FORCE_", "CLAUDE_CACHE"))
    }
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(key, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["LITELLM_TELEMETRY"] = "False"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_module(module: str, argv: Sequence[str], *, timeout: float) -> dict[str, Any]:
    """Run ``python -m module argv`` and parse its last stdout line as JSON; failures become ``{"error"}``."""
    cmd = [sys.executable, "-m", module, *argv]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, timeout=timeout, env=client_env(), cwd=ROOT, check=False
        )
    except subprocess.TimeoutExpired:
        return {
            "error": f"timed out after {timeout:.0f} s",
            "process_s": round(time.perf_counter() - start, 2),
        }
    elapsed = round(time.perf_counter() - start, 2)
    lines = [ln for ln in proc.stdout.decode(errors="replace").splitlines() if ln.strip().startswith("{")]
    if not lines:
        tail = proc.stderr.decode(errors="replace")[-1500:]
        return {"error": f"exit {proc.returncode}, no result line", "stderr": tail, "process_s": elapsed}
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        return {"error": f"bad result line: {exc}", "process_s": elapsed}
    result["process_s"] = elapsed
    if proc.returncode != 0 and "error" not in result:
        result["error"] = f"exit {proc.returncode}"
    return result


def run_client(
    name: str, emu: Emulator, *, n: int, concurrency: int, extra: Sequence[str] = (), timeout: float = 180.0
) -> dict[str, Any]:
    """Reset the emulator, run one client process, attach the emulator's counts of that run."""
    emu.reset()
    argv = ["--url", emu.url, "--n", str(n), "--concurrency", str(concurrency), *extra]
    if name == "claude_force_sdk":
        argv += ["--transport", "sdk"]
    result = run_module(CLIENT_MODULES[name], argv, timeout=timeout)
    try:
        result["emulator"] = emulator_counts(emu.stats())
    except OSError as exc:
        result["emulator"] = {"error": str(exc)}
    result["client"] = name
    return result


def emulator_counts(stats: Mapping[str, Any]) -> dict[str, Any]:
    statuses = stats.get("statuses", {})
    pc = stats.get("prompt_cache", {})
    return {
        "requests": stats.get("requests", 0),
        "status_200": statuses.get("200", 0),
        "status_429": statuses.get("429", 0),
        "status_529": statuses.get("529", 0),
        "status_500": statuses.get("500", 0),
        "duplicate_bodies": stats.get("duplicate_bodies", 0),
        "distinct_bodies": stats.get("distinct_bodies", 0),
        "input_tokens": stats.get("input_tokens", 0),
        "cache_creation_input_tokens": pc.get("creation_input_tokens", 0),
        "cache_read_input_tokens": pc.get("read_input_tokens", 0),
        "prompt_cache_writes": pc.get("writes", 0),
        "prompt_cache_reads": pc.get("reads", 0),
    }


def median_of(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Medians over the runs that did not crash; ``runs_ok`` says how many that is."""
    good = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"runs": len(runs), "runs_ok": len(good)}
    if not good:
        out["error"] = runs[0].get("error") if runs else "not run"
        return out
    for key in MEDIAN_FIELDS:
        values = [r[key] for r in good if isinstance(r.get(key), (int, float))]
        if not values:
            continue
        if all(isinstance(v, int) for v in values):
            out[key] = statistics.median_low(values)  # counts stay whole numbers
        else:
            out[key] = round(statistics.median(float(v) for v in values), 4)
    emu_keys = good[0].get("emulator", {}).keys()
    out["emulator"] = {
        k: statistics.median_low(
            [r["emulator"][k] for r in good if isinstance(r.get("emulator", {}).get(k), int)] or [0]
        )
        for k in emu_keys
        if k != "error"
    }
    thirds = [r["thirds_cpu_ms_per_call"] for r in good if len(r.get("thirds_cpu_ms_per_call", [])) == 3]
    if thirds:
        out["thirds_cpu_ms_per_call"] = [round(statistics.median(t[i] for t in thirds), 4) for i in range(3)]
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages: dict[str, str | None] = {}
    for pkg in (
        "claude-force",
        "aiohttp",
        "orjson",
        "anthropic",
        "httpx2",
        "litellm",
        "diskcache",
        "pyinstrument",
    ):
        try:
            packages[pkg] = version(pkg)
        except PackageNotFoundError:
            packages[pkg] = None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "packages": packages,
    }
