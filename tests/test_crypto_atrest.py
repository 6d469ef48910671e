from __future__ import annotations

import array
import os
import random
import struct
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tests.helpers import open_fds
from tests.storage_contract import BlobStoreContract, MemoryBlobStore

from satchel.crypto.atrest import (
    DEFAULT_CHUNK_SIZE,
    HEADER_SIZE,
    TAG_SIZE,
    EncryptingWriter,
    IntegrityError,
    ciphertext_size,
    decrypt_range,
    encrypt_bytes,
    new_data_key,
)
from satchel.storage.base import BlobStore
from satchel.storage.local import LocalBlobStore

KEY = "crypto-test-blob-0001"
CHUNK = 64
SEALED = CHUNK + TAG_SIZE
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK, 3 * CHUNK + 5]


class TestMemoryBlobStore(BlobStoreContract):
    """The in-memory double the tests below use keeps the storage contract too."""

    @pytest.fixture
    def store(self) -> MemoryBlobStore:
        return MemoryBlobStore()


@pytest.fixture
def store() -> MemoryBlobStore:
    return MemoryBlobStore()


def put(store: BlobStore, data: bytes, key: bytes, chunk: int = CHUNK, step: int = 7) -> None:
    with store.open_writer(KEY) as writer:
        cipher = EncryptingWriter(writer, key, chunk)
        for offset in range(0, len(data), step):
            cipher.write(data[offset : offset + step])
        cipher.close()
        assert cipher.plaintext_size == len(data)
        writer.commit()


