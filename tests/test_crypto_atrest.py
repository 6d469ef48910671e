from __future__ import annotations

import os
from pathlib import Path

import pytest

from satchel.crypto.atrest import (
    HEADER_SIZE,
    TAG_SIZE,
    EncryptingWriter,
    IntegrityError,
    ciphertext_size,
    decrypt_range,
    encrypt_bytes,
    new_data_key,
)
from satchel.storage.local import LocalBlobStore

KEY = "crypto-test-blob-0001"
CHUNK = 64


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "store")


def put(store: LocalBlobStore, data: bytes, key: bytes, chunk: int = CHUNK, step: int = 7) -> None:
    with store.open_writer(KEY) as writer:
        cipher = EncryptingWriter(writer, key, chunk)
        for offset in range(0, len(data), step):
            cipher.write(data[offset : offset + step])
        cipher.close()
        writer.commit()


def read(
    store: LocalBlobStore, key: bytes, size: int, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join(decrypt_range(store, KEY, key, size, start, end))


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5, 1000]
)
def test_round_trip_and_every_range(store: LocalBlobStore, size: int) -> None:
    data, key = os.urandom(size), new_data_key()
    put(store, data, key)
    assert store.stat(KEY).size == ciphertext_size(size, CHUNK)
    assert read(store, key, size) == data
    for start in range(0, size + 1, max(1, size // 40)):
        for end in range(start, size + 2, max(1, size // 40)):
            assert read(store, key, size, start, end) == data[start:end]


def test_default_chunk_size_with_big_writes(store: LocalBlobStore) -> None:
    data, key = os.urandom(5 * (1 << 20) + 123), new_data_key()
    put(store, data, key, chunk=1 << 20, step=3 * (1 << 20))
    assert read(store, key, len(data)) == data
    assert (
        read(store, key, len(data), (1 << 20) - 5, (2 << 20) + 5)
        == data[(1 << 20) - 5 : (2 << 20) + 5]
    )


def blob_path(store: LocalBlobStore) -> Path:
    return next(store.blobs.rglob(KEY))


def test_tampering_is_detected(store: LocalBlobStore) -> None:
    data, key = os.urandom(300), new_data_key()
    put(store, data, key)
    raw = bytearray(blob_path(store).read_bytes())
    for position in (0, 5, HEADER_SIZE + 3, HEADER_SIZE + CHUNK + TAG_SIZE + 1, len(raw) - 1):
        altered = bytearray(raw)
        altered[position] ^= 0x01
        blob_path(store).write_bytes(bytes(altered))
        with pytest.raises(IntegrityError):
            read(store, key, 300)


def test_swapped_chunks_are_detected(store: LocalBlobStore) -> None:
    data, key = os.urandom(4 * CHUNK), new_data_key()
    put(store, data, key)
    raw = blob_path(store).read_bytes()
    stored = CHUNK + TAG_SIZE
    first, second = (
        raw[HEADER_SIZE : HEADER_SIZE + stored],
        raw[HEADER_SIZE + stored : HEADER_SIZE + 2 * stored],
    )
    blob_path(store).write_bytes(
        raw[:HEADER_SIZE] + second + first + raw[HEADER_SIZE + 2 * stored :]
    )
    with pytest.raises(IntegrityError):
        read(store, key, len(data))


def test_truncation_at_a_chunk_boundary_is_detected(store: LocalBlobStore) -> None:
    data, key = os.urandom(4 * CHUNK), new_data_key()
    put(store, data, key)
    raw = blob_path(store).read_bytes()
    blob_path(store).write_bytes(raw[: HEADER_SIZE + 3 * (CHUNK + TAG_SIZE)])
    with pytest.raises(IntegrityError):
        read(store, key, len(data))
    # Even when the recorded size is lied about to match, the old third chunk is not a "last" one.
    with pytest.raises(IntegrityError):
        read(store, key, 3 * CHUNK)


def test_appended_chunk_is_detected(store: LocalBlobStore) -> None:
    data, key = os.urandom(2 * CHUNK), new_data_key()
    put(store, data, key)
    raw = blob_path(store).read_bytes()
    blob_path(store).write_bytes(raw + raw[HEADER_SIZE : HEADER_SIZE + CHUNK + TAG_SIZE])
    with pytest.raises(IntegrityError):
        read(store, key, len(data))


def test_wrong_key_is_detected(store: LocalBlobStore) -> None:
    put(store, b"secret" * 30, new_data_key())
    with pytest.raises(IntegrityError):
        read(store, new_data_key(), 180)


def test_no_plaintext_in_the_blob() -> None:
    marker = b"PLAINTEXT-MARKER"
    blob = encrypt_bytes(marker * 1000, new_data_key(), CHUNK)
    assert marker not in blob
    assert len(blob) == ciphertext_size(16000, CHUNK)


def test_missing_blob_raises_file_not_found(store: LocalBlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        decrypt_range(store, KEY, new_data_key(), 10)
