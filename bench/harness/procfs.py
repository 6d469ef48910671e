"""CPU time and memory of a server's whole process tree, read from /proc (psutil is not used)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MB = 1_000_000
_TREE_REFRESH_S = 0.25


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants that are alive now."""
    pids, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        pids.append(pid)
        frontier.extend(_children(pid))
    return pids


def _children(pid: int) -> list[int]:
    # Each thread has its own list: a child forked from a worker thread is listed there only.
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for task in tasks:
        try:
            found.extend(map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split()))
        except OSError:
            continue
    return found


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of the tree, including children it has already reaped.

    A process that ends moves its time into its parent's cutime/cstime, so the sum stays
    continuous while workers come and go.
    """
    ticks = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / CLOCK_TICKS


def _status_kb(pid: int, keys: tuple[str, ...]) -> dict[str, int]:
    values = dict.fromkeys(keys, 0)
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return values
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in values:
            values[name] = int(rest.split()[0])
    return values


def _pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def rss_mb(pids: list[int]) -> float:
    """The summed VmRSS of `pids` (pages shared between processes count once per process)."""
    return sum(_status_kb(pid, ("VmRSS",))["VmRSS"] for pid in pids) * 1024 / MB


def pss_mb(pids: list[int]) -> float:
    """The summed proportional set size: shared pages split between the processes sharing them."""
    return sum(_pss_kb(pid) for pid in pids) * 1024 / MB


def hwm_mb(root: int) -> float:
    """The summed VmHWM (each process's own peak RSS since it started) of the tree."""
    return sum(_status_kb(pid, ("VmHWM",))["VmHWM"] for pid in tree_pids(root)) * 1024 / MB


@dataclass
class Usage:
    """What a server's process tree consumed while one load ran."""

    cpu_s: float
    peak_rss_mb: float
    peak_pss_mb: float
    hwm_mb: float
    samples: int

    def figures(self) -> dict[str, float | int]:
        return {
            "cpu_s": round(self.cpu_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 2),
            "peak_pss_mb": round(self.peak_pss_mb, 2),
            "hwm_mb": round(self.hwm_mb, 2),
            "memory_samples": self.samples,
        }


class Meter:
    """Measures a process tree during a `with` block: CPU seconds, peak summed RSS and PSS.

    A thread samples the tree's memory every `interval` seconds (the list of processes is
    refreshed every quarter second, which keeps the sampler's own CPU use small).
    """

    def __init__(self, root: int, interval: float = 0.02) -> None:
        self.root = root
        self.interval = interval
        self.usage: Usage | None = None
        self._peak_rss = 0.0
        self._peak_pss = 0.0
        self._samples = 0
        self._cpu_before = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="meter", daemon=True)

    def __enter__(self) -> Meter:
        self._cpu_before = cpu_seconds(self.root)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.usage = Usage(
            cpu_s=cpu_seconds(self.root) - self._cpu_before,
            peak_rss_mb=self._peak_rss,
            peak_pss_mb=self._peak_pss,
            hwm_mb=hwm_mb(self.root),
            samples=self._samples,
        )

    def _sample(self) -> None:
        pids, refreshed = tree_pids(self.root), time.monotonic()
        while True:
            self._peak_rss = max(self._peak_rss, rss_mb(pids))
            if self._samples % 5 == 0:  # PSS walks the page tables: every 100 ms is enough
                self._peak_pss = max(self._peak_pss, pss_mb(pids))
            self._samples += 1
            if self._stop.wait(self.interval):
                return
            if time.monotonic() - refreshed > _TREE_REFRESH_S:
                pids, refreshed = tree_pids(self.root), time.monotonic()
