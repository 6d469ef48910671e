"""The measurements, each run the same way against either server."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.clients import LoadFailed, Transfer, ab_post, curl, wrk_get
from harness.data import multipart_body
from harness.procfs import MB, Meter, Usage
from harness.servers import Server

Figures = dict[str, float | int | str]
BOUNDARY = "----SatchelBench7MA4YWxkTrZu0gW"
SMALL_UPLOADS = 200
SMALL_UPLOAD_CONCURRENCY = 16
WRK_THREADS, WRK_CONNECTIONS, WRK_SECONDS = 2, 64, 10


@dataclass
class Step:
    """A measurement: `run` puts the figures of `tests` into the results as each one ends."""

    title: str
    tests: tuple[str, ...]
    run: Callable[[Server, dict[str, Figures]], None]
    only: str | None = None  # the one family of servers it is for, or all


def settle() -> None:
    """Writes of the previous test reach the disk before the next test starts."""
    os.sync()


def _metered_curl(
    server: Server, args: list[str], timeout: float, answer: Path | None = None
) -> tuple[Transfer, Usage]:
    with Meter(server.pid) as meter:
        transfer = curl(args, timeout, answer)
    assert meter.usage is not None
    return transfer, meter.usage


def _transfer_figures(size: int, transfer: Transfer, usage: Usage) -> Figures:
    return {
        "bytes": size,
        "seconds": round(transfer.seconds, 4),
        "mb_s": round(size / MB / transfer.seconds, 2),
        "http_status": transfer.status,
        **usage.figures(),
    }


def upload(server: Server, path: Path, answer: Path, timeout: float) -> tuple[Figures, str]:
    """One multipart upload of `path` with curl: its figures and the server's answer."""
    settle()
    size = path.stat().st_size
    transfer, usage = _metered_curl(server, server.curl_form(path), timeout, answer)
    if transfer.uploaded < size:
        raise LoadFailed(f"curl sent {transfer.uploaded} bytes, the file has {size}")
    return _transfer_figures(size, transfer, usage), transfer.answer


def download(server: Server, url: str, size: int, timeout: float) -> Figures:
    """One GET of `url` with curl into /dev/null; the whole file must arrive."""
    settle()
    transfer, usage = _metered_curl(server, [url], timeout)
    if transfer.downloaded != size:
        raise LoadFailed(f"downloaded {transfer.downloaded} bytes of {size} from {url}")
    return _transfer_figures(size, transfer, usage)


def big_transfer(big: Path, scratch: Path) -> Step:
    """The upload and download of a large file, which is then deleted.

    Writing costs the kernel more once gigabytes written earlier are still on disk (twice the
    CPU time on the machine this was written on), so each server's big upload starts with the
    others' deleted: neither pays for the one measured before it.
    """

    def run(server: Server, results: dict[str, Figures]) -> None:
        results["big_upload"], answer = upload(server, big, scratch / "answer.txt", timeout=900)
        try:
            url = server.download_url(answer)
            results["big_download"] = download(server, url, big.stat().st_size, timeout=900)
        finally:
            server.delete(answer)

    return Step("1 GiB upload, then its download (curl)", ("big_upload", "big_download"), run)


def huge_upload(huge: Path, scratch: Path) -> Step:
    def run(server: Server, results: dict[str, Figures]) -> None:
        results["huge_upload"], answer = upload(server, huge, scratch / "answer.txt", timeout=3600)
        server.delete(answer)

    return Step("5 GiB upload (curl)", ("huge_upload",), run, only="satchel")


def small_uploads(small: Path) -> Step:
    def run(server: Server, results: dict[str, Figures]) -> None:
        file_field, fields = server.form()
        body = multipart_body(small, file_field, fields, BOUNDARY)
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
        settle()
        with Meter(server.pid) as meter:
            result = ab_post(
                server.upload_url(), body, content_type, SMALL_UPLOADS, SMALL_UPLOAD_CONCURRENCY
            )
        assert meter.usage is not None
        results["small_uploads"] = {
            "requests": SMALL_UPLOADS,
            "concurrency": SMALL_UPLOAD_CONCURRENCY,
            "complete": result.complete,
            "per_s": result.per_second,
            "p99_ms": result.p99_ms,
            "non_2xx": result.non_2xx,
            "errors": result.errors,
            **meter.usage.figures(),
        }

    title = f"{SMALL_UPLOADS} uploads of 64 KiB, {SMALL_UPLOAD_CONCURRENCY} at a time (ab)"
    return Step(title, ("small_uploads",), run)


def small_downloads(small: Path, scratch: Path) -> Step:
    def run(server: Server, results: dict[str, Figures]) -> None:
        _, answer = upload(server, small, scratch / "answer.txt", timeout=60)
        url = server.download_url(answer)
        download(server, url, small.stat().st_size, timeout=60)  # a 200 with the whole file
        settle()
        with Meter(server.pid) as meter:
            result = wrk_get(url, WRK_THREADS, WRK_CONNECTIONS, WRK_SECONDS)
        assert meter.usage is not None
        results["small_downloads"] = {
            "connections": WRK_CONNECTIONS,
            "duration_s": WRK_SECONDS,
            "requests": result.requests,
            "req_s": result.per_second,
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "non_2xx_3xx": result.non_2xx_3xx,
            "socket_errors": result.socket_errors,
            **meter.usage.figures(),
        }

    title = f"4 KiB downloads for {WRK_SECONDS} s over {WRK_CONNECTIONS} connections (wrk)"
    return Step(title, ("small_downloads",), run)
