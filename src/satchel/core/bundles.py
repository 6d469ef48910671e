"""The files of one upload on their way into storage, encrypted as they come.

One file becomes one blob. Several become one ZIP (the first file is copied into the archive
when the second starts), or, for ``separate`` uploads, a blob each. Everything here is
synchronous and runs in a worker thread; the caller feeds it whatever parser it uses.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, cast

from satchel.core.ids import new_blob_key
from satchel.core.names import make_unique, safe_content_type, safe_filename, safe_member_path
from satchel.crypto.atrest import EncryptingWriter, decrypt_range, new_data_key
from satchel.errors import BadRequest, NoFiles, RequestTimeout, StorageFull, TooLarge
from satchel.storage.base import BlobStore, BlobWriter

MAX_FILES = 1000
ZIP_NAME = "files.zip"


@dataclass
class IngestedBlob:
    blob_key: str
    data_key: bytes
    size: int
    name: str
    content_type: str
    file_count: int
    file_names: list[str] = field(default_factory=list)
    md5: str | None = None  # of the plaintext, when it was asked for


def storage_error(exc: OSError) -> Exception:
    """What a failed write means to the client."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull()
    if isinstance(exc, FileNotFoundError):
        # The temp file was swept as stale (idle longer than SATCHEL_TEMP_MAX_AGE).
        return RequestTimeout()
    return exc


class _BlobSink:
    """One encrypted blob being written."""

    def __init__(self, store: BlobStore, digest: bool = False) -> None:
        self.store = store
        self.md5 = hashlib.md5(usedforsecurity=False) if digest else None
        self.key = new_blob_key()
        self.data_key = new_data_key()
        self.writer: BlobWriter = store.open_writer(self.key)
        self.cipher = EncryptingWriter(self.writer, self.data_key)
        self.committed = False
        self.discarded = False

    def write(self, data: bytes | memoryview) -> int:
        if self.md5 is not None:
            self.md5.update(data)
        self.cipher.write(data)
        return len(data)

    def commit(self) -> None:
        self.cipher.close()
        self.writer.commit()
        self.committed = True

    def discard(self) -> None:
        self.discarded = True
        self.writer.abort()
        if self.committed:
            self.store.delete(self.key)


class _ZipStream:
    """Non-seekable file object for ``zipfile``: it then writes data descriptors (streaming)."""

    def __init__(self, sink: _BlobSink) -> None:
        self.sink = sink

    def write(self, data: bytes) -> int:
        if self.sink.discarded:
            # An aborted ZIP still closes itself when it is collected: nothing goes anywhere.
            return len(data)
        return self.sink.write(data)

    def flush(self) -> None:
        pass


