"""Which process holds a lease, and whether that process still exists.

A lease (a tus upload being written) names its holder as ``host:boot:pid:start``. On the same
machine a holder whose process is gone (killed, crashed) is known at once, so its lease blocks
nothing; a holder on another machine is trusted until its lease runs out.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

PROC = Path("/proc")


@functools.cache
def _boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, None when no such process runs (a
    reused pid has another start time; a killed one its parent has not reaped is a zombie)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # the state: zombie or dead
        return None
    return fields[19]


def this_process() -> str:
    pid = os.getpid()  # not cached: a forked worker is another holder
    return f"{socket.gethostname()}:{_boot_id()}:{pid}:{_start_time(pid) or 0}"


def is_gone(holder: str | None) -> bool:
    """True when ``holder`` is a process of this machine that no longer runs."""
    if not holder:
        return True
    parts = holder.split(":")
    if len(parts) != 4:
        return False
    host, boot, pid, start = parts
    if host != socket.gethostname() or boot != _boot_id() or not pid.isdigit():
        return False  # another machine (or a container of another): its lease must run out
    return _start_time(int(pid)) != start
