"""Blobs in an S3 bucket (AWS or any S3-compatible server), through boto3.

Layout under ``PREFIX/`` (docs/storage-format.md):

- ``blobs/<key>``: committed blobs. A writer streams into a multipart upload of that key,
  which S3 shows only once it is completed (commit); abort ends the multipart upload.
- ``staging/<key>/<offset>``: a staged blob (tus) as numbered segments, each one PUT of the
  bytes from ``offset`` (20 digits) on. Its size is the run of segments that follow each
  other from offset 0; committing assembles them into ``blobs/<key>`` on the server.

Every boto3 error leaves here as an OSError (FileNotFoundError for what does not exist), so
that callers never see botocore.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

import boto3
import urllib3.exceptions
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from satchel.storage.base import (
    BLOB_KEY_RE,
    PIECE_SIZE,
    AbortsOnExit,
    BlobStat,
    BlobStore,
    check_key,
    check_range,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, CopySourceTypeDef

MIN_PART_SIZE = 5 << 20  # S3's smallest part (all but the last)
MAX_PARTS = 10_000
COPY_LIMIT = 5 << 30  # the largest object one CopyObject (or one UploadPartCopy) may copy
OFFSET_DIGITS = 20
SENDER_THREADS = 16
_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchUpload", "NoSuchBucket", "NotFound", "404"})

# At DEBUG, botocore logs every request with its signed headers and the credentials' source:
# a server run with SATCHEL_LOG_LEVEL=debug must not write those to its log.
for _name in ("boto3", "botocore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class S3Options:
    """How to reach S3; credentials come from the AWS chain (AWS_ACCESS_KEY_ID, …)."""

    endpoint: str = ""  # empty: AWS
    region: str = ""  # empty: the AWS chain's (AWS_REGION, ~/.aws/config)
    part_size: int = 8 << 20


def make_client(options: S3Options) -> S3Client:
    config = Config(
        # A custom endpoint (SeaweedFS, MinIO, …) rarely has a DNS name per bucket.
        s3={"addressing_style": "path" if options.endpoint else "auto"},
        # Checksums of every part and body cost CPU (docs/performance.md); the blobs carry
        # their own authentication (AES-GCM), so a corrupted byte is caught on the way out.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=64,  # above the app's worker threads (web/app.py)
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=options.endpoint or None,
        region_name=options.region or None,
        config=config,
    )


def parse_location(location: str) -> tuple[str, str]:
    """``BUCKET[/PREFIX]`` -> (bucket, prefix ending in "/" or empty)."""
    bucket, _, prefix = location.strip().partition("/")
    prefix = prefix.strip("/")
    if not bucket:
        raise ValueError("s3 storage needs a bucket: s3:BUCKET or s3:BUCKET/PREFIX")
    return bucket, f"{prefix}/" if prefix else ""


def _failed(exc: Exception, what: str) -> NoReturn:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _NOT_FOUND or status == 404:
            raise FileNotFoundError(errno.ENOENT, f"{what}: {code or status}") from exc
        raise OSError(errno.EIO, f"{what}: S3 answered {code or status}") from exc
    raise OSError(errno.EIO, f"{what}: {exc}") from exc


@contextlib.contextmanager
def _s3(what: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        _failed(exc, what)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Segment:
    start: int
    size: int
    name: str  # its object key
    modified: datetime


def contiguous(segments: list[Segment]) -> list[Segment]:
    """The segments that follow each other from offset 0 (what a staged blob holds)."""
    run: list[Segment] = []
    end = 0
    for segment in sorted(segments, key=lambda s: s.start):
        if segment.start != end:
            break
        run.append(segment)
        end += segment.size
    return run


class S3BlobStore(BlobStore):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        options: S3Options | None = None,
        client: S3Client | None = None,
    ) -> None:
        self.options = options or S3Options()
        if self.options.part_size < MIN_PART_SIZE or self.options.part_size > COPY_LIMIT:
            raise ValueError("S3 part size must be between 5 MiB and 5 GiB")
        self.bucket = bucket
        self.prefix = prefix
        self.client = client or make_client(self.options)
        self.part_size = self.options.part_size
        self.copy_limit = COPY_LIMIT
        # Where writers' full parts are sent while they fill the next one.
        self.senders = ThreadPoolExecutor(SENDER_THREADS, thread_name_prefix="satchel-s3")

    # -- names ------------------------------------------------------------------------------

    def object_key(self, key: str) -> str:
        return f"{self.prefix}blobs/{check_key(key)}"

    def _staging_folder(self, key: str) -> str:
        return f"{self.prefix}staging/{check_key(key)}/"

    def segment_name(self, key: str, start: int) -> str:
        return f"{self._staging_folder(key)}{start:0{OFFSET_DIGITS}d}"

    # -- committed blobs ----------------------------------------------------------------------

    def open_writer(self, key: str) -> S3BlobWriter:
        return S3BlobWriter(self, self.object_key(key))

    def read_range(
        self, key: str, start: int = 0, end: int | None = None, piece_size: int = PIECE_SIZE
    ) -> Iterator[bytes]:
        check_range(start, end, piece_size)
        name = self.object_key(key)
        if end is not None and end <= start:
            self.stat(key)  # nothing to read, but a missing blob is still an error
            return iter(())
        wanted = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=name, Range=wanted)
        except ClientError as exc:
            if _error_code(exc) == "InvalidRange":  # the blob exists; start is past its end
                return iter(())
            _failed(exc, f"read {key}")
        except BotoCoreError as exc:
            _failed(exc, f"read {key}")
        return _RangeReader(answer["Body"], piece_size)

    def stat(self, key: str) -> BlobStat:
        name = self.object_key(key)
        with _s3(f"stat {key}"):
            head = self.client.head_object(Bucket=self.bucket, Key=name)
        return BlobStat(size=head["ContentLength"], modified=_utc(head["LastModified"]))

    def delete(self, key: str) -> None:
        name = self.object_key(key)
        with _s3(f"delete {key}"):
            self.client.delete_object(Bucket=self.bucket, Key=name)

    def iter_blobs(self) -> Iterator[tuple[str, BlobStat]]:
        folder = f"{self.prefix}blobs/"
        for item in self._list(folder):
            key = item["Key"][len(folder) :]
            # Anything else under the prefix is not ours: the orphan sweep would delete it.
            if BLOB_KEY_RE.fullmatch(key):
                yield key, BlobStat(size=item["Size"], modified=_utc(item["LastModified"]))

    def _list(self, prefix: str) -> Iterator[Any]:
        pages = self.client.get_paginator("list_objects_v2")
        with _s3(f"list {prefix}"):
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Contents", [])

    def copy(self, source: str, target: str) -> None:
        """A server-side copy: no byte of the blob passes through this process."""
        size = self.stat(source).size
        copy_source: CopySourceTypeDef = {"Bucket": self.bucket, "Key": self.object_key(source)}
        if size <= self.copy_limit:
            with _s3(f"copy {source}"):
                self.client.copy_object(
                    Bucket=self.bucket, Key=self.object_key(target), CopySource=copy_source
                )
            return
        with _Assembly(self, self.object_key(target)) as assembly:
            for start in range(0, size, self.copy_limit):
                assembly.copy_part(copy_source, start, min(start + self.copy_limit, size))
            assembly.complete()

    def sweep_temp(self, older_than: timedelta) -> int:
        """Aborts the multipart uploads (writes not committed) started before the cutoff."""
        cutoff = datetime.now(UTC) - older_than
        removed = 0
        pages = self.client.get_paginator("list_multipart_uploads")
        with _s3("list multipart uploads"):
            for page in pages.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}blobs/"):
                for upload in page.get("Uploads", []):
                    if _utc(upload["Initiated"]) >= cutoff:
                        continue
                    with contextlib.suppress(FileNotFoundError):  # completed or aborted meanwhile
                        self._abort(upload["Key"], upload["UploadId"])
                        removed += 1
        return removed

    def _abort(self, name: str, upload_id: str) -> None:
        with _s3(f"abort {name}"):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)

    def check(self) -> None:
        with _s3(f"bucket {self.bucket}"):
            self.client.head_bucket(Bucket=self.bucket)

    def close(self) -> None:
        self.senders.shutdown(wait=True)
        self.client.close()  # its pooled connections, else left to the garbage collector

    # -- staged blobs -------------------------------------------------------------------------

    def segments(self, key: str) -> list[Segment]:
        folder = self._staging_folder(key)
        found = []
        for item in self._list(folder):
            offset = item["Key"][len(folder) :]
            if len(offset) == OFFSET_DIGITS and offset.isdigit():
                found.append(
                    Segment(int(offset), item["Size"], item["Key"], _utc(item["LastModified"]))
                )
        return found

    def open_staging(self, key: str, size: int) -> S3StagingWriter:
        segments = self.segments(key)
        run = contiguous(segments)
        current = sum(segment.size for segment in run)
        if size > current:
            raise ValueError(f"staged blob has {current} bytes, not {size}")
        self._truncate(key, segments, size)
        return S3StagingWriter(self, key, size)

    def _truncate(self, key: str, segments: list[Segment], size: int) -> None:
        """Drops what lies past ``size``: the last segments go first, so that a crash
        half way still leaves a run from 0 (the next open truncates again)."""
        for segment in sorted(segments, key=lambda s: s.start, reverse=True):
            if segment.start >= size and segment.start > 0:
                self._delete_object(segment.name)
            elif segment.start < size < segment.start + segment.size:
                keep = size - segment.start
                with _s3(f"truncate {key}"):
                    body = self.client.get_object(
                        Bucket=self.bucket, Key=segment.name, Range=f"bytes=0-{keep - 1}"
                    )["Body"].read()
                self.put_segment(key, segment.start, body)  # replaces it in one step
        if size == 0:
            self.put_segment(key, 0, b"")  # a staged blob of 0 bytes exists: the marker

    def put_segment(self, key: str, start: int, data: bytes) -> None:
        with _s3(f"stage {key}"):
            self.client.put_object(Bucket=self.bucket, Key=self.segment_name(key, start), Body=data)

    def _delete_object(self, name: str) -> None:
        with _s3(f"delete {name}"):
            self.client.delete_object(Bucket=self.bucket, Key=name)

    def staging_size(self, key: str) -> int | None:
        segments = self.segments(key)
        if not segments:
            return None
        return sum(segment.size for segment in contiguous(segments))

    def commit_staging(self, key: str) -> None:
        segments = self.segments(key)
        run = contiguous(segments)
        if not run:
            raise FileNotFoundError(errno.ENOENT, f"no staged blob {key}")
        target = self.object_key(key)
        if len(run) == 1:  # segments are at most one part: within CopyObject's limit
            with _s3(f"commit {key}"):
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=target,
                    CopySource={"Bucket": self.bucket, "Key": run[0].name},
                )
        else:
            self._assemble(run, target)
        self.delete_staging(key)

    def _assemble(self, run: list[Segment], target: str) -> None:
        """One multipart upload of the segments, copied on the server where S3 allows it.
        A part must have 5 MiB (all but the last), so a smaller segment is topped up here
        with the first bytes of what follows and sent; the rest of that is copied once 5 MiB
        or more are left. Memory: 5 MiB; bytes through this process: about a part's worth
        for each small segment (the end of a PATCH)."""
        with _Assembly(self, target) as assembly:
            for index, segment in enumerate(run):
                position = 0
                if assembly.pending:
                    position = min(segment.size, MIN_PART_SIZE - len(assembly.pending))
                    self._gather(assembly, segment, 0, position)
                    if len(assembly.pending) >= MIN_PART_SIZE:
                        assembly.flush()
                rest = segment.size - position
                last = index == len(run) - 1
                if rest and not assembly.pending and (rest >= MIN_PART_SIZE or last):
                    source: CopySourceTypeDef = {"Bucket": self.bucket, "Key": segment.name}
                    assembly.copy_part(source, position, segment.size)
                elif rest:
                    self._gather(assembly, segment, position, segment.size)
            assembly.complete()

    def _gather(self, assembly: _Assembly, segment: Segment, start: int, end: int) -> None:
        if end <= start:
            return
        with _s3(f"read {segment.name}"):
            answer = self.client.get_object(
                Bucket=self.bucket, Key=segment.name, Range=f"bytes={start}-{end - 1}"
            )
            for piece in answer["Body"].iter_chunks(PIECE_SIZE):
                assembly.pending += piece

    def delete_staging(self, key: str) -> None:
        for segment in sorted(self.segments(key), key=lambda s: s.start, reverse=True):
            self._delete_object(segment.name)

    def iter_staging(self) -> Iterator[tuple[str, BlobStat]]:
        folder = f"{self.prefix}staging/"
        seen: dict[str, BlobStat] = {}
        for item in self._list(folder):
            key, _, offset = item["Key"][len(folder) :].partition("/")
            if not BLOB_KEY_RE.fullmatch(key) or len(offset) != OFFSET_DIGITS:
                continue
            earlier = seen.get(key, BlobStat(0, datetime.min.replace(tzinfo=UTC)))
            seen[key] = BlobStat(
                size=earlier.size + item["Size"],
                modified=max(earlier.modified, _utc(item["LastModified"])),
            )
        yield from seen.items()


class _Assembly(AbortsOnExit):
    """A multipart upload put together from uploaded and server-copied parts."""

    def __init__(self, store: S3BlobStore, name: str) -> None:
        self.store = store
        self.name = name
        self.parts: list[CompletedPartTypeDef] = []
        self.pending = bytearray()
        with _s3(f"start {name}"):
            answer = store.client.create_multipart_upload(Bucket=store.bucket, Key=name)
        self.upload_id = answer["UploadId"]
        self.done = False

    def upload_part(self, data: bytes) -> None:
        number = self._next_number()
        with _s3(f"write {self.name}"):
            answer = self.store.client.upload_part(
                Bucket=self.store.bucket,
                Key=self.name,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=data,
            )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def copy_part(self, source: CopySourceTypeDef, start: int, end: int) -> None:
        number = self._next_number()
        with _s3(f"copy into {self.name}"):
            answer = self.store.client.upload_part_copy(
                Bucket=self.store.bucket,
                Key=self.name,
                UploadId=self.upload_id,
                PartNumber=number,
                CopySource=source,
                CopySourceRange=f"bytes={start}-{end - 1}",
            )
        self.parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})

    def flush(self) -> None:
        self.upload_part(bytes(self.pending))
        self.pending.clear()

    def _next_number(self) -> int:
        if len(self.parts) >= MAX_PARTS:
            raise OSError(errno.EFBIG, f"{self.name}: more than {MAX_PARTS} parts")
        return len(self.parts) + 1

    def complete(self) -> None:
        if self.pending or not self.parts:
            self.flush()
        with _s3(f"commit {self.name}"):
            self.store.client.complete_multipart_upload(
                Bucket=self.store.bucket,
                Key=self.name,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
            )
        self.done = True

    def abort(self) -> None:
        if not self.done:
            self.done = True
            with contextlib.suppress(OSError):  # else the sweep aborts it later
                self.store._abort(self.name, self.upload_id)


class S3BlobWriter(AbortsOnExit):
    """Buffers up to one part; a blob that fits in one part is one PUT at the commit, a
    larger one a multipart upload. A full part leaves in a thread of the store while the
    next one fills (one in flight: memory is two parts a writer at most)."""

    def __init__(self, store: S3BlobStore, name: str) -> None:
        self.store = store
        self.name = name
        self._buffer = bytearray()
        self._upload: _Assembly | None = None
        self._sending: Future[None] | None = None
        self._state = "open"

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._require_open()
        view = memoryview(data).cast("B")
        part_size = self.store.part_size
        while view:
            take = min(part_size - len(self._buffer), len(view))
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) >= part_size:
                self._send_part()

    def _send_part(self) -> None:
        self._wait_sent()
        if self._upload is None:
            self._upload = _Assembly(self.store, self.name)
        part, self._buffer = bytes(self._buffer), bytearray()
        self._sending = self.store.senders.submit(self._upload.upload_part, part)

    def _wait_sent(self) -> None:
        sending, self._sending = self._sending, None
        if sending is not None:
            sending.result()  # a failed part fails the write that follows it

    def commit(self) -> None:
        self._require_open()
        self._wait_sent()
        if self._upload is None:
            with _s3(f"write {self.name}"):
                self.store.client.put_object(
                    Bucket=self.store.bucket, Key=self.name, Body=bytes(self._buffer)
                )
        else:
            self._upload.pending = self._buffer
            self._upload.complete()
        self._buffer = bytearray()
        self._state = "committed"

    def abort(self) -> None:
        if self._state != "open":
            return
        self._state = "aborted"
        self._buffer = bytearray()
        with contextlib.suppress(OSError):
            self._wait_sent()
        if self._upload is not None:
            self._upload.abort()

    def _require_open(self) -> None:
        if self._state != "open":
            raise ValueError(f"blob writer is closed ({self._state})")


class S3StagingWriter:
    """Appends to a staged blob as segments of up to one part each: written when the
    buffer fills, on sync() and on close(). A crash loses only what was not yet written, and
    the staged blob stays a run of whole segments (each PUT is all or nothing)."""

    def __init__(self, store: S3BlobStore, key: str, size: int) -> None:
        self.store = store
        self.key = key
        self._offset = size  # where the buffer starts in the staged blob
        self._buffer = bytearray()
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise ValueError("write to a closed staging writer")
        view = memoryview(data).cast("B")
        part_size = self.store.part_size
        while view:
            take = min(part_size - len(self._buffer), len(view))
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) >= part_size:
                self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self.store.put_segment(self.key, self._offset, bytes(self._buffer))
            self._offset += len(self._buffer)
            self._buffer.clear()

    def sync(self) -> None:
        self._flush()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._flush()


class _RangeReader:
    """Pieces of one ranged GET as they arrive; closes the connection when done or dropped.

    A reader dropped half way (a client that went away) is often garbage in one cycle with
    the generators around it; a finalizer of its own (not __del__) closes the connection
    before the collector gets to the socket, which would complain about it unclosed.
    """

    def __init__(self, body: Any, piece_size: int) -> None:
        self._body: Any = body
        self._piece_size = piece_size
        self._closer = weakref.finalize(self, body.close)

    def __iter__(self) -> _RangeReader:
        return self

    def __next__(self) -> bytes:
        if self._body is None:
            raise StopIteration
        try:
            piece: bytes = self._body.read(self._piece_size)
        except (BotoCoreError, urllib3.exceptions.HTTPError) as exc:
            self.close()
            raise OSError(errno.EIO, f"S3 read cut short: {exc}") from exc
        if not piece:
            self.close()
            raise StopIteration
        return piece

    def close(self) -> None:
        self._body = None
        self._closer()
