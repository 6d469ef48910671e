"""`make bench`: Satchel against copyparty on loopback, same clients, same run.

Measures a 1 GiB multipart upload and its download (MB/s, server CPU seconds, peak RSS),
64 KiB uploads at concurrency 16 (ab) and 4 KiB downloads for 10 s at 64 connections (wrk),
prints a table with the ratio Satchel/copyparty and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
RESULTS = HERE / "results"
BENCH_ENV = HERE / ".env"
COPYPARTY_VERSION = "1.20.26"
BOUNDARY = "----satchelbench"
GIB = 1 << 30
MB = 1_000_000
TARGETS = {
    "big_upload_mb_s": 3.0,
    "big_download_mb_s": 0.7,
    "small_uploads_per_s": 1.7,
    "small_downloads_req_s": 1.5,
}
P99_LIMIT_MS = 50.0
RSS_LIMIT_MB = 150.0


# -- test data -------------------------------------------------------------------------


def make_file(path: Path, size: int) -> Path:
    if path.exists() and path.stat().st_size == size:
        return path
    block = os.urandom(min(size, 64 << 20))
    with path.open("wb") as out:
        written, counter = 0, 0
        while written < size:
            # A different prefix per block keeps the file incompressible and non-repeating.
            piece = counter.to_bytes(8, "big") + block[8 : min(len(block), size - written)]
            out.write(piece)
            written += len(piece)
            counter += 1
    return path


def multipart_body(path: Path, field_name: str, extra: dict[str, str]) -> Path:
    body = path.with_suffix(f".{field_name}.multipart")
    parts = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in extra.items()
    )
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field_name}"; '
        f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    body.write_bytes(parts + head + path.read_bytes() + f"\r\n--{BOUNDARY}--\r\n".encode())
    return body


# -- process measurements --------------------------------------------------------------


def tree_pids(root: int) -> list[int]:
    pids, frontier = [root], [root]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            pids.append(child)
            frontier.append(child)
    return pids


def cpu_seconds(root: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def rss_mb(root: int) -> float:
    total = 0
    for pid in tree_pids(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) if match else 0
    return total / 1024


class PeakRss:
    """Samples the summed RSS of the server's process tree every 20 ms."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.root))
            self._stop.wait(0.02)


# -- servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        result = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.stdout.strip() in {"200", "204"}:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


@dataclass
class Server:
    name: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def ready_url(self) -> str:
        raise NotImplementedError

    def upload_args(self, path: Path) -> list[str]:
        raise NotImplementedError

    def upload_url(self) -> str:
        raise NotImplementedError

    def upload_field(self) -> tuple[str, dict[str, str]]:
        raise NotImplementedError

    def download_url(self, curl_output: str, path: Path) -> str:
        raise NotImplementedError

    def start(self) -> None:
        argv, env = self.command()
        log = (self.data_dir.parent / f"{self.name}.log").open("wb")
        self.process = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        wait_http(self.ready_url(), self.process)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


class Satchel(Server):
    def command(self) -> tuple[list[str], dict[str, str]]:
        satchel = Path(sys.executable).with_name("satchel")
        env = {
            "SATCHEL_DATA_DIR": str(self.data_dir),
            "SATCHEL_PUBLIC_URL": self.base,
            # A load test from one address would only measure the guest rate limits.
            "SATCHEL_RATE_LIMITS_ENABLED": "false",
        }
        return [str(satchel), "serve", "--host", "127.0.0.1", "--port", str(self.port)], env

    def ready_url(self) -> str:
        return self.base + "/healthz"

    def upload_args(self, path: Path) -> list[str]:
        return ["-F", f"files=@{path}", self.upload_url()]

    def upload_url(self) -> str:
        return self.base + "/upload"

    def upload_field(self) -> tuple[str, dict[str, str]]:
        return "files", {}

    def download_url(self, curl_output: str, path: Path) -> str:
        url: str = json.loads(curl_output)["download_url"]
        return url


class Copyparty(Server):
    def command(self) -> tuple[list[str], dict[str, str]]:
        exe = BENCH_ENV / "bin" / "copyparty"
        return [
            str(exe),
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-v",
            f"{self.data_dir}::rw",
            "-q",
        ], {}

    def ready_url(self) -> str:
        return self.base + "/"

    def upload_args(self, path: Path) -> list[str]:
        return ["-F", "act=bput", "-F", f"f=@{path}", self.upload_url()]

    def upload_url(self) -> str:
        return self.base + "/"

    def upload_field(self) -> tuple[str, dict[str, str]]:
        return "f", {"act": "bput"}

    def download_url(self, curl_output: str, path: Path) -> str:
        return f"{self.base}/{path.name}"


