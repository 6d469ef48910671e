"""Master keys: MultiFernet wraps each file's data key; the first key is the primary.

Key file: one Fernet key per line, primary first; blank lines and ``#`` lines are ignored.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FINGERPRINT_LENGTH = 12


class KeyUnwrapError(Exception):
    """No master key opens this wrapped data key."""


class KeyUnavailable(Exception):
    """The key that should wrap new data keys is not among this process's master keys."""


class KeyRing:
    """Master keys by fingerprint; ``primary`` (a fingerprint, default the first key) wraps."""

    def __init__(self, keys: Sequence[bytes | str], primary: str | None = None) -> None:
        if isinstance(keys, str | bytes):
            raise TypeError("KeyRing takes a list of keys, not one key")
        if not keys:
            raise ValueError("no master key given")
        self._keys = list(keys)
        self._fernets: dict[str, Fernet] = {}
        self._raw: dict[str, bytes] = {}
        for number, key in enumerate(keys, 1):
            one = _fernet(key, number)  # validates before anything else reads the key
            key_id = fingerprint(key)
            self._fernets.setdefault(key_id, one)
            self._raw.setdefault(key_id, base64.urlsafe_b64decode(key))
        self._primary = primary or fingerprint(keys[0])
        if self._primary not in self._fernets:
            raise KeyUnavailable(f"no master key with fingerprint {self._primary}")
        others = [f for key_id, f in self._fernets.items() if key_id != self._primary]
        self._multi = MultiFernet([self._fernets[self._primary], *others])

    @property
    def primary_fingerprint(self) -> str:
        return self._primary

    @property
    def fingerprints(self) -> list[str]:
        """Every key's fingerprint, the primary first."""
        return [self._primary, *(k for k in self._fernets if k != self._primary)]

    def with_primary(self, key_id: str) -> KeyRing:
        return KeyRing(self._keys, primary=key_id)

    def wrap(self, data_key: bytes) -> bytes:
        return self._multi.encrypt(data_key)

    def unwrap(self, token: bytes) -> bytes:
        try:
            return self._multi.decrypt(token)
        except InvalidToken:
            raise KeyUnwrapError("no master key opens this data key") from None

    def rewrap(self, token: bytes) -> bytes:
        try:
            return self._multi.rotate(token)
        except InvalidToken:
            raise KeyUnwrapError("no master key opens this data key") from None

    def wrapped_by(self, token: bytes) -> str | None:
        """The fingerprint of the key that opens ``token``, or None."""
        for key_id, one in self._fernets.items():
            try:
                one.decrypt(token)
            except InvalidToken:
                continue
            return key_id
        return None

    def derived(self, key_id: str, purpose: bytes) -> bytes:
        """A 32-byte secret for ``purpose`` (MACs of short-lived tokens), one per master key,
        so that rotating the master keys rotates these too."""
        return HKDF(SHA256(), 32, salt=None, info=b"satchel:" + purpose).derive(self._raw[key_id])


def _fernet(key: bytes | str, number: int) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        # Neither the key nor the library's message (which may quote it) goes into logs.
        raise ValueError(
            f"master key #{number} is not a valid Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


def fingerprint(key: bytes | str) -> str:
    # Of the decoded key, so that the same key spelled with stray whitespace or without
    # padding has the same fingerprint. 48 bits of a SHA-256 reveal nothing usable about it.
    raw = base64.urlsafe_b64decode(key)
    return hashlib.sha256(raw).hexdigest()[:FINGERPRINT_LENGTH]


def load_or_create_keyfile(path: Path) -> list[str]:
    """The keys in ``path``, primary first; a missing file is created with one new key."""
    if not path.exists():
        _create_keyfile(path)
    return _read_keyfile(path)


def _create_keyfile(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = _write_private_temp(path, Fernet.generate_key().decode() + "\n")
    try:
        # link() publishes a complete file and never over an existing one: of several
        # processes starting at once, one wins and the others read its key.
        os.link(temp, path)
    except FileExistsError:
        pass
    except OSError:
        _create_in_place(path, temp.read_text())  # a file system without hard links
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(path.parent)  # losing the key file in a crash would lose every file


def _create_in_place(path: Path, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _read_keyfile(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PermissionError(
                f"master key file {path} is open to group or others "
                f"(mode {stat.S_IMODE(mode):o}): chmod 600 it"
            )
        keys = _parse_keys(handle.read())
    if not keys:
        raise ValueError(f"master key file {path} holds no key")
    return keys


def _parse_keys(text: str) -> list[str]:
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def add_primary_key(path: Path) -> str:
    """Puts a new key first in ``path`` (atomically), keeping the old keys and comments."""
    load_or_create_keyfile(path)  # creates a missing file, refuses an insecure one
    new = Fernet.generate_key().decode()
    lines = path.read_text(encoding="utf-8").splitlines()
    # Before the first key, so that a comment heading the file stays on top.
    first = next(number for number, line in enumerate(lines) if _parse_keys(line))
    lines.insert(first, new)
    temp = _write_private_temp(path, "\n".join(lines) + "\n")
    try:
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return new


def _write_private_temp(path: Path, text: str) -> Path:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a folder
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def keep_only(path: Path, key_ids: Sequence[str]) -> int:
    """Drops every key of ``path`` whose fingerprint is not in ``key_ids`` (atomically,
    keeping comments); returns how many went."""
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not _parse_keys(line) or fingerprint(line.strip()) in key_ids]
    if not _parse_keys("\n".join(kept)):
        raise ValueError("refusing to leave the key file without a key")
    temp = _write_private_temp(path, "\n".join(kept) + "\n")
    try:
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return len(lines) - len(kept)
