"""Satchel's modern end-to-end encryption format, SE2E version 1 (docs/e2e-format.md).

The client encrypts before upload and decrypts after download; the server only ever holds the
encrypted blob. The format uses AES-256-GCM, PBKDF2-SHA256 and HKDF-SHA256 and nothing else,
so a browser reads and writes the same bytes with WebCrypto alone.

Blob: a 68-byte fixed header (magic ``SE2E``, version, mode, chunk size, PBKDF2 iterations,
salt, key check, sealed metadata length), the sealed metadata (file name, type and size as
JSON), then the content chunks. Each chunk is sealed under a content subkey with the chunk
index and a last-chunk flag in its nonce and the whole header as associated data.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import struct
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

BytesLike = bytes | bytearray | memoryview

MAGIC = b"SE2E"
VERSION = 1
KEY_SIZE = 32
SALT_SIZE = 16
TAG_SIZE = 16
FIXED_HEADER_SIZE = 68
MIN_CHUNK_SIZE = 1 << 10
MAX_CHUNK_SIZE = 1 << 26
DEFAULT_CHUNK_SIZE = MAX_CHUNK_SIZE
PBKDF2_ITERATIONS = 600_000
MIN_PBKDF2_ITERATIONS = 100_000
# A forged header must not make a reader spin for minutes before it can say "wrong password".
MAX_PBKDF2_ITERATIONS = 10_000_000
# The metadata is padded with spaces to a multiple of this, so its length hides the name's.
METADATA_BLOCK = 128
MAX_METADATA_SIZE = 1 << 16
MAX_CHUNKS = 1 << 32
MAX_SIZE = (1 << 53) - 1  # the largest integer a JavaScript number holds exactly

_FIXED = struct.Struct(">4sBBHII16s32sI")
_METADATA_NONCE = bytes(12)
_INFO = b"satchel-e2e v1 "
_NOTHING = memoryview(b"")
_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}")


class Mode(IntEnum):
    KEY = 1
    PASSWORD = 2


class E2EError(Exception):
    """An encrypted file or link that cannot be read; ``code`` names the kind of failure."""

    code = "e2e_error"
    message = "cannot decrypt the file"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)


class BadLink(E2EError):
    code = "bad_link"
    message = "the link's key is not valid"


class BadHeader(E2EError):
    code = "bad_header"
    message = "not a Satchel encrypted file"


class UnsupportedVersion(BadHeader):
    code = "unsupported_version"
    message = "this encrypted file needs a newer version of Satchel"


class WeakKdf(BadHeader):
    code = "weak_kdf"
    message = f"the password key derivation uses fewer than {MIN_PBKDF2_ITERATIONS} iterations"


class SecretRequired(E2EError):
    code = "secret_required"
    message = "this file needs a key or a password"


class WrongKey(E2EError):
    code = "wrong_key"
    message = "wrong key or password"


class Tampered(E2EError):
    code = "tampered"
    message = "the file was altered"


class Truncated(Tampered):
    code = "truncated"
    message = "the file is truncated"


class TrailingData(Tampered):
    code = "trailing_data"
    message = "the file has extra data after its last chunk"


@dataclass(frozen=True)
class Metadata:
    name: str
    content_type: str
    size: int


# --- keys and links ---------------------------------------------------------------------------


def new_key() -> bytes:
    return os.urandom(KEY_SIZE)


def key_to_fragment(key: bytes) -> str:
    _check_key(key)
    return "k=" + base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def share_link(file_url: str, key: bytes | None) -> str:
    """``file_url#k=…`` for a key-mode file; ``file_url#p`` (ask for the password) without a
    key."""
    return f"{file_url}#{key_to_fragment(key) if key is not None else 'p'}"


def parse_link(url: str) -> tuple[str, bytes | None]:
    """Splits a share link into the URL to fetch (no fragment) and the key, None when the link
    carries no key (password mode ``#p``, or no fragment at all)."""
    base, _, fragment = url.partition("#")
    keys = [value for name, _, value in _fragment_items(fragment) if name == "k"]
    if not keys:
        return base, None
    if len(keys) > 1:
        raise BadLink("the link has more than one key")
    return base, _decode_key(keys[0])


def _fragment_items(fragment: str) -> Iterator[tuple[str, str, str]]:
    return (item.partition("=") for item in fragment.split("&") if item)


def _decode_key(text: str) -> bytes:
    if not _KEY_TEXT.fullmatch(text):
        raise BadLink("the link's key must be 43 characters of unpadded base64url")
    key = base64.urlsafe_b64decode(text + "=")  # cannot fail once the pattern matched
    if key_to_fragment(key) != "k=" + text:
        raise BadLink("the link's key is not canonical base64url")
    return key


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError(f"a file key is {KEY_SIZE} bytes")


def _password_key(password: str, salt: bytes, iterations: int) -> bytes:
    secret = unicodedata.normalize("NFC", password).encode("utf-8")
    return PBKDF2HMAC(hashes.SHA256(), KEY_SIZE, salt, iterations).derive(secret)


@dataclass(frozen=True)
class _Subkeys:
    check: bytes
    content: AESGCM
    metadata: AESGCM


def _hkdf(file_key: bytes, salt: bytes, label: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, _INFO + label).derive(file_key)


def _subkeys(file_key: bytes, salt: bytes) -> _Subkeys:
    return _Subkeys(
        check=_hkdf(file_key, salt, b"key check"),
        content=AESGCM(_hkdf(file_key, salt, b"content")),
        metadata=AESGCM(_hkdf(file_key, salt, b"metadata")),
    )


def _nonce(index: int, last: bool) -> bytes:
    return bytes(7) + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


# --- sizes ------------------------------------------------------------------------------------


def _chunk_count(size: int, chunk_size: int) -> int:
    return max(1, -(-size // chunk_size))  # an empty file is one empty chunk


def _plain_length(index: int, size: int, chunk_size: int) -> int:
    return min(chunk_size, size - index * chunk_size)


def metadata_size(name: str, content_type: str, size: int) -> int:
    """Length of the sealed metadata block for these fields."""
    return len(_metadata_plaintext(name, content_type, size)) + TAG_SIZE


def encrypted_size(plain_size: int, chunk_size: int, meta_len: int) -> int:
    """Blob length for a plaintext of ``plain_size`` bytes; ``meta_len`` is the sealed
    metadata length (``metadata_size``)."""
    if plain_size < 0:
        raise ValueError("plain_size must not be negative")
    _check_chunk_size(chunk_size)
    chunks = _chunk_count(plain_size, chunk_size)
    return FIXED_HEADER_SIZE + meta_len + plain_size + chunks * TAG_SIZE


def _check_chunk_size(chunk_size: int) -> None:
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size must be {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes")


def _metadata_plaintext(name: str, content_type: str, size: int) -> bytes:
    fields = {"name": name, "type": content_type, "size": size}
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    padded = -(-len(text) // METADATA_BLOCK) * METADATA_BLOCK
    return text.ljust(padded, b" ")


# --- writing ----------------------------------------------------------------------------------


class Encryptor:
    """Encrypts one file of a size known in advance, one chunk in memory at a time.

    Give ``key`` (32 random bytes, for a ``#k=`` link) or ``password``. ``rng`` makes the
    random salt; only the test vectors replace it.
    """

    def __init__(
        self,
        *,
        key: bytes | None = None,
        password: str | None = None,
        name: str,
        content_type: str,
        size: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        iterations: int = PBKDF2_ITERATIONS,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        _check_chunk_size(chunk_size)
        if not 0 <= size <= MAX_SIZE or _chunk_count(size, chunk_size) > MAX_CHUNKS:
            raise ValueError("file size out of range for this chunk size")
        salt = rng(SALT_SIZE)
        if len(salt) != SALT_SIZE:
            raise ValueError(f"rng must return {SALT_SIZE} bytes")
        mode, file_key, iterations = _writer_key(key, password, salt, iterations)
        keys = _subkeys(file_key, salt)
        metadata = _metadata_plaintext(name, content_type, size)
        meta_len = len(metadata) + TAG_SIZE
        if meta_len > MAX_METADATA_SIZE:
            raise ValueError("file name or content type too long")
        fixed = _FIXED.pack(
            MAGIC, VERSION, mode, 0, chunk_size, iterations, salt, keys.check, meta_len
        )
        self._header = fixed + keys.metadata.encrypt(_METADATA_NONCE, metadata, fixed)
        self._content = keys.content
        self._size = size
        self._chunk_size = chunk_size
        self._started = False
        self._held = bytearray()
        self._filled = self._index = 0

    def header(self) -> bytes:
        return self._header

    @property
    def encrypted_size(self) -> int:
        chunks = _chunk_count(self._size, self._chunk_size)
        return len(self._header) + self._size + chunks * TAG_SIZE

    def stream(self, pieces: Iterable[BytesLike]) -> Iterator[bytes]:
        """The whole blob: the header, then the sealed chunks."""
        chunks = self.encrypt_chunks(pieces)
        yield self._header
        yield from chunks

    def stream_file(self, source: BinaryIO) -> Iterator[bytes]:
        return self.stream(iter(lambda: source.read(self._chunk_size), b""))

    def encrypt_chunks(self, pieces: Iterable[BytesLike]) -> Iterator[bytes]:
        """The sealed chunks (not the header) of the plaintext given in pieces of any size.

        Raises ValueError if the pieces add up to more or less than the declared size.
        """
        if self._started:
            raise ValueError("an Encryptor encrypts its file once")
        self._started = True
        return self._seal_pieces(pieces)

    def _seal_pieces(self, pieces: Iterable[BytesLike]) -> Iterator[bytes]:
        seen = 0
        for piece in pieces:
            view = memoryview(piece).cast("B")
            seen += len(view)
            if seen > self._size:
                raise ValueError(f"the plaintext is longer than the declared {self._size} bytes")
            yield from self._absorb(view)
            del piece, view  # the caller's piece can go before the next one arrives
        if seen != self._size:
            raise ValueError(f"the plaintext is {seen} bytes, {self._size} were declared")
        if self._size == 0:
            yield self._seal(0, memoryview(b""))

    def _absorb(self, view: memoryview) -> Iterator[bytes]:
        while view:
            need = _plain_length(self._index, self._size, self._chunk_size)
            if self._filled == 0 and len(view) >= need:  # sealed straight from the caller's piece
                chunk, view = view[:need], view[need:]
            else:
                if not self._held:  # one buffer for every chunk, only if pieces are small
                    self._held = bytearray(min(self._size, self._chunk_size))
                take = min(need - self._filled, len(view))
                self._held[self._filled : self._filled + take] = view[:take]
                self._filled += take
                view = view[take:]
                if self._filled < need:
                    return
                chunk, self._filled = memoryview(self._held)[:need], 0
            self._index += 1
            yield self._seal(self._index - 1, chunk)

    def _seal(self, index: int, chunk: memoryview) -> bytes:
        last = index == _chunk_count(self._size, self._chunk_size) - 1
        return self._content.encrypt(_nonce(index, last), chunk, self._header)


def _writer_key(
    key: bytes | None, password: str | None, salt: bytes, iterations: int
) -> tuple[Mode, bytes, int]:
    if key is not None:
        if password is not None:
            raise ValueError("give either a key or a password, not both")
        _check_key(key)
        return Mode.KEY, key, 0
    if password is None:
        raise ValueError("give either a key or a password")
    if not password:
        raise ValueError("the password must not be empty")
    if not MIN_PBKDF2_ITERATIONS <= iterations <= MAX_PBKDF2_ITERATIONS:
        raise ValueError(
            f"PBKDF2 iterations must be {MIN_PBKDF2_ITERATIONS} to {MAX_PBKDF2_ITERATIONS}"
        )
    return Mode.PASSWORD, _password_key(password, salt, iterations), iterations


def encrypt_bytes(
    data: bytes,
    *,
    key: bytes | None = None,
    password: str | None = None,
    name: str,
    content_type: str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    iterations: int = PBKDF2_ITERATIONS,
    rng: Callable[[int], bytes] = os.urandom,
) -> bytes:
    encryptor = Encryptor(
        key=key,
        password=password,
        name=name,
        content_type=content_type,
        size=len(data),
        chunk_size=chunk_size,
        iterations=iterations,
        rng=rng,
    )
    return b"".join(encryptor.stream([data]))


# --- reading ----------------------------------------------------------------------------------


class _Reader:
    """Hands out exact byte counts from pieces of any size, copying only what straddles two
    pieces (into one buffer, reused)."""

    def __init__(self, pieces: Iterable[BytesLike]) -> None:
        self._pieces = iter(pieces)
        self._rest = _NOTHING  # the unread end of the current piece
        self._buffer = bytearray()

    def read(self, size: int) -> memoryview:
        """``size`` bytes, fewer only when the input ends first; valid until the next read."""
        if not self._rest:
            self._advance()
        if len(self._rest) >= size:
            data, self._rest = self._rest[:size], self._rest[size:]
            return data
        if len(self._buffer) < size:
            self._buffer = bytearray(size)  # a new one: the old may still be looked at
        filled = 0
        while self._rest and filled < size:
            take = min(size - filled, len(self._rest))
            self._buffer[filled : filled + take] = self._rest[:take]
            filled, self._rest = filled + take, self._rest[take:]
            if not self._rest:
                self._advance()
        return memoryview(self._buffer)[:filled]

    def at_end(self) -> bool:
        if not self._rest:
            self._advance()
        return not self._rest

    def _advance(self) -> None:
        self._rest = _NOTHING  # even an empty view would keep the old piece alive meanwhile
        for piece in self._pieces:
            if piece:
                # A copy of a mutable piece, so that the caller may reuse its buffer.
                self._rest = memoryview(piece if isinstance(piece, bytes) else bytes(piece))
                return


@dataclass(frozen=True)
class _Header:
    raw: bytes
    mode: Mode
    chunk_size: int
    iterations: int
    salt: bytes
    key_check: bytes

    @property
    def fixed(self) -> bytes:
        return self.raw[:FIXED_HEADER_SIZE]

    @property
    def sealed_metadata(self) -> bytes:
        return self.raw[FIXED_HEADER_SIZE:]


def _read_header(reader: _Reader) -> _Header:
    fixed = bytes(reader.read(FIXED_HEADER_SIZE))
    if len(fixed) < len(MAGIC) or not fixed.startswith(MAGIC):
        raise BadHeader()
    if len(fixed) > 4 and fixed[4] != VERSION:
        raise UnsupportedVersion(f"SE2E version {fixed[4]} is not supported (only {VERSION})")
    if len(fixed) < FIXED_HEADER_SIZE:
        raise Truncated("the file is truncated (inside its header)")
    _, _, mode, reserved, chunk_size, iterations, salt, check, meta_len = _FIXED.unpack(fixed)
    _check_fields(mode, reserved, chunk_size, iterations, meta_len)
    sealed_metadata = bytes(reader.read(meta_len))
    if len(sealed_metadata) < meta_len:
        raise Truncated("the file is truncated (inside its header)")
    return _Header(fixed + sealed_metadata, Mode(mode), chunk_size, iterations, salt, check)


def _check_fields(mode: int, reserved: int, chunk_size: int, iterations: int, meta: int) -> None:
    if mode not in (Mode.KEY, Mode.PASSWORD):
        raise BadHeader(f"unknown mode {mode}")
    if reserved:
        raise BadHeader("the reserved header bytes are not zero")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise BadHeader(f"chunk size {chunk_size} out of range")
    if mode == Mode.KEY and iterations:
        raise BadHeader("a key-mode file must have 0 iterations")
    if mode == Mode.PASSWORD and iterations < MIN_PBKDF2_ITERATIONS:
        raise WeakKdf(f"PBKDF2 with {iterations} iterations refused (at least 100000)")
    if iterations > MAX_PBKDF2_ITERATIONS:
        raise BadHeader(f"PBKDF2 with {iterations} iterations refused (at most 10000000)")
    if not TAG_SIZE < meta <= MAX_METADATA_SIZE:
        raise BadHeader(f"metadata length {meta} out of range")


class Decryptor:
    """Reads an encrypted file from pieces of any size, one chunk in memory at a time.

    Building it reads and checks the header only, so a caller can see whether to ask for a
    password; ``unlock`` can be retried after WrongKey. The plaintext from ``chunks`` is
    authenticated chunk by chunk, but only an iteration that ends without an error vouches
    for the whole file (truncation and trailing data show at the end).
    """

    def __init__(self, pieces: Iterable[BytesLike]) -> None:
        self._reader = _Reader(pieces)
        self._header = _read_header(self._reader)
        self._content: AESGCM | None = None
        self._metadata: Metadata | None = None
        self._started = False

    @property
    def mode(self) -> Mode:
        return self._header.mode

    @property
    def needs_password(self) -> bool:
        return self._header.mode == Mode.PASSWORD

    @property
    def chunk_size(self) -> int:
        return self._header.chunk_size

    @property
    def iterations(self) -> int:
        return self._header.iterations

    def unlock(self, *, key: bytes | None = None, password: str | None = None) -> Metadata:
        """Checks the key or password and decrypts the metadata. A key also opens a
        password-mode file (it is then the PBKDF2 output)."""
        header = self._header
        keys = _subkeys(self._file_key(key, password), header.salt)
        if not hmac.compare_digest(keys.check, header.key_check):
            raise WrongKey()
        try:
            plain = keys.metadata.decrypt(_METADATA_NONCE, header.sealed_metadata, header.fixed)
        except InvalidTag:
            raise Tampered("the file's header was altered") from None
        self._metadata = _parse_metadata(plain, header.chunk_size)
        self._content = keys.content
        return self._metadata

    def _file_key(self, key: bytes | None, password: str | None) -> bytes:
        if key is not None:
            _check_key(key)
            return key
        if self._header.mode == Mode.KEY:
            raise SecretRequired("this file needs the key from its link (#k=…)")
        if not password:
            raise SecretRequired("this file needs a password")
        return _password_key(password, self._header.salt, self._header.iterations)

    def chunks(self) -> Iterator[bytes]:
        """The plaintext, a chunk at a time (an empty file yields nothing)."""
        if self._content is None or self._metadata is None:
            raise ValueError("unlock() the Decryptor first")
        if self._started:
            raise ValueError("a Decryptor decrypts its file once")
        self._started = True
        return self._open_chunks(self._content, self._metadata.size)

    def _open_chunks(self, content: AESGCM, size: int) -> Iterator[bytes]:
        chunk_size, header = self._header.chunk_size, self._header.raw
        count = _chunk_count(size, chunk_size)
        for index in range(count):
            want = _plain_length(index, size, chunk_size) + TAG_SIZE
            sealed = self._reader.read(want)
            if len(sealed) < want:
                raise Truncated()
            plain = _open_chunk(content, index, index == count - 1, sealed, header)
            del sealed
            if plain:
                yield plain
            del plain  # not kept while the next chunk is read and decrypted
        if not self._reader.at_end():
            raise TrailingData()


def _open_chunk(content: AESGCM, index: int, last: bool, sealed: memoryview, aad: bytes) -> bytes:
    try:
        return content.decrypt(_nonce(index, last), sealed, aad)
    except InvalidTag:
        raise Tampered(
            f"chunk {index} failed authentication: the file was altered or its chunks reordered"
        ) from None


def _parse_metadata(plain: bytes, chunk_size: int) -> Metadata:
    try:
        fields = json.loads(plain.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is a ValueError too
        raise BadHeader("the file's metadata is not valid JSON") from None
    if not isinstance(fields, dict):
        raise BadHeader("the file's metadata is not a JSON object")
    name, content_type, size = fields.get("name"), fields.get("type"), fields.get("size")
    if not (isinstance(name, str) and isinstance(content_type, str)):
        raise BadHeader("the file's metadata lacks a name or type")
    if type(size) is not int or not 0 <= size <= MAX_SIZE:
        raise BadHeader("the file's metadata lacks a valid size")
    if _chunk_count(size, chunk_size) > MAX_CHUNKS:
        raise BadHeader("the file has too many chunks")
    return Metadata(name, content_type, size)


def decrypt_stream(
    pieces: Iterable[BytesLike], *, key: bytes | None = None, password: str | None = None
) -> tuple[Metadata, Iterator[bytes]]:
    """Metadata and plaintext chunks of an encrypted file; see Decryptor."""
    decryptor = Decryptor(pieces)
    metadata = decryptor.unlock(key=key, password=password)
    return metadata, decryptor.chunks()


def decrypt_bytes(
    blob: bytes, *, key: bytes | None = None, password: str | None = None
) -> tuple[Metadata, bytes]:
    metadata, chunks = decrypt_stream([blob], key=key, password=password)
    return metadata, b"".join(chunks)
