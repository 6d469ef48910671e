"""The load generators, the same for both servers: curl, ApacheBench (ab) and wrk."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_CURL_FORMAT = "%{time_total} %{http_code} %{size_download} %{size_upload}"


class LoadFailed(RuntimeError):
    """A client could not do its part; the figures of that step are not valid."""


@dataclass
class Transfer:
    seconds: float
    status: int
    downloaded: int
    uploaded: int
    answer: str


def curl(args: list[str], timeout: float, answer_file: Path | None = None) -> Transfer:
    """One curl request; the answer is kept (and read back) only when `answer_file` is given."""
    output = str(answer_file) if answer_file else "/dev/null"
    argv = ["curl", "-sS", "--max-time", str(int(timeout)), "-o", output, "-w", _CURL_FORMAT]
    result = _run([*argv, *args], timeout + 10)
    if result.returncode != 0:
        raise LoadFailed(f"curl exited with {result.returncode}: {result.stderr.strip()}")
    seconds, status, downloaded, uploaded = result.stdout.split()
    answer = ""
    if answer_file is not None:
        answer = answer_file.read_text(errors="replace")
        answer_file.unlink()
    transfer = Transfer(float(seconds), int(status), int(downloaded), int(uploaded), answer)
    if not 200 <= transfer.status < 300:
        raise LoadFailed(f"HTTP {transfer.status} (2xx expected): {answer[:300]!r}")
    return transfer


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LoadFailed(f"{argv[0]} did not finish in {timeout:.0f} s") from exc


@dataclass
class AbResult:
    complete: int
    per_second: float
    p99_ms: float
    non_2xx: int
    failed: int  # connect, receive and exception failures; length differences are no failure

    @property
    def errors(self) -> int:
        return self.non_2xx + self.failed


def ab_post(url: str, body: Path, content_type: str, requests: int, concurrency: int) -> AbResult:
    """`requests` POSTs of `body`, `concurrency` at a time (one connection each, no keep-alive)."""
    argv = ["ab", "-q", "-r", "-s", "60", "-n", str(requests), "-c", str(concurrency)]
    result = _run([*argv, "-p", str(body), "-T", content_type, url], timeout=300)
    if result.returncode != 0 or "Requests per second" not in result.stdout:
        raise LoadFailed(f"ab exited with {result.returncode}: {result.stderr.strip()[-500:]}")
    return parse_ab(result.stdout)


def parse_ab(text: str) -> AbResult:
    kinds = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", text)
    return AbResult(
        complete=int(_number(r"Complete requests:\s+(\d+)", text)),
        per_second=_number(r"Requests per second:\s+([\d.]+)", text),
        p99_ms=_number(r"\n\s+99%\s+(\d+)", text),
        non_2xx=int(_number(r"Non-2xx responses:\s+(\d+)", text, default=0)),
        failed=sum(int(n) for n in kinds.groups()) if kinds else 0,
    )


@dataclass
class WrkResult:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: int


def wrk_get(url: str, threads: int, connections: int, seconds: int) -> WrkResult:
    """GETs of `url` for `seconds` over `connections` keep-alive connections."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    result = _run([*argv, "--latency", url], timeout=seconds + 60)
    if result.returncode != 0 or "Requests/sec" not in result.stdout:
        raise LoadFailed(f"wrk exited with {result.returncode}: {result.stderr.strip()[-500:]}")
    return parse_wrk(result.stdout)


def parse_wrk(text: str) -> WrkResult:
    sockets = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkResult(
        requests=int(_number(r"(\d+) requests in", text)),
        per_second=_number(r"Requests/sec:\s+([\d.]+)", text),
        p50_ms=_latency_ms("50%", text),
        p99_ms=_latency_ms("99%", text),
        non_2xx_3xx=int(_number(r"Non-2xx or 3xx responses:\s+(\d+)", text, default=0)),
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def _number(pattern: str, text: str, default: float | None = None) -> float:
    match = re.search(pattern, text)
    if match:
        return float(match.group(1))
    if default is None:
        raise LoadFailed(f"no {pattern!r} in the output:\n{text[-800:]}")
    return default


def _latency_ms(percentile: str, text: str) -> float:
    match = re.search(rf"\n\s+{percentile}\s+([\d.]+)(us|ms|s)\b", text)
    if not match:
        raise LoadFailed(f"no {percentile} latency in wrk's output:\n{text[-800:]}")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def tool_version(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"