# -- measurements ----------------------------------------------------------------------


def settle() -> None:
    """Writes back what earlier steps left dirty, so no step pays for the one before."""
    os.sync()
    time.sleep(1)


def curl_transfer(
    args: list[str], server: Server, timeout: float = 600, keep_body: bool = True
) -> tuple[float, float, float, str]:
    """(seconds, cpu seconds, peak RSS MB, body) of one curl transfer."""
    body = WORK / f"curl-{server.name}.out" if keep_body else Path(os.devnull)
    settle()
    cpu_before = cpu_seconds(server.pid)
    with PeakRss(server.pid) as peak:
        result = subprocess.run(
            ["curl", "-sS", "--fail", "-o", str(body), "-w", "%{time_total}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    cpu = cpu_seconds(server.pid) - cpu_before
    if not keep_body:
        return float(result.stdout), cpu, peak.peak, ""
    text = body.read_text(errors="replace")
    body.unlink()
    return float(result.stdout), cpu, peak.peak, text


def measure_big(server: Server, big: Path, results: dict[str, Any]) -> None:
    seconds, cpu, peak, output = curl_transfer(server.upload_args(big), server)
    size = big.stat().st_size
    results["big_upload_mb_s"] = size / MB / seconds
    results["big_upload_cpu_s"] = cpu
    results["big_upload_peak_rss_mb"] = peak
    url = server.download_url(output, big)
    seconds, cpu, peak, _ = curl_transfer([url], server, keep_body=False)
    results["big_download_mb_s"] = size / MB / seconds
    results["big_download_cpu_s"] = cpu
    results["big_download_peak_rss_mb"] = peak


def measure_huge(server: Server, huge: Path, results: dict[str, Any]) -> None:
    seconds, _cpu, peak, _ = curl_transfer(server.upload_args(huge), server, timeout=1800)
    results["huge_upload_mb_s"] = huge.stat().st_size / MB / seconds
    results["huge_upload_peak_rss_mb"] = peak


def measure_small_uploads(server: Server, small: Path, results: dict[str, Any]) -> None:
    field_name, extra = server.upload_field()
    body = multipart_body(small, field_name, extra)
    settle()
    with PeakRss(server.pid) as peak:
        result = subprocess.run(
            [
                "ab",
                "-q",
                "-n",
                "200",
                "-c",
                "16",
                "-s",
                "60",
                "-p",
                str(body),
                "-T",
                f"multipart/form-data; boundary={BOUNDARY}",
                server.upload_url(),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    rate = re.search(r"Requests per second:\s+([\d.]+)", result.stdout)
    failed = re.search(r"Failed requests:\s+(\d+)", result.stdout)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", result.stdout)
    results["small_uploads_per_s"] = float(rate.group(1)) if rate else 0.0
    results["small_uploads_failed"] = (int(failed.group(1)) if failed else 0) + (
        int(non2xx.group(1)) if non2xx else 0
    )
    results["small_uploads_peak_rss_mb"] = peak.peak


def measure_small_downloads(server: Server, small: Path, results: dict[str, Any]) -> None:
    _, _, _, output = curl_transfer(server.upload_args(small), server)
    url = server.download_url(output, small)
    settle()
    with PeakRss(server.pid) as peak:
        result = subprocess.run(
            ["wrk", "-t2", "-c64", "-d10s", "--latency", url],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", result.stdout)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", result.stdout)
    results["small_downloads_req_s"] = float(rate.group(1)) if rate else 0.0
    results["small_downloads_p99_ms"] = _ms(p99.group(1), p99.group(2)) if p99 else float("inf")
    results["small_downloads_errors"] = int(errors.group(1)) if errors else 0
    results["small_downloads_peak_rss_mb"] = peak.peak


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# -- orchestration ---------------------------------------------------------------------


Step = Callable[[Server, dict[str, Any]], None]


def run_server(server: Server, steps: list[Step]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    server.data_dir.mkdir(parents=True)
    print(f"starting {server.name} on {server.base}", flush=True)
    server.start()
    try:
        for step in steps:
            print(f"  {server.name}: {step.__name__}", flush=True)
            step(server, results)
    finally:
        server.stop()
    return results


def check_tools() -> None:
    missing = [tool for tool in ("curl", "ab", "wrk") if shutil.which(tool) is None]
    if missing or not (BENCH_ENV / "bin" / "copyparty").exists():
        print(f"setting up the bench environment (missing: {', '.join(missing) or 'copyparty'})")
        subprocess.run(["bash", str(HERE / "setup.sh")], check=True)


def git_commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


def evaluate(satchel: dict[str, Any], copyparty: dict[str, Any]) -> dict[str, Any]:
    verdict: dict[str, Any] = {}
    for name, target in TARGETS.items():
        if name in satchel and copyparty.get(name):
            ratio = satchel[name] / copyparty[name]
            verdict[name] = {"ratio": ratio, "target": target, "pass": ratio >= target}
    if "small_downloads_p99_ms" in satchel:
        p99 = satchel["small_downloads_p99_ms"]
        verdict["small_downloads_p99_ms"] = {
            "value": p99,
            "limit": P99_LIMIT_MS,
            "pass": p99 < P99_LIMIT_MS,
        }
    peaks = [v for k, v in satchel.items() if k.endswith("peak_rss_mb")]
    if peaks:
        verdict["peak_rss_mb"] = {
            "value": max(peaks),
            "limit": RSS_LIMIT_MB,
            "pass": max(peaks) < RSS_LIMIT_MB,
        }
    return verdict


def print_table(
    satchel: dict[str, Any], copyparty: dict[str, Any], verdict: dict[str, Any]
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Satchel vs copyparty (loopback, same clients, same run)")
    for column in ("figure", "Satchel", "copyparty", "Satchel/copyparty", "target"):
        table.add_column(column, justify="right" if column != "figure" else "left")
    for name in sorted(set(satchel) | set(copyparty)):
        mine, theirs = satchel.get(name), copyparty.get(name)
        ratio = (
            f"{mine / theirs:.2f}"
            if isinstance(mine, float) and isinstance(theirs, float) and theirs
            else ""
        )
        target = verdict.get(name, {})
        mark = (
            ""
            if not target
            else f"{'PASS' if target['pass'] else 'FAIL'} {target.get('target', target.get('limit'))}"
        )
        table.add_row(name, _fmt(mine), _fmt(theirs), ratio, mark)
    Console().print(table)
    for name, outcome in verdict.items():
        if not outcome["pass"]:
            print(f"FAIL {name}: {outcome}")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"
    return str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["satchel", "copyparty"])
    parser.add_argument("--skip-big", action="store_true", help="skip the 1 GiB transfer")
    parser.add_argument(
        "--huge", action="store_true", help="also upload 5 GiB to Satchel (peak RSS)"
    )
    args = parser.parse_args()
    check_tools()
    WORK.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    big = make_file(WORK / "big.bin", GIB) if not args.skip_big else None
    small64 = make_file(WORK / "small64k.bin", 64 * 1024)
    small4 = make_file(WORK / "small4k.bin", 4 * 1024)

    steps: list[Step] = []
    if big is not None:
        steps.append(lambda s, r: measure_big(s, big, r))
        steps[-1].__name__ = "1 GiB upload and download"
    steps.append(lambda s, r: measure_small_uploads(s, small64, r))
    steps[-1].__name__ = "64 KiB uploads, c=16"
    steps.append(lambda s, r: measure_small_downloads(s, small4, r))
    steps[-1].__name__ = "4 KiB downloads, c=64, 10 s"

    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="satchel-bench-", dir=WORK) as tmp:
        if args.only in (None, "satchel"):
            satchel_steps = list(steps)
            if args.huge:
                huge = make_file(WORK / "huge.bin", 5 * GIB)
                satchel_steps.append(lambda s, r: measure_huge(s, huge, r))
                satchel_steps[-1].__name__ = "5 GiB upload"
            figures["satchel"] = run_server(
                Satchel("satchel", Path(tmp) / "satchel"), satchel_steps
            )
        if args.only in (None, "copyparty"):
            figures["copyparty"] = run_server(
                Copyparty("copyparty", Path(tmp) / "copyparty"), steps
            )

    satchel, copyparty = figures.get("satchel", {}), figures.get("copyparty", {})
    verdict = evaluate(satchel, copyparty)
    print_table(satchel, copyparty, verdict)
    record = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
        },
        "copyparty_version": COPYPARTY_VERSION,
        "satchel": satchel,
        "copyparty": copyparty,
        "targets": verdict,
    }
    out = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
