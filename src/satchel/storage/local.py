"""Blobs in a local folder: written to a temp file, fsynced, then renamed into place."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import FileIO
from pathlib import Path
from types import TracebackType

from satchel.storage.base import PIECE_SIZE, BlobStat, BlobStore, check_key

WRITEBACK_WINDOW = 16 << 20


class LocalBlobWriter:
    def __init__(self, final: Path, temp: Path) -> None:
        self.final = final
        self.temp = temp
        self._fd: int | None = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._done = False
        self._written = 0
        self._flushed = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._fd is None:
            raise ValueError("writer is closed")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self._written += written
        if self._written - self._flushed >= WRITEBACK_WINDOW:
            # Start writeback of what is written so far without waiting for it, so that the
            # fsync at commit has little left to do (and big uploads do not flood the cache).
            os.posix_fadvise(
                self._fd, self._flushed, self._written - self._flushed, os.POSIX_FADV_DONTNEED
            )
            self._flushed = self._written

    def commit(self) -> None:
        if self._fd is None:
            raise ValueError("writer is closed")
        os.fsync(self._fd)
        self._close()
        try:
            os.replace(self.temp, self.final)
        except FileNotFoundError:  # first blob of its fan-out folder
            self.final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(self.temp, self.final)
        _fsync_dir(self.final.parent)
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        self._close()
        self.temp.unlink(missing_ok=True)
        self._done = True

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> LocalBlobWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.tmp = root / "tmp"
        self._blobs = str(self.blobs)
        for folder in (root, self.blobs, self.tmp):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, key: str) -> str:
        check_key(key)
        return os.path.join(self._blobs, key[:2], key[2:4], key)

    def open_writer(self, key: str) -> LocalBlobWriter:
        final = Path(self._path(key))
        temp = self.tmp / f"{key}.{secrets.token_hex(8)}.part"
        return LocalBlobWriter(final, temp)

    def read_range(
        self, key: str, start: int = 0, end: int | None = None, piece_size: int = PIECE_SIZE
    ) -> Iterator[bytes]:
        handle = open(self._path(key), "rb", buffering=0)  # noqa: SIM115 - closed by the generator
        return _read_pieces(handle, start, end, piece_size)

    def stat(self, key: str) -> BlobStat:
        return _stat(os.stat(self._path(key)))

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def iter_blobs(self) -> Iterator[tuple[str, BlobStat]]:
        for path in self.blobs.glob("*/*/*"):
            try:
                yield path.name, _stat(path.stat())
            except FileNotFoundError:
                continue

    def sweep_temp(self, older_than: timedelta) -> int:
        cutoff = datetime.now(UTC).timestamp() - older_than.total_seconds()
        removed = 0
        for path in self.tmp.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def check(self) -> None:
        probe = self.tmp / f"probe.{secrets.token_hex(4)}"
        probe.write_bytes(b"ok")
        probe.unlink()

    def free_bytes(self) -> int | None:
        return shutil.disk_usage(self.root).free


def _stat(result: os.stat_result) -> BlobStat:
    return BlobStat(size=result.st_size, modified=datetime.fromtimestamp(result.st_mtime, UTC))


def _read_pieces(handle: FileIO, start: int, end: int | None, piece_size: int) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = None if end is None else max(0, end - start)
        while remaining is None or remaining > 0:
            size = piece_size if remaining is None else min(piece_size, remaining)
            piece = handle.read(size)
            if not piece:
                return
            if remaining is not None:
                remaining -= len(piece)
            yield piece
