"""SIGKILL of the whole server in the middle of a transfer, then a restart on the same data and
a sweep: nothing half-written is ever served, nothing is left over, and what was finished before
the kill is byte-exact."""

from __future__ import annotations

import os

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
    """Uploads done before the crash, of one chunk, of several, and a ZIP: name → content."""
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
    return expected


def recover(server: Server, expected: dict[str, bytes]) -> None:
    """The kill has happened: restart, check what is served, sweep, check again."""
    server.start()
    check_served(server, expected)
    server.sweep()
    check_served(server, expected)
    check_no_leftovers(server)


def temp_file_of_at_least(server: Server, size: int) -> bool:
    return any(path.stat().st_size >= size for path in server.temp_files())


def read_until_killed(server: Server, url: str, size: int, received: bytearray) -> None:
    """Downloads ``url`` into ``received``, killing the server once 2 MiB are in."""
    with httpx.stream("GET", url, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(size)
        for piece in response.iter_bytes():
            received += piece
            if len(received) >= 2 * MiB and server.process is not None:
                server.kill()


def test_kill_during_a_single_file_upload(start_server: StartServer) -> None:
    server = start_server()
    expected = finished_uploads(server)
    boundary, pieces = multipart([("files", "inflight.bin", os.urandom(8 * MiB))])
    length = sum(len(piece) for piece in pieces)
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(length),
    }
    with raw_request(server, "POST", "/upload", headers) as request:
        request.send(pieces[0])
        request.send(pieces[1][: 3 * MiB])
        wait_for(lambda: temp_file_of_at_least(server, MiB), 15, "the upload's first chunks")
        server.kill()
    assert server.temp_files(), "the kill was to land mid-write, with a temp file left"
    recover(server, expected)


def test_kill_during_a_several_file_upload(start_server: StartServer) -> None:
    server = start_server()
    expected = finished_uploads(server)
    boundary, pieces = multipart(
        [
            ("files", "zip-one.bin", os.urandom(2 * MiB)),
            ("files", "zip-two.bin", os.urandom(6 * MiB)),
        ]
    )
    length = sum(len(piece) for piece in pieces)
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(length),
    }
    with raw_request(server, "POST", "/upload", headers) as request:
        for piece in pieces[:4]:  # the whole first file, and the second one's part header
            request.send(piece)
        request.send(pieces[4][: 3 * MiB])
        # The ZIP holds the first file and some of the second: the archive is being written.
        wait_for(lambda: temp_file_of_at_least(server, 3 * MiB), 15, "the ZIP's second entry")
        server.kill()
    assert server.temp_files(), "the kill was to land mid-write, with a temp file left"
    recover(server, expected)


def test_kill_during_a_tus_patch(start_server: StartServer) -> None:
    server = start_server()
    expected = finished_uploads(server)
    done = os.urandom(2 * MiB + 3)
    done_url = tus_create(server, len(done), "tus-done.bin")
    assert tus_patch(done_url, 0, done[:MiB]).status_code == 204
    assert tus_patch(done_url, MiB, done[MiB:]).status_code == 204
    expected["tus-done.bin"] = done
    url = tus_create(server, 8 * MiB, "tus-inflight.bin")
    key = tus_blob_key(server, url)
    headers = {
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(8 * MiB),
    }
    with raw_request(server, "PATCH", "/tus/" + url.rsplit("/", 1)[1], headers) as request:
        request.send(os.urandom(3 * MiB))
        wait_for(
            lambda: server.staged().get(key, 0) >= HEADER + 2 * SEALED_CHUNK,
            15,
            "the PATCH's first chunks in the staged blob",
        )
        server.kill()
    recover(server, expected)
    head = httpx.head(url, headers={"Tus-Resumable": "1.0.0"}, timeout=10)
    assert head.status_code == 200, f"the cut upload is lost: HEAD {head.status_code}"
    assert int(head.headers["upload-offset"]) <= 3 * MiB, "more bytes kept than were sent"


def test_kill_during_a_large_download(start_server: StartServer) -> None:
    server = start_server()
    expected = finished_uploads(server)
    large = os.urandom(32 * MiB)
    uuid = uuid_of(upload(server, "large.bin", large))
    expected["large.bin"] = large
    received = bytearray()
    with pytest.raises(httpx.TransportError):
        read_until_killed(server, f"{server.url}/f/{uuid}", len(large), received)
    # The client saw the cut (a short body against Content-Length), not a whole file.
    assert len(received) < len(large)
    assert received == large[: len(received)]
    recover(server, expected)
