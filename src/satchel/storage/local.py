"""Blobs in a local folder: written to a temp file, fsynced, then renamed into place.

Layout under ``root``: ``blobs/<key[0:2]>/<key[2:4]>/<key>`` for committed blobs and
``tmp/<key>.<random>.part`` for writes in progress (docs/storage-format.md).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from satchel.storage.base import (
    BLOB_KEY_RE,
    PIECE_SIZE,
    AbortsOnExit,
    BlobStat,
    BlobStore,
    check_key,
    check_range,
)

_PLACE_ATTEMPTS = 3
WRITEBACK_WINDOW = 16 << 20


class LocalBlobWriter(AbortsOnExit):
    def __init__(self, final: Path, temp: Path) -> None:
        self.final = final
        self.temp = temp
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self._fd: int | None = os.open(temp, flags, 0o600)
        self._finished = False
        self._written = 0
        self._flushed = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        fd = self._live_fd()
        view = memoryview(data).cast("B")
        self._written += len(view)
        while view:
            view = view[os.write(fd, view) :]
        if self._written - self._flushed >= WRITEBACK_WINDOW:
            self._start_writeback(fd)

    def _start_writeback(self, fd: int) -> None:
        # Hands each new window to the disk now rather than all at the fsync: DONTNEED on
        # dirty pages starts their writeback (it drops only clean pages, so the file stays
        # cached for the downloads that often follow an upload). docs/performance.md has the
        # figures: the fsync of a 1 GiB upload went from ~0.35 s to ~0.01 s.
        os.posix_fadvise(fd, self._flushed, self._written - self._flushed, os.POSIX_FADV_DONTNEED)
        self._flushed = self._written

    def commit(self) -> None:
        fd = self._live_fd()
        os.fsync(fd)
        self._fd = None
        os.close(fd)  # may report a deferred write error (NFS): then the blob is not committed
        _place(self.temp, self.final)
        self._finished = True

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.temp.unlink(missing_ok=True)

    def _live_fd(self) -> int:
        if self._fd is None or self._finished:
            raise ValueError("blob writer is closed (committed, aborted or failed)")
        return self._fd


def _place(temp: Path, final: Path) -> None:
    for _attempt in range(_PLACE_ATTEMPTS):
        try:
            os.replace(temp, final)
        except FileNotFoundError:
            if not temp.exists():
                raise  # swept as stale: the write took too long
            # First blob of its fan-out folder, or a delete pruned the folder just now.
            _make_private_dir(final.parent.parent)
            _make_private_dir(final.parent)
            continue
        _fsync_dir(final.parent)
        return
    raise FileNotFoundError(f"could not create the folder for {final.name}")


def _make_private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    _fsync_dir(path.parent)  # else a crash could lose the folder, and every blob in it


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStagingWriter:
    def __init__(self, path: Path, size: int) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        self._fd: int | None = os.open(path, flags, 0o600)
        try:
            current = os.fstat(self._fd).st_size
            if size > current:
                raise ValueError(f"staged blob has {current} bytes, not {size}")
            if size < current:
                os.ftruncate(self._fd, size)
            os.lseek(self._fd, size, os.SEEK_SET)
            self._written = self._flushed = size
        except BaseException:
            self.close()
            raise

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._fd is None:
            raise ValueError("write to a closed staging writer")
        view = memoryview(data).cast("B")
        self._written += len(view)
        while view:
            view = view[os.write(self._fd, view) :]
        if self._written - self._flushed >= WRITEBACK_WINDOW:
            # As for blobs: hand each window to the disk now rather than all at the sync.
            os.posix_fadvise(
                self._fd, self._flushed, self._written - self._flushed, os.POSIX_FADV_DONTNEED
            )
            self._flushed = self._written

    def sync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.tmp = root / "tmp"
        # Staged blobs are not swept with temp files: they wait for their next request.
        self.staging = root / "staging"
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for folder in (self.blobs, self.tmp, self.staging):
            folder.mkdir(exist_ok=True, mode=0o700)

    def _staged(self, key: str) -> Path:
        return self.staging / check_key(key)

    def open_staging(self, key: str, size: int) -> LocalStagingWriter:
        return LocalStagingWriter(self._staged(key), size)

    def staging_size(self, key: str) -> int | None:
        try:
            return os.stat(self._staged(key)).st_size
        except FileNotFoundError:
            return None

    def commit_staging(self, key: str) -> None:
        staged = self._staged(key)
        fd = os.open(staged, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _place(staged, self.path_of(key))

    def delete_staging(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._staged(key))

    def iter_staging(self) -> Iterator[tuple[str, BlobStat]]:
        for entry in _entries(self.staging):
            if not BLOB_KEY_RE.fullmatch(entry.name):
                continue
            try:
                yield entry.name, _blob_stat(entry.stat(follow_symlinks=False))
            except FileNotFoundError:  # committed or deleted meanwhile
                continue

    def path_of(self, key: str) -> Path:
        check_key(key)
        return self.blobs / key[:2] / key[2:4] / key

    def open_writer(self, key: str) -> LocalBlobWriter:
        final = self.path_of(key)
        return LocalBlobWriter(final, self.tmp / f"{key}.{secrets.token_hex(8)}.part")

    def read_range(
        self, key: str, start: int = 0, end: int | None = None, piece_size: int = PIECE_SIZE
    ) -> Iterator[bytes]:
        check_range(start, end, piece_size)
        fd = os.open(self.path_of(key), os.O_RDONLY | os.O_CLOEXEC)
        if end is None or end - start > piece_size:
            os.posix_fadvise(fd, start, 0, os.POSIX_FADV_SEQUENTIAL)  # a larger read-ahead
        return _RangeReader(fd, start, end, piece_size)

    def stat(self, key: str) -> BlobStat:
        return _blob_stat(os.stat(self.path_of(key)))

    def delete(self, key: str) -> None:
        # Folders stay: the fan-out is bounded (64 x 64 leaf folders), and keeping them spares
        # every later upload into the same folder a mkdir and two directory fsyncs.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path_of(key))

    def iter_blobs(self) -> Iterator[tuple[str, BlobStat]]:
        for first in _subdirs(self.blobs):
            for second in _subdirs(first):
                yield from _blobs_in(second, first.name + second.name)

    def sweep_temp(self, older_than: timedelta) -> int:
        cutoff = time.time() - older_than.total_seconds()
        removed = 0
        for entry in _entries(self.tmp):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def check(self) -> None:
        os.stat(self.blobs)
        probe = self.tmp / f"probe.{secrets.token_hex(8)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            probe.unlink()

    def free_bytes(self) -> int | None:
        return shutil.disk_usage(self.root).free


class _RangeReader:
    """Pieces of an already open blob file.

    Opening eagerly makes a missing blob fail on the call, and keeps a download going when
    the blob is deleted meanwhile. The descriptor is closed when the pieces run out, on
    close(), or when the reader is collected, even if it was never iterated.
    """

    def __init__(self, fd: int, start: int, end: int | None, piece_size: int) -> None:
        self._fd: int | None = fd
        self._position = start
        self._end = end
        self._piece_size = piece_size

    def __iter__(self) -> _RangeReader:
        return self

    def __next__(self) -> bytes:
        if self._fd is None:
            raise StopIteration
        size = self._piece_size
        if self._end is not None:
            size = min(size, self._end - self._position)
        piece = os.pread(self._fd, size, self._position) if size > 0 else b""
        if not piece:
            self.close()
            raise StopIteration
        self._position += len(piece)
        return piece

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


def _blob_stat(result: os.stat_result) -> BlobStat:
    return BlobStat(size=result.st_size, modified=datetime.fromtimestamp(result.st_mtime, UTC))


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:  # pruned by a delete while we were listing
        return []


def _subdirs(folder: Path) -> Iterator[Path]:
    for entry in _entries(folder):
        if len(entry.name) == 2 and entry.is_dir(follow_symlinks=False):
            yield Path(entry.path)


def _blobs_in(folder: Path, prefix: str) -> Iterator[tuple[str, BlobStat]]:
    for entry in _entries(folder):
        # Anything else in there (an editor's swap file, a misplaced blob) is not ours to list:
        # the orphan sweep would delete it by a key that points elsewhere.
        if not (entry.name.startswith(prefix) and BLOB_KEY_RE.fullmatch(entry.name)):
            continue
        try:
            result = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # deleted meanwhile
            continue
        yield entry.name, _blob_stat(result)
