"""One benchmark session: both servers up at once, every step run against each in turn.

Running the servers side by side and alternating them step by step (and the order from one
repeat to the next) spreads whatever else the machine does evenly over the two.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from harness.clients import LoadFailed
from harness.report import Results
from harness.servers import ROOT, Server, ServerUnavailable
from harness.steps import Figures, Step

Runs = dict[str, list[Figures]]  # test name -> the figures of each repeat
_WORST = {"peak_rss_mb", "peak_pss_mb", "hwm_mb", "memory_samples"}
_TOTAL = {"errors", "non_2xx", "non_2xx_3xx", "socket_errors"}


@contextmanager
def servers_up(
    kinds: list[type[Server]],
    workdir: Path,
    logs: Path,
    info: dict[str, dict[str, Any]],
    extra_env: dict[str, dict[str, str]],
) -> Iterator[list[Server]]:
    """The servers that start, each in its own folder; all are stopped on the way out."""
    with ExitStack() as stack:
        running = []
        for kind in kinds:
            env = extra_env.get(kind.name, {})
            server = kind(workdir / kind.name, logs / f"{kind.name}.log", env)
            stack.callback(server.stop)
            info[kind.name] = _start(server)
            stack.callback(_check_alive, server, info[kind.name])
            if "error" not in info[kind.name]:
                running.append(server)
        yield running


def _start(server: Server) -> dict[str, Any]:
    info: dict[str, Any] = {"log": str(server.log_path.relative_to(ROOT))}
    if server.extra_env:
        info["extra_env"] = server.extra_env
    try:
        server.check()
        info["version"] = server.version()
        print(f"{server.name} {info['version']}: starting on {server.base}", flush=True)
        server.workdir.mkdir(parents=True)
        server.start()
    except ServerUnavailable as exc:
        print(f"\n*** {server.name} NOT MEASURED: {exc}\n", flush=True)
        info["error"] = str(exc)
        return info
    info["processes"] = server.process_count()
    return info


def _check_alive(server: Server, info: dict[str, Any]) -> None:
    if "error" not in info and server.process is not None and not server.alive():
        info["error"] = f"exited with {server.process.returncode} before the end of the run"
        print(f"\n*** {server.name} {info['error']}:\n{server.log_tail()}", flush=True)


def run_all(servers: list[Server], steps: list[Step], repeat: int) -> dict[str, Runs]:
    runs: dict[str, Runs] = {server.name: {} for server in servers}
    for step in steps:
        for round_ in range(repeat):
            order = servers if round_ % 2 == 0 else servers[::-1]
            for server in order:
                if step.only in (None, server.family):
                    _run_step(server, step, runs[server.name])
    return runs


def _run_step(server: Server, step: Step, runs: Runs) -> None:
    if not server.alive():
        _record_failure(runs, step, f"{server.name} is not running")
        return
    print(f"  {server.name}: {step.title}", flush=True)
    started, results = time.monotonic(), dict[str, Figures]()
    try:
        step.run(server, results)
    except (LoadFailed, ValueError, OSError) as exc:
        print(f"    FAILED: {exc}", flush=True)
        results = {test: results.get(test, {"error": str(exc)}) for test in step.tests}
    if not server.alive():  # its figures would measure a server going down
        print(f"    FAILED: {server.name} exited:\n{server.log_tail()}", flush=True)
        results = {test: {"error": f"{server.name} exited during the test"} for test in step.tests}
    print(f"    {time.monotonic() - started:.1f} s", flush=True)
    for test, figures in results.items():
        runs.setdefault(test, []).append(figures)


def _record_failure(runs: Runs, step: Step, message: str) -> None:
    for test in step.tests:
        runs.setdefault(test, []).append({"error": message})


def summarize(runs: Runs) -> Results:
    """One set of figures per test: medians, the worst memory, summed error counts.

    A test with a failed repeat keeps the figures of the others and the first error message.
    """
    results: Results = {}
    for test, repeats in runs.items():
        good = [figures for figures in repeats if "error" not in figures]
        summary: dict[str, Any] = _combine(good) if good else {}
        errors = [str(figures["error"]) for figures in repeats if "error" in figures]
        if errors:
            summary["error"] = errors[0]
        summary["repeats"] = len(repeats)
        results[test] = summary
    return results


def _combine(repeats: list[Figures]) -> dict[str, Any]:
    combined: dict[str, Any] = {}
    for key, first in repeats[0].items():
        values = [
            value for figures in repeats if isinstance(value := figures.get(key), int | float)
        ]
        if not isinstance(first, int | float) or len(values) < len(repeats):
            combined[key] = first
        elif key in _WORST:
            combined[key] = max(values)
        elif key in _TOTAL:
            combined[key] = sum(values)
        else:
            combined[key] = round(statistics.median(values), 4)
    return combined
