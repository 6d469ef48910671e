"""Encryption at rest: a random data key per file, the body in AES-256-GCM chunks.

Blob layout (docs/storage-format.md): a 16-byte header (magic ``STCH``, version 1, three zero
bytes, chunk size as uint32 big-endian, 4-byte random nonce prefix), then the chunks, each
``ciphertext || tag``. Nonce = prefix + 7-byte chunk index + last-chunk flag; AAD = header.
The data key is not in the blob: the caller wraps it with the master keys and stores it.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from satchel.storage.base import BlobStore

MAGIC = b"STCH"
VERSION = 1
HEADER_SIZE = 16
TAG_SIZE = 16
KEY_SIZE = 32
DEFAULT_CHUNK_SIZE = 1 << 20
# A reader allocates a whole chunk: the cap keeps a forged header from asking for gigabytes.
MAX_CHUNK_SIZE = 1 << 26
_RESERVED = b"\x00\x00\x00"
_HEADER = struct.Struct(">4sB3sI4s")


class IntegrityError(Exception):
    """The blob was altered, truncated, or does not belong to this key."""


class Sink(Protocol):
    # The buffer handed to write() is reused right after: a sink must consume it, not keep it.
    def write(self, data: bytes | bytearray | memoryview, /) -> object: ...


def new_data_key() -> bytes:
    return os.urandom(KEY_SIZE)


def ciphertext_size(plaintext_size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    if plaintext_size < 0:
        raise ValueError("plaintext_size must not be negative")
    _check_chunk_size(chunk_size)
    chunks = max(1, -(-plaintext_size // chunk_size))  # an empty file is one empty chunk
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE


def _check_chunk_size(chunk_size: int) -> None:
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size must be between 1 and {MAX_CHUNK_SIZE} bytes")


def _cipher(data_key: bytes) -> AESGCM:
    if len(data_key) != KEY_SIZE:
        raise ValueError(f"a data key is {KEY_SIZE} bytes")
    return AESGCM(data_key)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(7, "big") + (b"\x01" if last else b"\x00")


class EncryptingWriter:
    """Takes plaintext in writes of any size and writes the encrypted blob to ``sink``.

    Does not commit the sink: the caller commits it after close().
    """

    def __init__(self, sink: Sink, data_key: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        _check_chunk_size(chunk_size)
        self._sink = sink
        self._aead = _cipher(data_key)
        self._chunk_size = chunk_size
        self._prefix = os.urandom(4)
        self._header = _HEADER.pack(MAGIC, VERSION, _RESERVED, chunk_size, self._prefix)
        # Both buffers grow to one chunk at most and are then reused for every chunk (fresh
        # megabyte allocations cost page faults); a small file never allocates a whole chunk.
        self._held = bytearray()
        self._filled = 0
        self._out = bytearray()
        self._index = 0
        self._size = 0
        self._closed = False
        sink.write(self._header)

    @property
    def plaintext_size(self) -> int:
        return self._size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise ValueError("write to a closed (or failed) EncryptingWriter")
        try:
            self._absorb(memoryview(data).cast("B"))
        except BaseException:
            self._closed = True  # a chunk may be half written to the sink: the blob is void
            raise

    def _absorb(self, view: memoryview) -> None:
        size = self._chunk_size
        self._size += len(view)
        while view:
            if self._filled == size:
                # More data follows, so the held chunk is not the last one.
                self._seal_held(last=False)
            if self._filled == 0 and len(view) > size:
                # Sealed straight from the caller's buffer; only a chunk that may turn out to
                # be the last one is copied and held back.
                self._seal(view[:size], last=False)
                view = view[size:]
                continue
            take = min(size - self._filled, len(view))
            # Slice assignment grows the buffer up to one chunk, then only overwrites it:
            # clear() or del would give the memory back and allocate it again every chunk.
            self._held[self._filled : self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]

    def close(self) -> None:
        """Writes the last chunk; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        self._seal_held(last=True)
        self._held = bytearray()
        self._out = bytearray()

    def _seal_held(self, last: bool) -> None:
        with memoryview(self._held) as held:
            self._seal(held[: self._filled], last)
        self._filled = 0

    def _seal(self, chunk: memoryview, last: bool) -> None:
        needed = len(chunk) + TAG_SIZE
        if len(self._out) < needed:
            self._out = bytearray(needed)
        with memoryview(self._out) as out:
            sealed = out[:needed]
            nonce = _nonce(self._prefix, self._index, last)
            self._aead.encrypt_into(nonce, chunk, self._header, sealed)
            self._sink.write(sealed)
            sealed.release()
        self._index += 1


