"""Streaming ingestion: multipart body → (zip) → at-rest cipher → blob storage.

Everything here is synchronous and runs in a worker thread, one batch of request body at a
time, so the event loop never waits on parsing, encryption or disk writes.
"""

from __future__ import annotations

import errno
import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, cast

from multipart import MultipartError, MultipartSegment, ParserLimitReached, PushMultipartParser

from satchel.core.ids import new_blob_key
from satchel.core.names import make_unique, safe_content_type, safe_filename
from satchel.crypto.atrest import EncryptingWriter, decrypt_range, new_data_key
from satchel.errors import BadRequest, InsufficientStorage, RequestTimeout, TooLarge
from satchel.storage.base import BlobStore, BlobWriter

FILE_FIELDS = frozenset({"files", "file"})
MAX_FIELD_SIZE = 64 * 1024
MAX_FIELDS = 64
MAX_FILES = 1000
# A part's header carries its file name: a long one is reduced, not refused (names.py).
MAX_HEADER_SIZE = 64 * 1024
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
    md5: str | None = None  # of the plaintext, when the ingest was asked for it


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
        self.writer.abort()
        if self.committed:
            self.store.delete(self.key)


class _ZipStream:
    """Non-seekable file object for ``zipfile``: it then writes data descriptors (streaming)."""

    def __init__(self, sink: _BlobSink) -> None:
        self.sink = sink

    def write(self, data: bytes) -> int:
        return self.sink.write(data)

    def flush(self) -> None:
        pass


class UploadIngest:
    def __init__(
        self,
        store: BlobStore,
        boundary: str,
        content_length: int,
        max_bytes: int,
        before_first_file: Callable[[dict[str, str]], None] | None = None,
        separate: bool = False,
        file_fields: frozenset[str] = FILE_FIELDS,
        digest: bool = False,
    ) -> None:
        """``separate``: every file becomes a blob of its own (see ``finish_separate``) rather
        than several being zipped into one."""
        self.store = store
        self.separate = separate
        self.file_fields = file_fields
        self.digest = digest
        self._done: list[_BlobSink] = []
        self.before_first_file = before_first_file
        self.max_bytes = max_bytes
        self.parser = PushMultipartParser(
            boundary,
            content_length,
            max_header_size=MAX_HEADER_SIZE,
            max_header_count=16,
            max_segment_count=MAX_FIELDS + MAX_FILES,
        )
        self.fields: dict[str, str] = {}
        self.file_bytes = 0
        self.received = 0
        self._names: list[str] = []
        self._types: list[str] = []
        self._taken: set[str] = set()
        self._segment: MultipartSegment | None = None
        self._segment_is_file = False
        self._field_buffer = bytearray()
        self._pending_name = ""
        self._pending_type = ""
        self._entry_started = False
        self._single: _BlobSink | None = None
        self._zip_sink: _BlobSink | None = None
        self._zip: zipfile.ZipFile | None = None
        self._entry: IO[bytes] | None = None

    def feed(self, data: bytes | bytearray) -> None:
        self.received += len(data)
        try:
            for event in self.parser.parse(data):
                self._on_event(event)
        except (MultipartError, ParserLimitReached) as exc:
            raise BadRequest(f"Malformed multipart body: {exc}") from None
        except OSError as exc:
            raise storage_error(exc) from exc

    def feed_many(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            if chunk:
                self.feed(chunk)

    def _end_of_body(self) -> None:
        if self.received == 0:
            raise BadRequest("No files")
        self.feed(b"")
        if not self.parser.closed:
            raise BadRequest("Malformed multipart body: incomplete")
        if not self._names:
            raise BadRequest("No files")

    def finish(self) -> IngestedBlob:
        self._end_of_body()
        try:
            return self._commit()
        except OSError as exc:
            raise storage_error(exc) from exc

    def finish_separate(self) -> list[IngestedBlob]:
        """The files of a ``separate`` upload, one blob each, in the order they came."""
        self._end_of_body()
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
            for sink, name, ctype in zip(self._done, self._names, self._types, strict=True)
        ]

    def abort(self) -> None:
        for sink in (self._single, self._zip_sink, *self._done):
            if sink is not None:
                sink.discard()

    # -- parser events ------------------------------------------------------------------

    def _on_event(self, event: MultipartSegment | bytes | memoryview | None) -> None:
        if isinstance(event, MultipartSegment):
            self._start_segment(event)
        elif event is None:
            self._end_segment()
        elif self._segment_is_file:
            self._file_data(event)
        else:
            self._field_data(event)

    def _start_segment(self, segment: MultipartSegment) -> None:
        self._segment = segment
        self._segment_is_file = segment.filename is not None
        self._field_buffer.clear()
        if not self._segment_is_file:
            if len(self.fields) >= MAX_FIELDS:
                raise BadRequest("Too many form fields")
            return
        if segment.name not in self.file_fields:
            names = " or ".join(f"'{name}'" for name in sorted(self.file_fields))
            raise BadRequest(f"Unexpected file field {segment.name!r}: use {names}")
        if not self._names and self.before_first_file is not None:
            self.before_first_file(self.fields)
        self._pending_name = segment.filename or ""
        self._pending_type = safe_content_type(segment.content_type)
        self._entry_started = False

    def _file_data(self, data: bytes | memoryview) -> None:
        if not self._entry_started:
            self._open_entry()
        self.file_bytes += len(data)
        if self.file_bytes > self.max_bytes:
            raise TooLarge()
        if self._entry is not None:
            self._entry.write(data)
        else:
            assert self._single is not None
            self._single.write(data)

    def _field_data(self, data: bytes | memoryview) -> None:
        self._field_buffer += data
        if len(self._field_buffer) > MAX_FIELD_SIZE:
            raise BadRequest("Form field too large")

    def _end_segment(self) -> None:
        segment, self._segment = self._segment, None
        if segment is None:
            return
        if not self._segment_is_file:
            self.fields[segment.name or ""] = self._field_buffer.decode("utf-8", errors="replace")
            return
        if not self._entry_started:
            if not self._pending_name:
                return  # a browser form with no file chosen sends an empty, nameless part
            self._open_entry()
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

    # -- files --------------------------------------------------------------------------

    def _open_entry(self) -> None:
        if len(self._names) >= MAX_FILES:
            raise BadRequest(f"Too many files (at most {MAX_FILES})")
        self._entry_started = True
        name = safe_filename(self._pending_name)
        if not self.separate:  # separate files are named where they are stored
            name = make_unique(name, self._taken)
        self._names.append(name)
        self._types.append(self._pending_type)
        if len(self._names) == 1 or self.separate:
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
        with self._zip.open(_zip_info(self._names[0]), mode="w", force_zip64=True) as entry:
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
            sink, name, ctype = self._single, self._names[0], self._types[0]
        sink.commit()
        return IngestedBlob(
            blob_key=sink.key,
            data_key=sink.data_key,
            size=sink.cipher.plaintext_size,
            name=name,
            content_type=ctype,
            file_count=len(self._names),
            file_names=list(self._names),
        )


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=datetime.now(UTC).timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def storage_error(exc: OSError) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("Server storage is full")
    if isinstance(exc, FileNotFoundError):
        # The temp file was swept as stale (idle longer than SATCHEL_TEMP_MAX_AGE).
        return RequestTimeout()
    return exc
