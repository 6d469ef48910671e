"""SIGKILL of the whole server in the middle of a transfer, then a restart on the same data and
a sweep: nothing half-written is ever served, nothing is left over, and what was finished before
the kill is byte-exact."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from tests.reliability.conftest import StartServer
from tests.reliability.harness import (
    HEADER,
    SEALED_CHUNK,
    Server,
    check_no_leftovers,
    check_served,
    multipart,
    raw_request,
    tus_blob_key,
    tus_create,
    tus_patch,
    upload,
    uuid_of,
    wait_for,
)

MiB = 1 << 20


def finished_uploads(server: Server) -> dict[str, bytes]:
    """Uploads done before the crash, of one chunk, of several, a ZIP and one by tus:
    name → content."""
    expected = {"small.txt": b"finished before the crash\n", "multi.bin": os.urandom(3 * MiB + 5)}
    for name, content in expected.items():
        upload(server, name, content)
    bundle = httpx.post(
        server.url + "/upload",
        files=[("files", ("a.txt", b"first")), ("files", ("b.txt", b"second"))],
        timeout=60,
    )
    assert bundle.status_code == 200, bundle.text
    zipped = httpx.get(bundle.json()["download_url"], timeout=60)
    assert zipped.status_code == 200
    expected["files.zip"] = zipped.content
    by_tus = os.urandom(2 * MiB + 3)
    url = tus_create(server, len(by_tus), "tus-done.bin")
    assert tus_patch(url, 0, by_tus[:MiB]).status_code == 204
    assert tus_patch(url, MiB, by_tus[MiB:]).status_code == 204
    expected["tus-done.bin"] = by_tus
    return expected


def recover(server: Server, expected: dict[str, bytes]) -> None:
    """The kill has happened: restart, check what is served, sweep, check again."""
    server.start()
    check_served(server, expected)
    server.sweep()
    check_served(server, expected)
    check_no_leftovers(server)


def send_upload_in_part(server: Server, stack: ExitStack, files: list[tuple[str, int]]) -> None:
    """Starts a POST /upload of ``files`` (name, size) and sends all but the last 3 MiB."""
    boundary, pieces = multipart([("files", name, os.urandom(size)) for name, size in files])
    body = b"".join(pieces)
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(body)),
    }
    request = stack.enter_context(raw_request(server, "POST", "/upload", headers))
    request.send(body[: len(body) - 3 * MiB])


def send_patch_in_part(server: Server, stack: ExitStack, url: str, size: int) -> None:
    """Starts a PATCH of ``size`` bytes at offset 0 and sends 3 MiB of them."""
    headers = {
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(size),
    }
    path = "/tus/" + url.rsplit("/", 1)[1]
    request = stack.enter_context(raw_request(server, "PATCH", path, headers))
    request.send(os.urandom(3 * MiB))


def drain(pieces: Iterator[bytes], received: bytearray) -> None:
    for piece in pieces:
        received += piece


def uploads_half_written(server: Server) -> bool:
    """Both uploads have chunks on disk: the single file's, and the ZIP's past its first entry."""
    sizes = sorted((path.stat().st_size for path in server.temp_files()), reverse=True)
    return len(sizes) == 2 and sizes[0] >= 3 * MiB and sizes[1] >= MiB


def test_kill_in_the_middle_of_every_kind_of_transfer(start_server: StartServer) -> None:
    """One crash cuts a one-file upload, a several-file (ZIP) upload, a tus PATCH and a large
    download, each once the server has written or sent part of it."""
    server = start_server()
    expected = finished_uploads(server)
    large = os.urandom(32 * MiB)
    large_url = f"{server.url}/f/{uuid_of(upload(server, 'large.bin', large))}"
    expected["large.bin"] = large
    tus_url = tus_create(server, 8 * MiB, "tus-inflight.bin")
    tus_key = tus_blob_key(server, tus_url)
    received = bytearray()
    with ExitStack() as stack:
        send_upload_in_part(server, stack, [("inflight.bin", 8 * MiB)])
        send_upload_in_part(server, stack, [("zip-one.bin", 2 * MiB), ("zip-two.bin", 6 * MiB)])
        send_patch_in_part(server, stack, tus_url, 8 * MiB)
        download = stack.enter_context(httpx.stream("GET", large_url, timeout=30))
        assert download.headers["content-length"] == str(len(large))
        pieces = download.iter_bytes()
        while len(received) < 2 * MiB:
            received += next(pieces)
        wait_for(lambda: uploads_half_written(server), 15, "both uploads' first chunks")
        wait_for(
            lambda: server.staged().get(tus_key, 0) >= HEADER + 2 * SEALED_CHUNK,
            15,
            "the PATCH's first chunks in the staged blob",
        )
        server.kill()
        with pytest.raises(httpx.TransportError):  # a short body against Content-Length
            drain(pieces, received)
    assert len(received) < len(large), "the download was to be cut"
    assert received == large[: len(received)]
    assert len(server.temp_files()) == 2, "the kill was to leave both uploads' temp files"
    recover(server, expected)
    head = httpx.head(tus_url, headers={"Tus-Resumable": "1.0.0"}, timeout=10)
    assert head.status_code == 200, f"the cut tus upload is lost: HEAD {head.status_code}"
    assert int(head.headers["upload-offset"]) <= 3 * MiB, "more bytes kept than were sent"