def read(store: BlobStore, key: bytes, size: int, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(decrypt_range(store, KEY, key, size, start, end))


def raw(store: MemoryBlobStore) -> bytes:
    return store.blobs[KEY][0]


def replace_raw(store: MemoryBlobStore, blob: bytes) -> None:
    store.put(KEY, [blob])


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("step", [1, 7, CHUNK, CHUNK + 1, 1000])
def test_round_trip(store: MemoryBlobStore, size: int, step: int) -> None:
    data, key = os.urandom(size), new_data_key()
    put(store, data, key, step=step)
    assert len(raw(store)) == ciphertext_size(size, CHUNK)
    assert read(store, key, size) == data


@pytest.mark.parametrize("chunks", [1, 2, 3])
def test_whole_chunks_end_with_a_full_last_chunk(store: MemoryBlobStore, chunks: int) -> None:
    data, key = os.urandom(chunks * CHUNK), new_data_key()
    put(store, data, key, step=CHUNK)
    assert len(raw(store)) == HEADER_SIZE + chunks * SEALED  # no extra empty chunk
    assert read(store, key, len(data)) == data


def test_random_sizes_and_writes(store: MemoryBlobStore) -> None:
    rng = random.Random(1234)
    for _ in range(40):
        size, step = rng.randrange(0, 20 * CHUNK), rng.randrange(1, 5 * CHUNK)
        data, key = rng.randbytes(size), new_data_key()
        put(store, data, key, step=step)
        assert read(store, key, size) == data


def test_default_chunk_size_with_big_writes(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    data, key = os.urandom(5 * DEFAULT_CHUNK_SIZE + 123), new_data_key()
    put(store, data, key, chunk=DEFAULT_CHUNK_SIZE, step=4 * DEFAULT_CHUNK_SIZE)
    assert store.stat(KEY).size == ciphertext_size(len(data))
    pieces = list(decrypt_range(store, KEY, key, len(data)))
    assert [len(piece) for piece in pieces] == [DEFAULT_CHUNK_SIZE] * 5 + [123]
    assert b"".join(pieces) == data
    start, end = DEFAULT_CHUNK_SIZE - 5, 2 * DEFAULT_CHUNK_SIZE + 5
    assert read(store, key, len(data), start, end) == data[start:end]


def test_any_buffer_is_taken(store: MemoryBlobStore) -> None:
    numbers = array.array("I", range(100))  # items of 4 bytes: sizes must count bytes
    key = new_data_key()
    with store.open_writer(KEY) as writer:
        cipher = EncryptingWriter(writer, key, CHUNK)
        cipher.write(bytearray(b"ab"))
        cipher.write(memoryview(numbers))
        cipher.write(memoryview(b"xyz")[1:])
        cipher.close()
        writer.commit()
    expected = b"ab" + numbers.tobytes() + b"yz"
    assert cipher.plaintext_size == len(expected)
    assert read(store, key, len(expected)) == expected


def test_caller_may_reuse_its_buffer(store: MemoryBlobStore) -> None:
    buffer, key = bytearray(CHUNK + 10), new_data_key()
    with store.open_writer(KEY) as writer:
        cipher = EncryptingWriter(writer, key, CHUNK)
        for fill in (b"a", b"b", b"c"):
            buffer[:] = fill * len(buffer)
            cipher.write(buffer)  # held-back data must have been copied
        cipher.close()
        writer.commit()
    expected = b"".join(fill * (CHUNK + 10) for fill in (b"a", b"b", b"c"))
    assert read(store, key, len(expected)) == expected


# -- ranges --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 5, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3])
def test_every_range(store: MemoryBlobStore, size: int) -> None:
    data, key = os.urandom(size), new_data_key()
    put(store, data, key)
    for start in range(size + 2):
        for end in range(start, size + 3):
            assert read(store, key, size, start, end) == data[start:end], (start, end)
        assert read(store, key, size, start) == data[start:]


def test_pieces_are_at_most_one_chunk(store: MemoryBlobStore) -> None:
    data, key = os.urandom(10 * CHUNK), new_data_key()
    put(store, data, key)
    pieces = list(decrypt_range(store, KEY, key, len(data), 10, 9 * CHUNK - 3))
    assert [len(piece) for piece in pieces] == [CHUNK - 10] + [CHUNK] * 7 + [CHUNK - 3]


def test_only_the_covering_chunks_are_read(store: MemoryBlobStore) -> None:
    data, key = os.urandom(10 * CHUNK), new_data_key()
    put(store, data, key)
    store.reads.clear()
    assert (
        read(store, key, len(data), 2 * CHUNK + 5, 3 * CHUNK + 1)
        == data[2 * CHUNK + 5 : 3 * CHUNK + 1]
    )
    header_read, chunk_read = store.reads
    assert header_read == (KEY, 0, HEADER_SIZE)
    assert chunk_read == (KEY, HEADER_SIZE + 2 * SEALED, HEADER_SIZE + 4 * SEALED)


@pytest.mark.parametrize("piece", [1, 5, SEALED - 1, SEALED + 1, 3 * SEALED + 7])
def test_store_pieces_of_any_size(piece: int) -> None:
    store = MemoryBlobStore(max_piece=piece)  # a backend may hand out smaller pieces
    data, key = os.urandom(5 * CHUNK + 9), new_data_key()
    put(store, data, key)
    assert read(store, key, len(data)) == data
    assert read(store, key, len(data), CHUNK + 3, 4 * CHUNK) == data[CHUNK + 3 : 4 * CHUNK]


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_stopping_early_closes_the_blob(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    data, key = os.urandom(10 * CHUNK), new_data_key()
    put(store, data, key)
    blob = store.path_of(KEY).resolve()
    pieces = decrypt_range(store, KEY, key, len(data))
    assert isinstance(pieces, Generator)
    assert next(pieces) == data[:CHUNK]
    assert open_fds(blob) == 1
    pieces.close()
    assert open_fds(blob) == 0


def test_missing_blob_fails_on_the_call(store: MemoryBlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        decrypt_range(store, KEY, new_data_key(), 10)  # not iterated


def test_bad_arguments(store: MemoryBlobStore) -> None:
    put(store, b"data", new_data_key())
    with pytest.raises(ValueError, match="32 bytes"):
        decrypt_range(store, KEY, b"short key", 4)
    with pytest.raises(ValueError, match="negative"):
        decrypt_range(store, KEY, new_data_key(), 4, -1)
    with pytest.raises(ValueError, match="32 bytes"):
        EncryptingWriter(MemoryBlobStore().open_writer(KEY), os.urandom(16))
    with pytest.raises(ValueError, match="chunk size"):
        EncryptingWriter(MemoryBlobStore().open_writer(KEY), new_data_key(), 0)


# -- integrity -----------------------------------------------------------------------------


def assert_rejected(store: MemoryBlobStore, key: bytes, size: int) -> None:
    # Header and size faults are raised by the call, chunk faults by the iteration.
    with pytest.raises(IntegrityError):
        read(store, key, size)


@pytest.mark.parametrize("size", [0, 1, CHUNK, 2 * CHUNK + 5])
def test_flipping_any_bit_of_any_byte_is_detected(store: MemoryBlobStore, size: int) -> None:
    data, key = os.urandom(size), new_data_key()
    put(store, data, key)
    blob = raw(store)
    for position in range(len(blob)):
        for bit in (0x01, 0x80):
            altered = bytearray(blob)
            altered[position] ^= bit
            replace_raw(store, bytes(altered))
            assert_rejected(store, key, size)


def test_swapped_chunks_are_detected(store: MemoryBlobStore) -> None:
    data, key = os.urandom(4 * CHUNK), new_data_key()
    put(store, data, key)
    blob = raw(store)
    first, second = (
        blob[HEADER_SIZE : HEADER_SIZE + SEALED],
        blob[HEADER_SIZE + SEALED : HEADER_SIZE + 2 * SEALED],
    )
    replace_raw(store, blob[:HEADER_SIZE] + second + first + blob[HEADER_SIZE + 2 * SEALED :])
    assert_rejected(store, key, len(data))


def test_dropping_the_last_chunk_is_detected(store: MemoryBlobStore) -> None:
    data, key = os.urandom(4 * CHUNK), new_data_key()
    put(store, data, key)
    replace_raw(store, raw(store)[: HEADER_SIZE + 3 * SEALED])
    assert_rejected(store, key, len(data))
    # Even with the recorded size lied down to match, chunk 2 was not sealed as the last one.
    assert_rejected(store, key, 3 * CHUNK)


def test_truncation_inside_a_chunk_is_detected(store: MemoryBlobStore) -> None:
    data, key = os.urandom(3 * CHUNK), new_data_key()
    put(store, data, key)
    for cut in (len(raw(store)) - 1, HEADER_SIZE + SEALED + 10, HEADER_SIZE + 3, HEADER_SIZE, 5, 0):
        put(store, data, key)
        replace_raw(store, raw(store)[:cut])
        assert_rejected(store, key, len(data))


def test_appended_chunk_is_detected(store: MemoryBlobStore) -> None:
    data, key = os.urandom(2 * CHUNK), new_data_key()
    put(store, data, key)
    blob = raw(store)
    replace_raw(store, blob + blob[HEADER_SIZE : HEADER_SIZE + SEALED])
    assert_rejected(store, key, len(data))
    assert_rejected(store, key, 3 * CHUNK)  # the size lied up to match


def test_chunk_from_another_blob_is_detected(store: MemoryBlobStore) -> None:
    key = new_data_key()
    put(store, os.urandom(2 * CHUNK), key)
    other = raw(store)
    put(store, os.urandom(2 * CHUNK), key)  # same data key, new nonce prefix
    blob = raw(store)
    replace_raw(store, blob[: HEADER_SIZE + SEALED] + other[HEADER_SIZE + SEALED :])
    assert_rejected(store, key, 2 * CHUNK)


def test_wrong_key_is_detected(store: MemoryBlobStore) -> None:
    put(store, b"secret" * 30, new_data_key())
    assert_rejected(store, new_data_key(), 180)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (slice(0, 4), b"STCX", "bad magic"),
        (slice(4, 5), b"\x02", "version 2"),
        (slice(5, 8), b"\x00\x01\x00", "reserved"),
        (slice(8, 12), struct.pack(">I", 0), "chunk size 0"),
        (slice(8, 12), struct.pack(">I", 1 << 30), "chunk size"),
        (slice(8, 12), struct.pack(">I", 2 * CHUNK), "expected for this file size"),
    ],
)
def test_bad_headers_are_refused_on_the_call(
    store: MemoryBlobStore, field: slice, value: bytes, message: str
) -> None:
    data, key = os.urandom(3 * CHUNK), new_data_key()
    put(store, data, key)
    blob = bytearray(raw(store))
    blob[field] = value
    replace_raw(store, bytes(blob))
    with pytest.raises(IntegrityError, match=message):
        decrypt_range(store, KEY, key, len(data))


def test_no_plaintext_in_the_blob() -> None:
    marker = b"PLAINTEXT-MARKER"
    data = marker * 1000 + bytes(5000)
    blob = encrypt_bytes(data, new_data_key(), CHUNK)
    assert marker not in blob
    assert marker[:8] not in blob
    assert bytes(64) not in blob
    assert len(blob) == ciphertext_size(len(data), CHUNK)


# -- the writer ----------------------------------------------------------------------------


class Collect:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.parts.append(bytes(data))


def test_header_layout() -> None:
    sink = Collect()
    EncryptingWriter(sink, new_data_key(), CHUNK)
    [header] = sink.parts
    assert header[:4] == b"STCH"
    assert header[4:8] == b"\x01\x00\x00\x00"
    assert header[8:12] == CHUNK.to_bytes(4, "big")
    prefixes = {encrypt_bytes(b"", new_data_key())[12:16] for _ in range(20)}
    assert len(prefixes) > 1  # random per blob


def test_chunks_reach_the_sink_only_when_known_not_last() -> None:
    sink = Collect()
    cipher = EncryptingWriter(sink, new_data_key(), CHUNK)
    cipher.write(bytes(CHUNK))
    assert len(sink.parts) == 1  # a full chunk is held: it could be the last one
    cipher.write(b"x")
    assert [len(part) for part in sink.parts] == [HEADER_SIZE, SEALED]
    cipher.write(bytes(3 * CHUNK))
    assert [len(part) for part in sink.parts[2:]] == [SEALED] * 3  # one byte held back
    cipher.close()
    assert [len(part) for part in sink.parts[5:]] == [1 + TAG_SIZE]
    assert cipher.plaintext_size == 4 * CHUNK + 1


def test_close_is_final() -> None:
    sink = Collect()
    cipher = EncryptingWriter(sink, new_data_key(), CHUNK)
    cipher.write(b"abc")
    cipher.close()
    cipher.close()
    assert len(sink.parts) == 2
    with pytest.raises(ValueError, match="closed"):
        cipher.write(b"more")


def test_a_failed_sink_voids_the_writer() -> None:
    class Full:
        def __init__(self) -> None:
            self.calls = 0

        def write(self, data: bytes | bytearray | memoryview) -> None:
            self.calls += 1
            if self.calls > 2:
                raise OSError(28, "No space left on device")

    cipher = EncryptingWriter(Full(), new_data_key(), CHUNK)
    cipher.write(bytes(2 * CHUNK))
    with pytest.raises(OSError, match="No space"):
        cipher.write(bytes(CHUNK))
    with pytest.raises(ValueError, match="closed"):
        cipher.write(b"x")


def test_ciphertext_size() -> None:
    assert ciphertext_size(0) == HEADER_SIZE + TAG_SIZE
    assert ciphertext_size(1) == HEADER_SIZE + 1 + TAG_SIZE
    assert ciphertext_size(DEFAULT_CHUNK_SIZE) == HEADER_SIZE + DEFAULT_CHUNK_SIZE + TAG_SIZE
    assert (
        ciphertext_size(DEFAULT_CHUNK_SIZE + 1)
        == HEADER_SIZE + DEFAULT_CHUNK_SIZE + 1 + 2 * TAG_SIZE
    )
    assert ciphertext_size(10, 3) == HEADER_SIZE + 10 + 4 * TAG_SIZE
    with pytest.raises(ValueError, match="negative"):
        ciphertext_size(-1)


# -- the documented format -----------------------------------------------------------------


def decode_as_documented(blob: bytes, data_key: bytes, plaintext_size: int) -> Iterator[bytes]:
    """An independent decoder written from docs/storage-format.md alone."""
    header = blob[:16]
    magic, version, reserved, chunk_size, prefix = struct.unpack(">4sB3sI4s", header)
    assert (magic, version, reserved) == (b"STCH", 1, b"\x00\x00\x00")
    count = max(1, -(-plaintext_size // chunk_size))
    assert len(blob) == 16 + plaintext_size + 16 * count
    aead, position = AESGCM(data_key), 16
    for index in range(count):
        last = index == count - 1
        length = (plaintext_size - index * chunk_size if last else chunk_size) + 16
        nonce = prefix + index.to_bytes(7, "big") + (b"\x01" if last else b"\x00")
        yield aead.decrypt(nonce, blob[position : position + length], header)
        position += length


@pytest.mark.parametrize("size", SIZES)
def test_the_format_is_as_documented(size: int) -> None:
    data, key = os.urandom(size), new_data_key()
    blob = encrypt_bytes(data, key, CHUNK)
    assert b"".join(decode_as_documented(blob, key, size)) == data


VECTOR_KEY = bytes(range(32))
VECTOR_HEADER = "535443480100000000000004a1b2c3d4"
VECTORS = {
    b"": VECTOR_HEADER + "5037b7c318cc71ff00b796d79b695474",
    b"hell": VECTOR_HEADER + "374a2d06f968b9588b3f30a58ad834c950d3e87e",
    b"hello world": VECTOR_HEADER
    + "ea6659845073a1147ca13ce04590d94eb3a64ab6"
    + "fec26506deb7bbdfcc9829a0807116ec1feb7424"
    + "d7c91f3e5b3af899e3210f33074feb338d0ad7",
}


@pytest.mark.parametrize(("plaintext", "blob"), VECTORS.items())
def test_documented_test_vectors(
    store: MemoryBlobStore, monkeypatch: pytest.MonkeyPatch, plaintext: bytes, blob: str
) -> None:
    replace_raw(store, bytes.fromhex(blob))
    assert read(store, VECTOR_KEY, len(plaintext)) == plaintext
    monkeypatch.setattr(os, "urandom", lambda size: bytes.fromhex("a1b2c3d4")[:size])
    assert encrypt_bytes(plaintext, VECTOR_KEY, 4).hex() == blob


@pytest.mark.parametrize("size", [0, 1, 100, 1 << 20])
def test_decrypt_whole_matches_decrypt_range(size: int) -> None:
    from satchel.crypto.atrest import decrypt_whole

    data, key = os.urandom(size), new_data_key()
    blob = encrypt_bytes(data, key)
    assert decrypt_whole(blob, key, size) == data
    with pytest.raises(IntegrityError):
        decrypt_whole(blob[:-1], key, size)
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(IntegrityError):
        decrypt_whole(bytes(tampered), key, size)
