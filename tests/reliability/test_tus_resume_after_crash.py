"""tuspy, with the retries docs/tus.md recommends, rides through a server crash: the server is
killed mid-PATCH, restarted at once, and the client resumes from its upload's URL."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import httpx
from tests.reliability.conftest import StartServer
from tests.reliability.harness import HEADER, SEALED_CHUNK, tus_blob_key, wait_for
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

MiB = 1 << 20


class HeldStream:
    """The file tuspy reads: the first PATCH body stops after ``hold_at`` bytes until
    ``release`` is set, so the crash lands mid-PATCH; later requests get their bytes at once."""

    def __init__(self, data: bytes, hold_at: int) -> None:
        self.data = data
        self.hold_at = hold_at
        self.position = 0
        self.release = threading.Event()
        self.requests = 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.position = len(self.data) + offset if whence == os.SEEK_END else offset
        return self.position

    def tell(self) -> int:
        return self.position

    def read(self, size: int) -> bytes | Iterator[bytes]:
        piece = self.data[self.position : self.position + size]
        self.position += len(piece)
        self.requests += 1
        if self.requests > 1:
            return piece
        return self._held(piece)  # a generator: requests sends it chunked, as it comes

    def _held(self, piece: bytes) -> Iterator[bytes]:
        yield piece[: self.hold_at]
        self.release.wait(60)
        for start in range(self.hold_at, len(piece), 256 * 1024):
            yield piece[start : start + 256 * 1024]


def test_tuspy_resumes_right_after_a_crash(start_server: StartServer) -> None:
    server = start_server()
    data = os.urandom(12 * MiB + 77)
    stream = HeldStream(data, hold_at=3 * MiB)
    uploader = TusClient(server.url + "/tus/").uploader(
        file_stream=stream,
        chunk_size=8 * MiB,
        metadata={"filename": "through-a-crash.bin"},
        retries=5,
        retry_delay=2,
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            uploader.upload()
        except BaseException as exc:
            failure.append(exc)

    client = threading.Thread(target=run, daemon=True)
    client.start()
    try:
        url = wait_for(lambda: uploader.url, 15, "the upload's creation")
        key = tus_blob_key(server, url)
        wait_for(
            lambda: server.staged().get(key, 0) >= HEADER + 2 * SEALED_CHUNK,
            15,
            "the first PATCH's chunks in the staged blob",
        )
        server.kill()
        server.start()
    finally:
        stream.release.set()  # the rest of the cut PATCH meets a closed connection
    client.join(90)
    assert not client.is_alive(), "tuspy still uploading after 90 s"
    if failure:
        error = failure[0]
        status = getattr(error, "status_code", None)
        body = getattr(error, "response_content", b"")
        assert isinstance(error, TusCommunicationError), repr(error)
        head = httpx.head(url, headers={"Tus-Resumable": "1.0.0"}, timeout=10)
        raise AssertionError(
            f"the upload did not resume after the crash: PATCH at offset {uploader.offset} "
            f"answered {status} {body!r}; HEAD says Upload-Offset "
            f"{head.headers.get('upload-offset')}"
        )
    assert uploader.url == url, "tuspy went on with another upload"
    result = httpx.get(url + "/result", timeout=30)
    assert result.status_code == 200, result.text
    body = httpx.get(result.json()["download_url"], timeout=60)
    assert body.status_code == 200
    assert body.content == data, "the resumed upload is not byte-exact"
