"""Encryption at rest: per-file data key, body in authenticated AES-256-GCM chunks.

Blob layout (docs/storage-format.md): a 16-byte header (magic ``STCH``, version 1, three zero
bytes, chunk size as uint32 big-endian, 4-byte random nonce prefix), then the chunks, each
``ciphertext || tag``. Nonce = prefix + 7-byte chunk index + last-chunk flag; AAD = header.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from satchel.storage.base import BlobStore

MAGIC = b"STCH"
VERSION = 1
HEADER_SIZE = 16
TAG_SIZE = 16
DEFAULT_CHUNK_SIZE = 1 << 20
_HEADER = struct.Struct(">4sB3xI4s")


class IntegrityError(Exception):
    """The blob was altered, truncated, or does not belong to this key."""


class Sink(Protocol):
    def write(self, data: bytes | bytearray | memoryview) -> None: ...


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def ciphertext_size(plaintext_size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    chunks = max(1, -(-plaintext_size // chunk_size))
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(7, "big") + (b"\x01" if last else b"\x00")


class EncryptingWriter:
    """Takes plaintext of any size, writes the encrypted blob body to ``sink``.

    A full chunk is held back until more data arrives, because only ``close`` knows which
    chunk is the last one.
    """

    def __init__(self, sink: Sink, data_key: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.sink = sink
        self.chunk_size = chunk_size
        self._aead = AESGCM(data_key)
        prefix = os.urandom(4)
        self._header = _HEADER.pack(MAGIC, VERSION, chunk_size, prefix)
        self._prefix = prefix
        # Buffers grow to one chunk and are then reused for every chunk (fresh megabyte
        # allocations cost page faults); a small file never allocates a whole chunk.
        self._buffer = bytearray()
        self._filled = 0
        self._out = bytearray()
        self._index = 0
        self.plaintext_size = 0
        sink.write(self._header)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        self.plaintext_size += len(view)
        size = self.chunk_size
        while view:
            if self._filled == size:
                # Only sealed once more data arrives: close() alone knows the last chunk.
                self._seal(memoryview(self._buffer), last=False)
                self._filled = 0
            if self._filled == 0 and len(view) > size:
                self._seal(view[:size], last=False)
                view = view[size:]
                continue
            take = min(size - self._filled, len(view))
            self._buffer[self._filled : self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]

    def close(self) -> None:
        self._seal(memoryview(self._buffer)[: self._filled], last=True)
        self._filled = 0

    def _seal(self, chunk: memoryview, last: bool) -> None:
        nonce = _nonce(self._prefix, self._index, last)
        needed = len(chunk) + TAG_SIZE
        if len(self._out) < needed:
            self._out = bytearray(needed)
        out = memoryview(self._out)[:needed]
        self._aead.encrypt_into(nonce, chunk, self._header, out)
        self.sink.write(out)
        self._index += 1


def encrypt_bytes(data: bytes, data_key: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> bytes:
    parts: list[bytes] = []

    class _Collect:
        def write(self, piece: bytes | bytearray | memoryview) -> None:
            parts.append(bytes(piece))

    writer = EncryptingWriter(_Collect(), data_key, chunk_size)
    writer.write(data)
    writer.close()
    return b"".join(parts)


def decrypt_range(
    store: BlobStore,
    key: str,
    data_key: bytes,
    plaintext_size: int,
    start: int = 0,
    end: int | None = None,
) -> Iterator[bytes]:
    """Plaintext [start, end), reading and decrypting only the chunks that cover it."""
    header = b"".join(store.read_range(key, 0, HEADER_SIZE))
    chunk_size, prefix = _parse_header(header)
    if store.stat(key).size != ciphertext_size(plaintext_size, chunk_size):
        raise IntegrityError("blob size does not match the recorded file size")
    end = plaintext_size if end is None else min(end, plaintext_size)
    start = max(0, start)
    return _decrypt_chunks(
        store, key, AESGCM(data_key), header, prefix, chunk_size, plaintext_size, start, end
    )


def _parse_header(header: bytes) -> tuple[int, bytes]:
    if len(header) != HEADER_SIZE:
        raise IntegrityError("blob header is truncated")
    magic, version, chunk_size, prefix = _HEADER.unpack(header)
    if magic != MAGIC or version != VERSION or chunk_size <= 0:
        raise IntegrityError("not a blob of a known format")
    return chunk_size, prefix


def _decrypt_chunks(
    store: BlobStore,
    key: str,
    aead: AESGCM,
    header: bytes,
    prefix: bytes,
    chunk_size: int,
    plaintext_size: int,
    start: int,
    end: int,
) -> Iterator[bytes]:
    if start >= end:
        return
    last_index = (plaintext_size - 1) // chunk_size
    last_stored = plaintext_size - last_index * chunk_size + TAG_SIZE
    stored = chunk_size + TAG_SIZE
    index, final = start // chunk_size, (end - 1) // chunk_size
    offset = HEADER_SIZE + index * stored
    pieces = store.read_range(key, offset, offset + (final - index) * stored + stored, stored)
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        while index <= final:
            want = last_stored if index == last_index else stored
            if len(buffer) < want:
                break
            plain = _open_chunk(aead, prefix, header, index, index == last_index, buffer[:want])
            del buffer[:want]
            yield _trim(plain, index * chunk_size, start, end)
            index += 1
        if index > final:
            return
    raise IntegrityError("blob is truncated")


def _open_chunk(
    aead: AESGCM, prefix: bytes, header: bytes, index: int, last: bool, sealed: bytes | bytearray
) -> bytes:
    try:
        return aead.decrypt(_nonce(prefix, index, last), sealed, header)
    except InvalidTag:
        raise IntegrityError(f"chunk {index} failed authentication") from None


def _trim(plain: bytes, offset: int, start: int, end: int) -> bytes:
    if offset >= start and offset + len(plain) <= end:
        return plain
    return plain[max(0, start - offset) : end - offset]
