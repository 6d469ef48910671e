"""A tus 1.0.0 client (core, creation, checksum, termination) for ``/tus/``.

Every PATCH carries one block of ``chunk_size`` bytes with its SHA-256, so memory stays at one
block. A PATCH that fails is retried from the offset a HEAD reports; the upload URL is kept in
the resume state, so a later run continues the same upload.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import Any, Protocol

import httpx

from satchel.client.errors import (
    ServerFailed,
    error_message,
    network_error,
    raise_for_status,
)
from satchel.client.state import ResumeState

TUS_VERSION = "1.0.0"
OCTETS = "application/offset+octet-stream"
DEFAULT_CHUNK_SIZE = 8 << 20
MAX_ATTEMPTS = 6
CHECKSUM_MISMATCH = 460

Progress = Callable[[int], None]  # bytes of this upload the server holds


class ByteSource(Protocol):
    """What is uploaded: ``size`` bytes that can be produced again from any offset."""

    @property
    def size(self) -> int: ...

    def open_at(self, offset: int) -> Generator[bytes, None, None]: ...

    def fingerprint(self) -> str:
        """Differs when the bytes would differ (for E2E: another key or password)."""
        ...

    def resume_data(self) -> dict[str, str]:
        """What a later run needs to produce the same bytes again."""
        ...


class _Retry(Exception):
    """A PATCH that may succeed when sent again from the server's offset."""


def encode_metadata(fields: Mapping[str, str]) -> str:
    return ",".join(
        f"{name} {base64.b64encode(value.encode()).decode('ascii')}"
        for name, value in fields.items()
    )


def blocks(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The pieces regrouped into blocks of ``size`` bytes (the last one shorter)."""
    pending = bytearray()
    for piece in pieces:
        pending += piece
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


class TusUploader:
    def __init__(
        self,
        http: httpx.Client,
        endpoint: str,
        headers: Mapping[str, str],
        state: ResumeState,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.http = http
        self.endpoint = endpoint
        self.headers = {**headers, "Tus-Resumable": TUS_VERSION}
        self.state = state
        self.chunk_size = chunk_size
        self.sleep: Callable[[float], None] = time.sleep

    def upload(
        self,
        source: ByteSource,
        metadata: Mapping[str, str],
        resume_key: str,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Sends the source (resuming an earlier attempt when there is one); the result of
        the finished upload, as ``POST /upload`` gives it."""
        resumed = self._resumed(source, resume_key)
        if resumed is None:
            url, offset = self._create(source, metadata, resume_key)
        else:
            url, offset = resumed
        if progress:
            progress(offset)
        if offset < source.size:
            self._send(url, source, offset, progress)
        result = self._result(url)
        self.state.drop(resume_key)
        return result

    def offset(self, url: str) -> int:
        response = self._call("HEAD", url)
        raise_for_status(response)
        return int(response.headers["Upload-Offset"])

    def _resumed(self, source: ByteSource, resume_key: str) -> tuple[str, int] | None:
        entry = self.state.get(resume_key)
        if entry is None:
            return None
        url = str(entry.get("url", ""))
        if entry.get("fingerprint") != source.fingerprint():
            self._terminate(url)  # other bytes now (a new password): start over
            return None
        response = self._call("HEAD", url)
        if response.status_code >= 400 or response.headers.get("Upload-Length") != str(source.size):
            self.state.drop(resume_key)  # expired, finished long ago, or not ours any more
            return None
        return url, int(response.headers["Upload-Offset"])

    def _create(
        self, source: ByteSource, metadata: Mapping[str, str], resume_key: str
    ) -> tuple[str, int]:
        headers = {"Upload-Length": str(source.size), "Upload-Metadata": encode_metadata(metadata)}
        if source.size == 0:
            headers["Content-Type"] = OCTETS  # creation-with-upload of nothing completes it
        response = self._call("POST", self.endpoint, headers=headers, content=b"")
        raise_for_status(response)
        url = str(response.url.join(response.headers["Location"]))
        self.state.put(
            resume_key,
            {"url": url, "fingerprint": source.fingerprint(), "extra": source.resume_data()},
        )
        return url, int(response.headers.get("Upload-Offset", "0"))

    def _send(self, url: str, source: ByteSource, offset: int, progress: Progress | None) -> None:
        failures = 0
        while offset < source.size:
            try:
                offset = self._patch_from(url, source, offset, progress)
                return
            except (_Retry, ServerFailed) as exc:
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    raise ServerFailed(f"upload failed after {failures} attempts: {exc}") from exc
                self.sleep(min(0.5 * 2**failures, 15.0))
                offset = self._offset_after_failure(url, offset)
                if progress:
                    progress(offset)

    def _offset_after_failure(self, url: str, offset: int) -> int:
        try:
            return self.offset(url)
        except ServerFailed:
            return offset  # unreachable for now: the next PATCH finds out more

    def _patch_from(
        self, url: str, source: ByteSource, offset: int, progress: Progress | None
    ) -> int:
        with contextlib.closing(source.open_at(offset)) as pieces:
            for block in blocks(pieces, self.chunk_size):
                offset = self._patch(url, offset, block)
                if progress:
                    progress(offset)
        return offset

    def _patch(self, url: str, offset: int, block: bytes) -> int:
        digest = base64.b64encode(hashlib.sha256(block).digest()).decode("ascii")
        headers = {
            "Content-Type": OCTETS,
            "Upload-Offset": str(offset),
            "Upload-Checksum": f"sha256 {digest}",
        }
        response = self._call("PATCH", url, headers=headers, content=block, retry=True)
        if response.status_code in (409, CHECKSUM_MISMATCH) or response.status_code >= 500:
            raise _Retry(f"{error_message(response)} (HTTP {response.status_code})")
        raise_for_status(response)
        return int(response.headers["Upload-Offset"])

    def _result(self, url: str) -> dict[str, Any]:
        response = self._call("GET", url.rstrip("/") + "/result")
        raise_for_status(response)
        body: dict[str, Any] = response.json()
        return body

    def _terminate(self, url: str) -> None:
        with contextlib.suppress(ServerFailed):
            self._call("DELETE", url)

    def _call(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        retry: bool = False,
    ) -> httpx.Response:
        try:
            return self.http.request(
                method, url, headers={**self.headers, **(headers or {})}, content=content
            )
        except httpx.TransportError as exc:
            if retry:
                raise _Retry(str(exc) or exc.__class__.__name__) from exc
            raise network_error(exc, url) from exc
