"""The blob storage interface every backend implements (sync; callers use worker threads)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol

BLOB_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
PIECE_SIZE = 1 << 20


def check_key(key: str) -> str:
    if not BLOB_KEY_RE.fullmatch(key):
        raise ValueError("invalid blob key")
    return key


@dataclass(frozen=True)
class BlobStat:
    size: int
    modified: datetime  # aware, UTC


class BlobWriter(Protocol):
    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def commit(self) -> None:
        """Durable, then visible under its key in one step."""

    def abort(self) -> None:
        """Discards what was written; idempotent, and a no-op after commit."""

    def __enter__(self) -> BlobWriter: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class BlobStore(ABC):
    @abstractmethod
    def open_writer(self, key: str) -> BlobWriter: ...

    def put(self, key: str, chunks: Iterable[bytes]) -> None:
        with self.open_writer(key) as writer:
            for chunk in chunks:
                writer.write(chunk)
            writer.commit()

    @abstractmethod
    def read_range(
        self, key: str, start: int = 0, end: int | None = None, piece_size: int = PIECE_SIZE
    ) -> Iterator[bytes]:
        """Bytes [start, end) in pieces; FileNotFoundError at once when the blob is missing."""

    @abstractmethod
    def stat(self, key: str) -> BlobStat: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Idempotent: a missing blob is not an error."""

    @abstractmethod
    def iter_blobs(self) -> Iterator[tuple[str, BlobStat]]: ...

    @abstractmethod
    def sweep_temp(self, older_than: timedelta) -> int: ...

    @abstractmethod
    def check(self) -> None:
        """Raises OSError when the storage cannot be used."""

    def free_bytes(self) -> int | None:
        return None
