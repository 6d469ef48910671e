"""`make bench`: Satchel against copyparty on loopback, with the same clients, in the same run.

Measures a 1 GiB multipart upload and its download (MB/s, server CPU seconds, peak RSS), 200
uploads of 64 KiB at concurrency 16 (ab) and 4 KiB downloads for 10 s over 64 connections
(wrk); prints a table with the ratio Satchel/copyparty and the targets, and writes every figure
to bench/results/<UTC time>.json. Satchel runs twice: its single-machine default (satchel) and
its scale-out configuration, blobs in S3 (SeaweedFS) and rows in PostgreSQL (satchel-s3pg),
whose every figure is also shown as a ratio to the default. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from harness.clients import tool_version
from harness.data import GIB, KIB, random_file
from harness.report import evaluate, git_commit, print_report, ratios, targets_json
from harness.servers import BENCH, ROOT, Copyparty, Satchel, SatchelS3PG, Server
from harness.session import run_all, servers_up, summarize
from harness.steps import Step, big_transfer, huge_upload, small_downloads, small_uploads
from harness.tus import tus_resume, tus_upload

WORK = BENCH / "work"
RESULTS = BENCH / "results"
LOGS = WORK / "logs"
TOOLS = {"curl": "curl", "ab": "apache2-utils", "wrk": "wrk"}
VERSION_FLAGS = {"curl": "--version", "ab": "-V", "wrk": "-v"}
SERVERS: dict[str, type[Server]] = {
    "satchel": Satchel,
    "satchel-s3pg": SatchelS3PG,
    "copyparty": Copyparty,
}
# The default limit of a guest upload (1 GiB) would refuse the 2 GiB tus and 5 GiB files.
HUGE_SETTINGS = {"SATCHEL_GUEST_MAX_UPLOAD_SIZE": "6GiB"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Satchel vs copyparty on loopback (see bench/README.md)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(SERVERS),
        metavar="NAME",
        help=f"measure these servers only ({', '.join(SERVERS)})",
    )
    parser.add_argument("--skip-big", action="store_true", help="skip the 1 GiB transfers")
    parser.add_argument(
        "--huge", action="store_true", help="also upload 5 GiB to Satchel (is its RSS flat?)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        choices=range(1, 10),
        metavar="N",
        help="run every test N times (1-9) and report the medians (default 1)",
    )
    return parser.parse_args(argv)


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through the blocks that stop the servers


# -- set-up ------------------------------------------------------------------------------


def ensure_tools(names: list[str]) -> None:
    """curl, ab, wrk and copyparty's environment; bench/setup.sh installs what is missing."""
    missing = [f"{tool} (Debian {pkg})" for tool, pkg in TOOLS.items() if not shutil.which(tool)]
    if "copyparty" in names and not Copyparty.executable.exists():
        missing.append("copyparty (into bench/.env)")
    if not missing:
        return
    print(f"missing: {', '.join(missing)}; running bench/setup.sh", flush=True)
    result = subprocess.run(["bash", str(BENCH / "setup.sh")], timeout=1800, check=False)
    if result.returncode != 0:
        print(f"bench/setup.sh failed (exit {result.returncode}): the tests needing it are skipped")


def test_files(args: argparse.Namespace, names: list[str]) -> dict[str, Path]:
    WORK.mkdir(exist_ok=True)
    files = {
        "small64k": random_file(WORK / "small64k.bin", 64 * KIB),
        "small4k": random_file(WORK / "small4k.bin", 4 * KIB),
    }
    if not args.skip_big:
        files["big"] = random_file(WORK / "big.bin", GIB)
    satchel = any(SERVERS[name].family == "satchel" for name in names)
    if args.huge and satchel:
        files["huge"] = random_file(WORK / "huge.bin", 5 * GIB)
    if not args.skip_big and satchel:
        files["tus2g"] = random_file(WORK / "tus2g.bin", 2 * GIB)
    return files


def plan(files: dict[str, Path], scratch: Path) -> list[Step]:
    steps: list[Step] = []
    if "big" in files:
        steps.append(big_transfer(files["big"], scratch))
    if shutil.which("ab"):
        steps.append(small_uploads(files["small64k"]))
    else:
        print("ab is missing (Debian apache2-utils, bench/setup.sh): no 64 KiB upload test")
    if shutil.which("wrk"):
        steps.append(small_downloads(files["small4k"], scratch))
    else:
        print("wrk is missing (Debian wrk, bench/setup.sh): no 4 KiB download test")
    if "huge" in files:
        steps.append(huge_upload(files["huge"], scratch))
    if "big" in files:
        steps.append(tus_upload(files["big"]))
    if "tus2g" in files:
        steps.append(tus_resume(files["tus2g"]))
    return steps


# -- the record ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    meminfo = Path("/proc/meminfo").read_text().split()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": models[0] if models else "unknown",
        "memory_gb": round(int(meminfo[meminfo.index("MemTotal:") + 1]) * 1024 / 1e9, 1),
        "kernel": os.uname().release,
        "python": platform.python_version(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }


def write_record(record: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    partial = out.with_suffix(".json.tmp")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    partial.replace(out)
    return out


# -- the run ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    names = [name for name in SERVERS if name in args.only] if args.only else list(SERVERS)
    ensure_tools(names)
    if not shutil.which("curl"):
        print("curl is missing and bench/setup.sh could not install it: nothing to measure")
        return 1
    if os.getloadavg()[0] > 0.5:
        print(f"note: load average {os.getloadavg()[0]:.2f}: other work on the machine skews this")
    files = test_files(args, names)
    record: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(ROOT),
        "machine": machine(),
        "options": {key: getattr(args, key) for key in ("only", "skip_big", "huge", "repeat")},
        "tools": {tool: tool_version([tool, flag]) for tool, flag in VERSION_FLAGS.items()},
        "servers": {},
    }
    with tempfile.TemporaryDirectory(prefix="run-", dir=WORK) as tmp:
        kinds = [SERVERS[name] for name in names]
        big = "huge" in files or "tus2g" in files
        extra = {name: HUGE_SETTINGS for name in names if big and SERVERS[name].family == "satchel"}
        with servers_up(kinds, Path(tmp), LOGS, record["servers"], extra) as servers:
            runs = run_all(servers, plan(files, Path(tmp)), args.repeat)
    satchel, copyparty = summarize(runs.get("satchel", {})), summarize(runs.get("copyparty", {}))
    scale = summarize(runs.get("satchel-s3pg", {}))
    targets = evaluate(satchel, copyparty)
    record["copyparty_version"] = record["servers"].get("copyparty", {}).get("version")
    record.update(satchel=satchel, copyparty=copyparty, targets=targets_json(targets), runs=runs)
    record["satchel-s3pg"] = scale
    # Every figure of the scale-out configuration divided by the default's (satchel).
    record["ratios_s3pg_to_satchel"] = ratios(scale, satchel)
    print()
    print_report(satchel, copyparty, targets, record["servers"], scale)
    print(f"\nwritten {write_record(record).relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: the servers are stopped, no results written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