class Bundle:
    def __init__(
        self, store: BlobStore, max_bytes: int | None, separate: bool = False, digest: bool = False
    ) -> None:
        """``max_bytes``: of all files together (None: no limit), checked as the bytes come."""
        self.store = store
        self.max_bytes = max_bytes
        self.separate = separate
        self.digest = digest
        self.file_bytes = 0
        self.names: list[str] = []
        self.types: list[str] = []
        self._taken: set[str] = set()
        self._single_name = ""
        self._done: list[_BlobSink] = []
        self._single: _BlobSink | None = None
        self._zip_sink: _BlobSink | None = None
        self._zip: zipfile.ZipFile | None = None
        self._entry: IO[bytes] | None = None

    def start_file(self, filename: str, content_type: str | None) -> None:
        if len(self.names) >= MAX_FILES:
            raise BadRequest(f"Too many files (at most {MAX_FILES})")
        if self.separate:  # separate files are named where they are stored
            name = safe_filename(filename)
        else:  # their path in the ZIP, when there are several
            name = make_unique(safe_member_path(filename), self._taken)
            if not self.names:
                self._single_name = safe_filename(filename)
        self.names.append(name)
        self.types.append(safe_content_type(content_type))
        try:
            self._open(name)
        except OSError as exc:
            raise storage_error(exc) from exc

    def write(self, data: bytes | memoryview) -> None:
        self.file_bytes += len(data)
        if self.max_bytes is not None and self.file_bytes > self.max_bytes:
            raise TooLarge()
        try:
            if self._entry is not None:
                self._entry.write(data)
            else:
                assert self._single is not None
                self._single.write(data)
        except OSError as exc:
            raise storage_error(exc) from exc

    def end_file(self) -> None:
        if self._entry is not None:
            self._entry.close()
            self._entry = None
        if self.separate and self._single is not None:
            try:
                self._single.commit()
            except OSError as exc:
                raise storage_error(exc) from exc
            self._done.append(self._single)
            self._single = None

    def finish(self) -> IngestedBlob:
        """The one blob of the upload (the file, or the ZIP of them all), committed."""
        if not self.names:
            raise NoFiles()
        try:
            return self._commit()
        except OSError as exc:
            raise storage_error(exc) from exc

    def finish_separate(self) -> list[IngestedBlob]:
        """The files of a ``separate`` upload, one blob each, in the order they came."""
        if not self.names:
            raise NoFiles()
        return [
            IngestedBlob(
                blob_key=sink.key,
                data_key=sink.data_key,
                size=sink.cipher.plaintext_size,
                name=name,
                content_type=ctype,
                file_count=1,
                file_names=[name],
                md5=sink.md5.hexdigest() if sink.md5 is not None else None,
            )
            for sink, name, ctype in zip(self._done, self.names, self.types, strict=True)
        ]

    def abort(self) -> None:
        """Nothing of the upload stays: blobs written, committed ones too, go."""
        for sink in (self._single, self._zip_sink, *self._done):
            if sink is not None:
                sink.discard()
        # A discarded sink takes no more writes: the archive can close without a trace (left
        # open, it would try to when it is collected, and fail on its open entry).
        for part in (self._entry, self._zip):
            if part is not None:
                with contextlib.suppress(ValueError, OSError):
                    part.close()
        self._entry = self._zip = None

    # -- files into blobs ---------------------------------------------------------------

    def _open(self, name: str) -> None:
        if len(self.names) == 1 or self.separate:
            self._single = _BlobSink(self.store, self.digest)
            return
        if self._zip is None:
            self._start_zip()
        assert self._zip is not None
        self._entry = self._zip.open(_zip_info(name), mode="w", force_zip64=True)

    def _start_zip(self) -> None:
        """A second file arrived: the upload becomes a ZIP whose first entry is the first file."""
        first = self._single
        assert first is not None
        first.commit()
        self._zip_sink = _BlobSink(self.store)
        self._zip = zipfile.ZipFile(cast(IO[bytes], _ZipStream(self._zip_sink)), mode="w")
        with self._zip.open(_zip_info(self.names[0]), mode="w", force_zip64=True) as entry:
            for piece in decrypt_range(self.store, first.key, first.data_key, self.file_bytes):
                entry.write(piece)
        first.discard()
        self._single = None

    def _commit(self) -> IngestedBlob:
        if self._zip is not None:
            assert self._zip_sink is not None
            self._zip.close()
            sink, name, ctype = self._zip_sink, ZIP_NAME, "application/zip"
        else:
            assert self._single is not None
            sink, name, ctype = self._single, self._single_name, self.types[0]
        sink.commit()
        return IngestedBlob(
            blob_key=sink.key,
            data_key=sink.data_key,
            size=sink.cipher.plaintext_size,
            name=name,
            content_type=ctype,
            file_count=len(self.names),
            file_names=list(self.names),
        )


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=datetime.now(UTC).timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def store_stream(
    store: BlobStore, chunks: Iterable[bytes], name: str, content_type: str
) -> IngestedBlob:
    """Encrypts ``chunks`` under a new data key into a new blob, committed when the stream ends
    (copies, URL imports); on any error nothing is left behind."""
    bundle = Bundle(store, max_bytes=None)
    try:
        bundle.start_file(name, content_type)
        for chunk in chunks:
            bundle.write(chunk)
        bundle.end_file()
        return bundle.finish()
    except BaseException:
        bundle.abort()
        raise
