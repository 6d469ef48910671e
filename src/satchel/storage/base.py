"""The blob storage interface every backend implements (sync; callers use worker threads)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

BLOB_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
PIECE_SIZE = 1 << 20


def check_key(key: str) -> str:
    # fullmatch: with match(), "$" would let a trailing newline through.
    if not isinstance(key, str) or BLOB_KEY_RE.fullmatch(key) is None:
        raise ValueError("invalid blob key")
    return key


def check_range(start: int, end: int | None, piece_size: int) -> None:
    if start < 0 or (end is not None and end < 0):
        raise ValueError("byte range offsets must not be negative")
    if piece_size < 1:
        raise ValueError("piece_size must be positive")


@dataclass(frozen=True)
class BlobStat:
    size: int
    modified: datetime  # aware, UTC


class BlobWriter(Protocol):
    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Consumes ``data`` before returning: callers may reuse the buffer afterwards."""

    def commit(self) -> None:
        """Durable, then visible under its key in one step (replacing an older blob)."""

    def abort(self) -> None:
        """Discards what was written; idempotent, and a no-op after commit."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Aborts unless committed, whether or not an exception is on its way."""


class AbortsOnExit:
    """A writer as a context manager: leaving the block aborts what was not committed (abort
    is a no-op after a commit), whether or not an exception is on its way."""

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()


class StagingWriter(Protocol):
    """Appends to a staged blob: an unfinished write that lives across requests (tus)."""

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def sync(self) -> None:
        """What was written is durable once this returns."""

    def close(self) -> None: ...


class BlobStore(ABC):
    @abstractmethod
    def open_writer(self, key: str) -> BlobWriter: ...

    # -- staged blobs: built over several requests, then committed under their key ---------

    @abstractmethod
    def open_staging(self, key: str, size: int) -> StagingWriter:
        """Appends after the first ``size`` bytes of the staged blob ``key`` (created when
        ``size`` is 0); anything after ``size`` (a write cut short) is dropped first."""

    @abstractmethod
    def staging_size(self, key: str) -> int | None:
        """Bytes in the staged blob, None when there is none."""

    @abstractmethod
    def commit_staging(self, key: str) -> None:
        """Durable, then visible as the committed blob ``key`` in one step."""

    @abstractmethod
    def delete_staging(self, key: str) -> None:
        """Idempotent."""

    @abstractmethod
    def iter_staging(self) -> Iterator[tuple[str, BlobStat]]:
        """Every staged blob, with the time it was last written to (for the orphan sweep)."""

    def put(self, key: str, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        with self.open_writer(key) as writer:
            for chunk in chunks:
                writer.write(chunk)
            writer.commit()

    def copy(self, source: str, target: str) -> None:
        """The blob ``source`` byte for byte under ``target`` as well, committed (streamed
        through this process here; a backend that can copy in place does)."""
        self.put(target, self.read_range(source))

    @abstractmethod
    def read_range(
        self, key: str, start: int = 0, end: int | None = None, piece_size: int = PIECE_SIZE
    ) -> Iterator[bytes]:
        """Bytes [start, end), clipped to the blob, in non-empty pieces of at most piece_size.

        Raises FileNotFoundError on the call itself (not at the first ``next``) when the blob
        is missing, so that an HTTP handler can still answer 404.
        """

    @abstractmethod
    def stat(self, key: str) -> BlobStat: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Idempotent: a missing blob is not an error."""

    @abstractmethod
    def iter_blobs(self) -> Iterator[tuple[str, BlobStat]]:
        """Every committed blob; blobs added or removed meanwhile may or may not be listed."""

    @abstractmethod
    def sweep_temp(self, older_than: timedelta) -> int:
        """Removes unfinished writes idle for longer than ``older_than``; returns how many."""

    @abstractmethod
    def check(self) -> None:
        """Raises OSError when the storage cannot be used."""

    def free_bytes(self) -> int | None:
        return None

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Releases what the store holds open (network connections); it is not used after."""
