"""tus measurements (Satchel only: copyparty speaks its own resumable protocol, not tus).

- ``tus_upload``: 1 GiB in PATCH requests of 50 MiB each, one after the other, as a tus client
  with a 50 MiB chunk size sends it.
- ``tus_resume``: 2 GiB whose connection is cut three times mid-request (the socket closed
  after part of a PATCH body), each time resumed from the offset HEAD reports; the download
  must then be byte-exact. Peak memory shows whether the server's memory stays flat.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from harness.clients import LoadFailed
from harness.procfs import MB, Meter
from harness.servers import Server
from harness.steps import Figures, Step, settle

TUS = {"Tus-Resumable": "1.0.0"}
PATCH_SIZE = 50 * 1024 * 1024
PIECE = 1024 * 1024
CUTS = 3


def _pieces(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as source:
        source.seek(start)
        left = length
        while left:
            piece = source.read(min(PIECE, left))
            if not piece:
                raise LoadFailed(f"{path} ended early")
            left -= len(piece)
            yield piece


def _create(client: httpx.Client, server: Server, size: int, name: str) -> str:
    metadata = "filename " + __import__("base64").b64encode(name.encode()).decode()
    answer = client.post(
        server.base + "/tus/",
        headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": metadata},
    )
    if answer.status_code != 201:
        raise LoadFailed(f"tus creation answered {answer.status_code}: {answer.text[:200]}")
    return str(answer.headers["location"])


def _patch(client: httpx.Client, url: str, path: Path, offset: int, length: int) -> httpx.Response:
    headers = {
        **TUS,
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": str(offset),
        "Content-Length": str(length),
    }
    answer = client.patch(url, content=_pieces(path, offset, length), headers=headers)
    if answer.status_code != 204:
        raise LoadFailed(f"PATCH at {offset} answered {answer.status_code}: {answer.text[:200]}")
    return answer


def _offset(client: httpx.Client, url: str) -> int:
    answer = client.head(url, headers=TUS)
    if answer.status_code != 200:
        raise LoadFailed(f"HEAD answered {answer.status_code}")
    return int(answer.headers["upload-offset"])


def _offset_after_cut(client: httpx.Client, url: str, before: int, limit: float = 60) -> int:
    """The offset once the server has kept what reached it of a cut PATCH.

    The server notices the reset, then writes down what it has: on a local disk that takes
    well under the first 0.2 s; with S3 the last part goes to the bucket first, and a HEAD
    meanwhile still shows the offset from before the cut (resuming there would be refused).
    """
    deadline = time.monotonic() + limit
    time.sleep(0.2)
    while (offset := _offset(client, url)) <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    return offset


def _download_sha256(client: httpx.Client, url: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with client.stream("GET", url) as answer:
        if answer.status_code != 200:
            raise LoadFailed(f"download answered {answer.status_code}")
        for piece in answer.iter_bytes(PIECE):
            digest.update(piece)
            size += len(piece)
    return digest.hexdigest(), size


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while piece := source.read(8 * PIECE):
            digest.update(piece)
    return digest.hexdigest()


def tus_upload(big: Path) -> Step:
    def run(server: Server, results: dict[str, Figures]) -> None:
        size = big.stat().st_size
        settle()
        with httpx.Client(timeout=600) as client, Meter(server.pid) as meter:
            started = time.perf_counter()
            url = _create(client, server, size, big.name)
            offset = 0
            while offset < size:
                length = min(PATCH_SIZE, size - offset)
                answer = _patch(client, url, big, offset, length)
                offset = int(answer.headers["upload-offset"])
            seconds = time.perf_counter() - started
            download_url = answer.headers.get("satchel-download-url")
        assert meter.usage is not None
        if not download_url:
            raise LoadFailed("the last PATCH gave no Satchel-Download-Url")
        results["tus_upload"] = {
            "bytes": size,
            "seconds": round(seconds, 4),
            "mb_s": round(size / MB / seconds, 2),
            "patch_mib": PATCH_SIZE // (1024 * 1024),
            **meter.usage.figures(),
        }
        manage = str(answer.headers["satchel-manage-url"])
        httpx.post(manage.replace("/manage/", "/delete/"), timeout=60)

    return Step("1 GiB tus upload, 50 MiB PATCHes (httpx)", ("tus_upload",), run, only="satchel")


def _cut_patch(url: str, path: Path, offset: int, length: int, send: int) -> None:
    """A PATCH for ``length`` bytes whose connection is closed after ``send`` of them."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.sendall(head)
        for piece in _pieces(path, offset, send):
            sock.sendall(piece)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    # SO_LINGER 0: the close sends a reset, as a dropped connection does.


def tus_resume(huge: Path) -> Step:
    def run(server: Server, results: dict[str, Figures]) -> None:
        size = huge.stat().st_size
        expected = _file_sha256(huge)
        settle()
        with httpx.Client(timeout=900) as client, Meter(server.pid) as meter:
            started = time.perf_counter()
            url = _create(client, server, size, huge.name)
            offsets = []
            for cut in range(CUTS):
                offset = _offset(client, url)
                # Each attempt sends a fifth of the file plus an odd amount, then drops.
                send = size // 5 + 12_345 * (cut + 1)
                _cut_patch(url, huge, offset, size - offset, send)
                offsets.append(_offset_after_cut(client, url, offset))
            offset = _offset(client, url)
            answer = _patch(client, url, huge, offset, size - offset)
            seconds = time.perf_counter() - started
            got, got_size = _download_sha256(client, str(answer.headers["satchel-download-url"]))
        assert meter.usage is not None
        if got != expected or got_size != size:
            raise LoadFailed(f"download differs: {got_size} bytes, sha256 {got[:16]}…")
        results["tus_resume"] = {
            "bytes": size,
            "cuts": CUTS,
            "offsets_after_cuts": ",".join(str(o) for o in offsets),
            "seconds_with_download": round(seconds, 2),
            "byte_exact": 1,
            **meter.usage.figures(),
        }
        httpx.post(
            str(answer.headers["satchel-manage-url"]).replace("/manage/", "/delete/"), timeout=60
        )

    title = f"2 GiB tus upload cut {CUTS} times, resumed, downloaded (sha256)"
    return Step(title, ("tus_resume",), run, only="satchel")
