"""What an upload sends: a file as it is, or the file encrypted in the modern E2E format.
Both can produce their bytes again from any offset, which is what resuming needs."""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import os
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path

from satchel.client.errors import UsageError
from satchel.crypto import e2e

READ_SIZE = 1 << 20


def content_type_of(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def skip(pieces: Iterable[bytes], count: int) -> Iterator[bytes]:
    """The pieces without their first ``count`` bytes."""
    for piece in pieces:
        if count >= len(piece):
            count -= len(piece)
            continue
        yield piece[count:] if count else piece
        count = 0


class FileSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._size = path.stat().st_size

    @property
    def size(self) -> int:
        return self._size

    def open_at(self, offset: int) -> Generator[bytes, None, None]:
        with self.path.open("rb") as handle:
            handle.seek(offset)
            while piece := handle.read(READ_SIZE):
                yield piece

    def fingerprint(self) -> str:
        return "plain"

    def resume_data(self) -> dict[str, str]:
        return {}


class EncryptedSource:
    """The file in SE2E v1 under ``key`` (a ``#k=`` link) or ``password``.

    The salt (and the key) are kept for a resumed upload: the same ones give the same bytes.
    """

    def __init__(
        self,
        path: Path,
        *,
        key: bytes | None,
        password: str | None,
        salt: bytes | None = None,
        chunk_size: int = e2e.DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.path = path
        self.key = key
        self.password = password
        self.salt = salt or os.urandom(e2e.SALT_SIZE)
        self.chunk_size = chunk_size
        self.plain_size = path.stat().st_size
        self._spare: e2e.Encryptor | None = self._encryptor()
        self._header = self._spare.header()
        self._size = self._spare.encrypted_size

    @property
    def size(self) -> int:
        return self._size

    def _encryptor(self) -> e2e.Encryptor:
        return e2e.Encryptor(
            key=self.key,
            password=self.password,
            name=self.path.name,
            content_type=content_type_of(self.path),
            size=self.plain_size,
            chunk_size=self.chunk_size,
            rng=lambda _: self.salt,
        )

    def open_at(self, offset: int) -> Generator[bytes, None, None]:
        # The first stream reuses the encryptor built for the size (a password costs a
        # PBKDF2 run per encryptor); a retry builds a new one.
        encryptor, self._spare = self._spare or self._encryptor(), None
        with self.path.open("rb") as handle:
            try:
                yield from skip(encryptor.stream_file(handle), offset)
            except ValueError as exc:
                raise UsageError(f"{self.path} changed while it was uploading ({exc})") from None

    def fingerprint(self) -> str:
        return hashlib.sha256(self._header).hexdigest()

    def resume_data(self) -> dict[str, str]:
        data = {"salt": _b64(self.salt)}
        if self.key is not None:
            data["key"] = _b64(self.key)
        return data


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None
