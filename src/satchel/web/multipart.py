"""A multipart/form-data upload body, pushed through the ``multipart`` parser into a core
``Bundle``: form fields are collected, file parts stream on into storage.

Fed one batch of the request body at a time from a worker thread, so the event loop never
waits on parsing, encryption or disk writes.
"""

from __future__ import annotations

from collections.abc import Callable

from multipart import MultipartError, MultipartSegment, ParserLimitReached, PushMultipartParser

from satchel.core.bundles import MAX_FILES, Bundle, IngestedBlob, storage_error
from satchel.errors import BadRequest, NoFiles
from satchel.storage.base import BlobStore

FILE_FIELDS = frozenset({"files", "file"})
MAX_FIELD_SIZE = 64 * 1024
MAX_FIELDS = 64
# A part's header carries its file name: a long one is reduced, not refused (names.py).
MAX_HEADER_SIZE = 64 * 1024


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
        """``before_first_file`` sees the fields sent before the first file, so that bad
        options are refused before a large body is read."""
        self.bundle = Bundle(store, max_bytes, separate=separate, digest=digest)
        self.file_fields = file_fields
        self.before_first_file = before_first_file
        self.parser = PushMultipartParser(
            boundary,
            content_length,
            max_header_size=MAX_HEADER_SIZE,
            max_header_count=16,
            max_segment_count=MAX_FIELDS + MAX_FILES,
        )
        self.fields: dict[str, str] = {}
        self.received = 0
        self._segment: MultipartSegment | None = None
        self._segment_is_file = False
        self._field_buffer = bytearray()
        self._files_seen = 0
        self._file_started = False

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

    def finish(self) -> IngestedBlob:
        self._end_of_body()
        return self.bundle.finish()

    def finish_separate(self) -> list[IngestedBlob]:
        self._end_of_body()
        return self.bundle.finish_separate()

    def abort(self) -> None:
        self.bundle.abort()

    def _end_of_body(self) -> None:
        if self.received == 0:
            raise NoFiles()
        self.feed(b"")
        if not self.parser.closed:
            raise BadRequest("Malformed multipart body: incomplete")

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
        if not self._files_seen and self.before_first_file is not None:
            self.before_first_file(self.fields)
        self._files_seen += 1
        self._file_started = False

    def _file_data(self, data: bytes | memoryview) -> None:
        if not self._file_started:
            self._start_file()
        self.bundle.write(data)

    def _start_file(self) -> None:
        assert self._segment is not None
        self._file_started = True
        self.bundle.start_file(self._segment.filename or "", self._segment.content_type)

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
        if not self._file_started:
            if not segment.filename:
                return  # a browser form with no file chosen sends an empty, nameless part
            self._segment = segment
            self._start_file()
            self._segment = None
        self.bundle.end_file()
