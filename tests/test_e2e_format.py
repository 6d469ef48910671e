"""SE2E v1, the modern end-to-end format (docs/e2e-format.md): vectors, round trips, errors."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import struct
import tracemalloc
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from satchel.crypto import e2e

VECTORS = Path(__file__).parent / "vectors" / "e2e"
POSITIVE = sorted(p.name for p in VECTORS.glob("*.json") if p.name != "negative.json")
NEGATIVE = json.loads((VECTORS / "negative.json").read_text())["vectors"]
KEY = bytes(range(32))
KIB = 1024


def load(name: str) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return vector


def secret(vector: dict[str, Any]) -> dict[str, Any]:
    if "key" in vector:
        return {"key": bytes.fromhex(vector["key"])}
    return {"password": vector["password"]}


def pieces_of(data: bytes, sizes: Iterable[int]) -> Iterator[bytes]:
    """``data`` cut into pieces of the given sizes, cycled; empty pieces included."""
    offset = 0
    for size in itertools.cycle(sizes):
        if offset >= len(data):
            return
        yield data[offset : offset + size]
        offset += size


def decrypt_pieces(pieces: Iterable[bytes], **kwargs: Any) -> bytes:
    _, chunks = e2e.decrypt_stream(pieces, **kwargs)
    return b"".join(chunks)


def encrypt(data: bytes, chunk_size: int = KIB, **kwargs: Any) -> bytes:
    kwargs.setdefault("key", KEY)
    return e2e.encrypt_bytes(
        data, name="f.bin", content_type="application/octet-stream", chunk_size=chunk_size, **kwargs
    )


# --- a reference reader written from the document alone, to pin the byte layout -------------


def ref_subkey(file_key: bytes, salt: bytes, label: str) -> bytes:
    info = b"satchel-e2e v1 " + label.encode()
    return HKDF(hashes.SHA256(), 32, salt, info).derive(file_key)


def ref_nonce(index: int, last: bool) -> bytes:
    return bytes(7) + struct.pack(">I", index) + bytes([last])


def ref_decrypt(blob: bytes, file_key: bytes) -> tuple[dict[str, Any], bytes]:
    magic, version, _, reserved, chunk_size, _iterations, salt, check, meta_len = struct.unpack(
        ">4sBBHII16s32sI", blob[:68]
    )
    assert (magic, version, reserved) == (b"SE2E", 1, 0)
    assert check == ref_subkey(file_key, salt, "key check")
    header = blob[: 68 + meta_len]
    meta_key = AESGCM(ref_subkey(file_key, salt, "metadata"))
    metadata = json.loads(meta_key.decrypt(bytes(12), blob[68 : 68 + meta_len], blob[:68]))
    size = metadata["size"]
    count = max(1, -(-size // chunk_size))
    content = AESGCM(ref_subkey(file_key, salt, "content"))
    plain, offset = b"", len(header)
    for index in range(count):
        sealed = blob[offset : offset + min(chunk_size, size - index * chunk_size) + 16]
        plain += content.decrypt(ref_nonce(index, index == count - 1), sealed, header)
        offset += len(sealed)
    assert offset == len(blob)
    return metadata, plain


def ref_blob(metadata: bytes, chunks: list[tuple[bytes, bool]], salt: bytes = bytes(16)) -> bytes:
    """A key-mode blob (key KEY, chunk size 1 KiB) with any metadata bytes and chunk flags."""
    fixed = struct.pack(
        ">4sBBHII16s32sI", b"SE2E", 1, 1, 0, KIB, 0, salt,
        ref_subkey(KEY, salt, "key check"), len(metadata) + 16,
    )  # fmt: skip
    header = fixed + AESGCM(ref_subkey(KEY, salt, "metadata")).encrypt(bytes(12), metadata, fixed)
    content = AESGCM(ref_subkey(KEY, salt, "content"))
    sealed = (content.encrypt(ref_nonce(i, last), p, header) for i, (p, last) in enumerate(chunks))
    return header + b"".join(sealed)


# --- test vectors -----------------------------------------------------------------------------


def test_vectors_cover_the_required_cases() -> None:
    modes = {load(name)["mode"] for name in POSITIVE}
    assert modes == {"key", "password"}
    assert any(load(name)["size"] == 0 for name in POSITIVE)
    assert {v["error"] for v in NEGATIVE} >= {
        "truncated", "tampered", "trailing_data", "wrong_key", "bad_header",
        "unsupported_version", "weak_kdf",
    }  # fmt: skip
    assert all(p.stat().st_size < 300 * KIB for p in VECTORS.iterdir())


@pytest.mark.parametrize("name", POSITIVE)
def test_vector_decrypts(name: str) -> None:
    vector = load(name)
    metadata, plain = e2e.decrypt_bytes(bytes.fromhex(vector["ciphertext"]), **secret(vector))
    assert plain.hex() == vector["plaintext"]
    assert metadata == e2e.Metadata(vector["name"], vector["content_type"], vector["size"])


@pytest.mark.parametrize("name", POSITIVE)
def test_vector_reencrypts_to_the_same_bytes(name: str) -> None:
    vector = load(name)
    salt = bytes.fromhex(vector["salt"])
    encryptor = e2e.Encryptor(
        **secret(vector),
        name=vector["name"],
        content_type=vector["content_type"],
        size=vector["size"],
        chunk_size=vector["chunk_size"],
        iterations=vector["iterations"] or e2e.PBKDF2_ITERATIONS,
        rng=lambda n: salt,
    )
    assert encryptor.header().hex() == vector["header"]
    blob = b"".join(encryptor.stream(pieces_of(bytes.fromhex(vector["plaintext"]), [333])))
    assert blob.hex() == vector["ciphertext"]
    assert encryptor.encrypted_size == len(blob)


@pytest.mark.parametrize("name", POSITIVE)
def test_vector_matches_the_documented_layout(name: str) -> None:
    vector = load(name)
    file_key = bytes.fromhex(vector["derived"]["file_key"])
    salt = bytes.fromhex(vector["salt"])
    labels = {"key check": "key_check", "content": "content_key", "metadata": "metadata_key"}
    for label, field in labels.items():
        assert ref_subkey(file_key, salt, label).hex() == vector["derived"][field]
    metadata, plain = ref_decrypt(bytes.fromhex(vector["ciphertext"]), file_key)
    assert plain.hex() == vector["plaintext"]
    assert metadata == {
        "name": vector["name"], "type": vector["content_type"], "size": vector["size"]
    }  # fmt: skip
    assert len(vector["metadata_plaintext"].encode()) % 128 == 0
    if "key" in vector:
        assert e2e.key_to_fragment(bytes.fromhex(vector["key"])) == vector["link_fragment"]


@pytest.mark.parametrize("vector", NEGATIVE, ids=[v["name"] for v in NEGATIVE])
def test_negative_vector_fails_with_its_error(vector: dict[str, Any]) -> None:
    blob = bytes.fromhex(vector["ciphertext"])
    with pytest.raises(e2e.E2EError) as whole:
        e2e.decrypt_bytes(blob, **secret(vector))
    assert whole.value.code == vector["error"]
    # Fed in small odd pieces, the stream fails the same way.
    with pytest.raises(e2e.E2EError) as streamed:
        decrypt_pieces(pieces_of(blob, [1, 0, 97]), **secret(vector))
    assert streamed.value.code == vector["error"]


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, KIB - 1, KIB, KIB + 1, 5 * KIB + 3])
def test_round_trip_with_odd_pieces(size: int) -> None:
    data = hashlib.shake_256(b"plain").digest(size) if size else b""
    encryptor = e2e.Encryptor(
        key=KEY, name="a.txt", content_type="text/plain", size=size, chunk_size=KIB
    )
    blob = b"".join(encryptor.stream(pieces_of(data, [1, 0, 7, 1000, 3001])))
    assert len(blob) == encryptor.encrypted_size
    assert len(blob) == e2e.encrypted_size(
        size, KIB, e2e.metadata_size("a.txt", "text/plain", size)
    )
    metadata, chunks = e2e.decrypt_stream(pieces_of(blob, [5, 1041, 0, 2]), key=KEY)
    assert metadata == e2e.Metadata("a.txt", "text/plain", size)
    plain = list(chunks)
    assert b"".join(plain) == data
    assert all(len(chunk) <= KIB for chunk in plain)


def test_stream_file_reads_a_file_object() -> None:
    data = b"x" * (3 * KIB + 5)
    encryptor = e2e.Encryptor(key=KEY, name="x", content_type="", size=len(data), chunk_size=KIB)
    blob = b"".join(encryptor.stream_file(io.BytesIO(data)))
    assert e2e.decrypt_bytes(blob, key=KEY)[1] == data


def test_non_ascii_name_and_type_survive() -> None:
    blob = e2e.encrypt_bytes(b"", key=KEY, name='é/"\n📄', content_type="text/x-ü")
    assert e2e.decrypt_bytes(blob, key=KEY)[0] == e2e.Metadata('é/"\n📄', "text/x-ü", 0)


def test_each_file_gets_its_own_salt() -> None:
    assert encrypt(b"same") != encrypt(b"same")


def test_chunk_size_need_not_be_a_power_of_two() -> None:
    data = bytes(range(256)) * 20
    assert e2e.decrypt_bytes(encrypt(data, chunk_size=1500), key=KEY)[1] == data


def test_chunk_plaintext_is_only_handed_out_after_it_verifies() -> None:
    blob = encrypt(b"a" * KIB + b"b" * KIB + b"c")
    _, chunks = e2e.decrypt_stream([blob[:-1]], key=KEY)
    assert next(chunks) == b"a" * KIB
    assert next(chunks) == b"b" * KIB
    with pytest.raises(e2e.Truncated, match="the file is truncated"):
        next(chunks)


# --- memory -----------------------------------------------------------------------------------


def test_memory_stays_bounded_by_a_few_chunks() -> None:
    chunk_size, piece = 64 * KIB, hashlib.shake_256(b"piece").digest(100_003)
    size = 64 * 1024 * KIB + 12_345
    pieces = (piece[: min(len(piece), size - offset)] for offset in range(0, size, len(piece)))
    encryptor = e2e.Encryptor(
        key=KEY, name="big.bin", content_type="", size=size, chunk_size=chunk_size
    )
    out = hashlib.sha256()
    expected = hashlib.sha256()

    def traced(source: Iterator[bytes]) -> Iterator[bytes]:
        for data in source:
            expected.update(data)
            yield data

    tracemalloc.start()
    try:
        metadata, chunks = e2e.decrypt_stream(encryptor.stream(traced(pieces)), key=KEY)
        for plain in chunks:
            out.update(plain)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert metadata.size == size
    assert out.digest() == expected.digest()
    assert peak < 6 * chunk_size, peak  # a few 64 KiB chunks and pieces, not the 64 MiB file


def test_decrypt_memory_stays_bounded_with_odd_pieces() -> None:
    chunk_size, size = 64 * KIB, 64 * 1024 * KIB + 1
    blob = encrypt(bytes(size), chunk_size=chunk_size)
    view = memoryview(blob)
    pieces = (view[offset : offset + 100_003] for offset in range(0, len(blob), 100_003))
    tracemalloc.start()
    try:
        metadata, chunks = e2e.decrypt_stream(pieces, key=KEY)
        total = sum(len(plain) for plain in chunks)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == metadata.size == size
    assert peak < 6 * chunk_size, peak


# --- links ------------------------------------------------------------------------------------


def test_key_round_trips_through_a_link() -> None:
    key = e2e.new_key()
    link = e2e.share_link("https://files.example/f/0b0e5c3e-8f5b-4b8f-9d1c-6b0d6f1b7c2a", key)
    assert link.split("#")[1] == e2e.key_to_fragment(key)
    assert len(e2e.key_to_fragment(key)) == 2 + 43
    assert e2e.parse_link(link) == (link.split("#")[0], key)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/f/u", ("https://h/f/u", None)),
        ("https://h/f/u#p", ("https://h/f/u", None)),
        ("https://h/f/u#", ("https://h/f/u", None)),
        ("https://h/f/u/name.bin?x=1#k=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
         ("https://h/f/u/name.bin?x=1", KEY)),
        ("https://h/f/u#p&k=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8&later=1",
         ("https://h/f/u", KEY)),
    ],
)  # fmt: skip
def test_parse_link(url: str, expected: tuple[str, bytes | None]) -> None:
    assert e2e.parse_link(url) == expected


@pytest.mark.parametrize(
    "fragment",
    [
        "k=",
        "k",
        "k=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",  # padded
        "k=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh",  # short
        "k=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9",  # not canonical
        "k=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd+h8",  # not the url alphabet
        "k=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8&k=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
    ],
)
def test_parse_link_refuses_a_bad_key(fragment: str) -> None:
    with pytest.raises(e2e.BadLink):
        e2e.parse_link("https://h/f/u#" + fragment)


def test_password_link_says_so() -> None:
    assert e2e.share_link("https://h/f/u", None) == "https://h/f/u#p"


# --- keys and passwords -----------------------------------------------------------------------


def test_wrong_password_and_retry() -> None:
    blob = encrypt(b"secret", key=None, password="right", iterations=e2e.MIN_PBKDF2_ITERATIONS)
    decryptor = e2e.Decryptor([blob])
    assert decryptor.needs_password
    assert decryptor.iterations == e2e.MIN_PBKDF2_ITERATIONS
    with pytest.raises(e2e.WrongKey, match="wrong key or password"):
        decryptor.unlock(password="wrong")
    assert decryptor.unlock(password="right").size == 6
    assert b"".join(decryptor.chunks()) == b"secret"


def test_password_is_normalised_to_nfc() -> None:
    nfc = "stäple"
    blob = encrypt(b"x", key=None, password=nfc, iterations=e2e.MIN_PBKDF2_ITERATIONS)
    assert e2e.decrypt_bytes(blob, password=unicodedata.normalize("NFD", nfc))[1] == b"x"


def test_password_file_opens_with_its_derived_key() -> None:
    vector = load("password.json")
    key = bytes.fromhex(vector["derived"]["file_key"])
    assert (
        e2e.decrypt_bytes(bytes.fromhex(vector["ciphertext"]), key=key)[1]
        == b"The server never sees this.\n"
    )


def test_missing_or_misplaced_secret() -> None:
    key_file = encrypt(b"x")
    password_file = encrypt(b"x", key=None, password="pw", iterations=e2e.MIN_PBKDF2_ITERATIONS)
    with pytest.raises(e2e.SecretRequired, match="key from its link"):
        e2e.decrypt_bytes(key_file)
    with pytest.raises(e2e.SecretRequired, match="key from its link"):
        e2e.decrypt_bytes(key_file, password="pw")
    with pytest.raises(e2e.SecretRequired, match="needs a password"):
        e2e.decrypt_bytes(password_file)
    with pytest.raises(e2e.WrongKey):
        e2e.decrypt_bytes(key_file, key=bytes(32))


def test_pbkdf2_iteration_floor_and_ceiling() -> None:
    with pytest.raises(ValueError, match="iterations"):
        encrypt(b"x", key=None, password="pw", iterations=e2e.MIN_PBKDF2_ITERATIONS - 1)
    blob = bytearray(encrypt(b"x", key=None, password="pw", iterations=e2e.MIN_PBKDF2_ITERATIONS))
    blob[12:16] = (e2e.MIN_PBKDF2_ITERATIONS - 1).to_bytes(4, "big")
    with pytest.raises(e2e.WeakKdf):
        e2e.Decryptor([bytes(blob)])
    blob[12:16] = (e2e.MAX_PBKDF2_ITERATIONS + 1).to_bytes(4, "big")
    with pytest.raises(e2e.BadHeader, match="at most"):
        e2e.Decryptor([bytes(blob)])


def test_the_default_is_600000_iterations_and_64_mib_chunks() -> None:
    encryptor = e2e.Encryptor(password="pw", name="n", content_type="", size=0)
    decryptor = e2e.Decryptor([encryptor.header()])
    assert (decryptor.iterations, decryptor.chunk_size) == (600_000, 64 * 1024 * KIB)


# --- malformed files and misuse ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "value", "error"),
    [
        (5, b"\x03", e2e.BadHeader),  # mode
        (6, b"\x00\x01", e2e.BadHeader),  # reserved
        (8, (KIB - 1).to_bytes(4, "big"), e2e.BadHeader),  # chunk size
        (8, (64 * 1024 * KIB + 1).to_bytes(4, "big"), e2e.BadHeader),
        (12, (1).to_bytes(4, "big"), e2e.BadHeader),  # iterations in key mode
        (64, (16).to_bytes(4, "big"), e2e.BadHeader),  # meta_len
        (64, (e2e.MAX_METADATA_SIZE + 1).to_bytes(4, "big"), e2e.BadHeader),
    ],
)
def test_header_fields_are_checked(offset: int, value: bytes, error: type[Exception]) -> None:
    blob = bytearray(encrypt(b"x"))
    blob[offset : offset + len(value)] = value
    with pytest.raises(error):
        e2e.Decryptor([bytes(blob)])


@pytest.mark.parametrize(
    "metadata",
    [
        b"[]",
        b"\xff\xfe",
        b'{"name":"a","type":"b"}',
        b'{"name":"a","type":"b","size":-1}',
        b'{"name":"a","type":"b","size":true}',
        b'{"name":"a","type":"b","size":1.5}',
        b'{"name":"a","type":"b","size":9007199254740992}',
        b'{"name":1,"type":"b","size":1}',
        b'{"type":"b","size":1}',
    ],
)
def test_authentic_but_malformed_metadata_is_refused(metadata: bytes) -> None:
    with pytest.raises(e2e.BadHeader):
        e2e.decrypt_bytes(ref_blob(metadata, [(b"x", True)]), key=KEY)


def test_unknown_metadata_fields_and_any_padding_are_accepted() -> None:
    metadata = b'{"size":1,"later":{"x":1},"type":"t","name":"n"}\n\t  '
    assert e2e.decrypt_bytes(ref_blob(metadata, [(b"x", True)]), key=KEY) == (
        e2e.Metadata("n", "t", 1),
        b"x",
    )


def test_empty_input_is_not_an_encrypted_file() -> None:
    with pytest.raises(e2e.BadHeader, match="not a Satchel encrypted file"):
        e2e.Decryptor([])
    with pytest.raises(e2e.Truncated):
        e2e.Decryptor([b"SE2E"])


def test_encryptor_refuses_misuse() -> None:
    def make(size: int = 3, **kwargs: Any) -> e2e.Encryptor:
        kwargs.setdefault("key", KEY)
        return e2e.Encryptor(name="n", content_type="", size=size, chunk_size=KIB, **kwargs)

    with pytest.raises(ValueError, match="longer"):
        list(make().encrypt_chunks([b"abcd"]))
    with pytest.raises(ValueError, match="declared"):
        list(make().encrypt_chunks([b"ab"]))
    encryptor = make()
    list(encryptor.encrypt_chunks([b"abc"]))
    with pytest.raises(ValueError, match="once"):
        encryptor.encrypt_chunks([b"abc"])
    with pytest.raises(ValueError, match="either"):
        make(password="pw")
    with pytest.raises(ValueError, match="either"):
        make(key=None)
    with pytest.raises(ValueError, match="32 bytes"):
        make(key=bytes(16))
    with pytest.raises(ValueError, match="empty"):
        make(key=None, password="")
    with pytest.raises(ValueError, match="chunk size"):
        e2e.Encryptor(key=KEY, name="n", content_type="", size=0, chunk_size=KIB - 1)
    with pytest.raises(ValueError, match="too long"):
        e2e.Encryptor(key=KEY, name="n" * e2e.MAX_METADATA_SIZE, content_type="", size=0)
    with pytest.raises(ValueError, match="size"):
        make(size=-1)


def test_decryptor_must_be_unlocked_first() -> None:
    decryptor = e2e.Decryptor([encrypt(b"x")])
    with pytest.raises(ValueError, match="unlock"):
        decryptor.chunks()