class ChunkSealer:
    """Seals the chunks of a file whose size is known from the start, one at a time and in
    any request: which chunk is the last follows from the size, so nothing is held back.
    Gives the same blob as ``EncryptingWriter`` with the same key and prefix."""

    def __init__(
        self,
        data_key: bytes,
        prefix: bytes,
        plaintext_size: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        _check_chunk_size(chunk_size)
        if len(prefix) != 4 or plaintext_size < 0:
            raise ValueError("a 4-byte prefix and a size of 0 or more")
        self._aead = _cipher(data_key)
        self._prefix = prefix
        self.chunk_size = chunk_size
        self.plaintext_size = plaintext_size
        self.header = _HEADER.pack(MAGIC, VERSION, _RESERVED, chunk_size, prefix)
        self.last_index = max(0, plaintext_size - 1) // chunk_size

    def sealed_offset(self, index: int) -> int:
        """Where chunk ``index`` starts in the blob."""
        return HEADER_SIZE + index * (self.chunk_size + TAG_SIZE)

    def seal_into(self, index: int, chunk: memoryview, out: bytearray) -> memoryview:
        """Like ``seal``, into ``out`` (grown as needed and reused); the sealed bytes' view."""
        self._check(index, len(chunk))
        needed = len(chunk) + TAG_SIZE
        if len(out) < needed:
            out.extend(bytes(needed - len(out)))
        sealed = memoryview(out)[:needed]
        nonce = _nonce(self._prefix, index, index == self.last_index)
        self._aead.encrypt_into(nonce, chunk, self.header, sealed)
        return sealed

    def _check(self, index: int, length: int) -> None:
        expected = (
            self.chunk_size
            if index < self.last_index
            else self.plaintext_size - index * self.chunk_size
        )
        if index > self.last_index or length != expected:
            raise ValueError(f"chunk {index} must hold {expected} bytes")

    def seal(self, index: int, chunk: bytes | bytearray | memoryview) -> bytes:
        expected = (
            self.chunk_size
            if index < self.last_index
            else self.plaintext_size - index * self.chunk_size
        )
        if index > self.last_index or len(chunk) != expected:
            raise ValueError(f"chunk {index} must hold {expected} bytes")
        nonce = _nonce(self._prefix, index, index == self.last_index)
        return self._aead.encrypt(nonce, bytes(chunk), self.header)


def encrypt_bytes(data: bytes, data_key: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> bytes:
    sink = io.BytesIO()
    writer = EncryptingWriter(sink, data_key, chunk_size)
    writer.write(data)
    writer.close()
    return sink.getvalue()


@dataclass(frozen=True)
class _Layout:
    header: bytes
    prefix: bytes
    chunk_size: int
    plaintext_size: int

    @property
    def last_index(self) -> int:
        return max(0, self.plaintext_size - 1) // self.chunk_size

    def sealed_size(self, index: int) -> int:
        if index < self.last_index:
            return self.chunk_size + TAG_SIZE
        return self.plaintext_size - index * self.chunk_size + TAG_SIZE

    def offset(self, index: int) -> int:
        return HEADER_SIZE + index * (self.chunk_size + TAG_SIZE)


def decrypt_range(
    store: BlobStore,
    key: str,
    data_key: bytes,
    plaintext_size: int,
    start: int = 0,
    end: int | None = None,
) -> Iterator[bytes]:
    """Plaintext [start, end), clipped to the file, reading only the chunks that cover it.

    Raises on the call itself (FileNotFoundError, IntegrityError for a bad header or size);
    IntegrityError for a chunk comes from the iteration. Chunks outside the range are not
    authenticated, so only a read of the whole file vouches for the whole blob.
    """
    if plaintext_size < 0 or start < 0:
        raise ValueError("sizes and offsets must not be negative")
    aead = _cipher(data_key)
    layout = _read_layout(store, key, plaintext_size)
    end = plaintext_size if end is None else min(end, plaintext_size)
    if start >= end and plaintext_size > 0:
        return iter(())
    # An empty file still has its one empty chunk authenticated, so that even reading
    # nothing from it vouches for the blob.
    return _decrypt_chunks(store, key, aead, layout, min(start, end), end)


def decrypt_whole(blob: bytes, data_key: bytes, plaintext_size: int) -> bytes:
    """A whole small blob already in memory (one read instead of header, stat and chunks)."""
    layout = _parse_layout(blob[:HEADER_SIZE], len(blob), plaintext_size)
    aead = _cipher(data_key)
    parts = []
    for index in range(layout.last_index + 1):
        start = layout.offset(index)
        sealed = blob[start : start + layout.sealed_size(index)]
        parts.append(_open_chunk(aead, layout, index, sealed))
    return b"".join(parts)


def _read_layout(store: BlobStore, key: str, plaintext_size: int) -> _Layout:
    header = b"".join(store.read_range(key, 0, HEADER_SIZE))
    return _parse_layout(header, store.stat(key).size, plaintext_size)


def _parse_layout(header: bytes, blob_size: int, plaintext_size: int) -> _Layout:
    if len(header) != HEADER_SIZE:
        raise IntegrityError("blob is shorter than its header")
    magic, version, reserved, chunk_size, prefix = _HEADER.unpack(header)
    if magic != MAGIC:
        raise IntegrityError("not a Satchel blob (bad magic)")
    if version != VERSION:
        raise IntegrityError(f"unsupported blob format version {version}")
    if reserved != _RESERVED:
        raise IntegrityError("reserved header bytes are not zero")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise IntegrityError(f"unsupported chunk size {chunk_size}")
    expected = ciphertext_size(plaintext_size, chunk_size)
    if blob_size != expected:
        raise IntegrityError(f"blob is {blob_size} bytes, {expected} expected for this file size")
    return _Layout(header, prefix, chunk_size, plaintext_size)


def _decrypt_chunks(
    store: BlobStore, key: str, aead: AESGCM, layout: _Layout, start: int, end: int
) -> Iterator[bytes]:
    first, last = start // layout.chunk_size, max(0, end - 1) // layout.chunk_size
    begin, stop = layout.offset(first), layout.offset(last) + layout.sealed_size(last)
    pieces = store.read_range(key, begin, stop, piece_size=layout.chunk_size + TAG_SIZE)
    try:
        sizes = (layout.sealed_size(index) for index in range(first, last + 1))
        for index, sealed in enumerate(_regroup(pieces, sizes), first):
            plain = _open_chunk(aead, layout, index, sealed)
            offset = index * layout.chunk_size
            if offset < start or offset + len(plain) > end:
                plain = plain[max(0, start - offset) : end - offset]
            if plain:
                yield plain
    finally:
        _close(pieces)  # the consumer may stop early (a client that went away)


def _open_chunk(aead: AESGCM, layout: _Layout, index: int, sealed: bytes | bytearray) -> bytes:
    # Index and last flag are in the nonce: a chunk moved, dropped or added fails here.
    nonce = _nonce(layout.prefix, index, index == layout.last_index)
    try:
        return aead.decrypt(nonce, sealed, layout.header)
    except InvalidTag:
        raise IntegrityError(f"chunk {index} failed authentication") from None


def _regroup(pieces: Iterator[bytes], sizes: Iterable[int]) -> Iterator[bytes | bytearray]:
    """Cuts the store's pieces into sealed chunks of the given sizes."""
    pending = bytearray()
    for size in sizes:
        if not pending:
            piece = next(pieces, b"")
            if len(piece) == size:  # the usual case: the store hands out whole chunks
                yield piece
                continue
            pending += piece
        while len(pending) < size:
            piece = next(pieces, b"")
            if not piece:
                raise IntegrityError("blob is truncated")
            pending += piece
        yield pending[:size]
        del pending[:size]


def _close(iterator: Iterator[bytes]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()
