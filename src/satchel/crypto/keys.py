"""Master keys: MultiFernet wraps each file's data key; the first key is the primary."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class KeyUnwrapError(Exception):
    """No master key opens this wrapped data key."""


class KeyRing:
    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise ValueError("at least one master key is needed")
        fernets = []
        for index, key in enumerate(keys):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise ValueError(f"master key #{index + 1} is not a valid Fernet key") from None
        raw = keys[0].encode() if isinstance(keys[0], str) else keys[0]
        self.primary_fingerprint = hashlib.sha256(raw).hexdigest()[:12]
        self._multi = MultiFernet(fernets)

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


def load_or_create_keyfile(path: Path) -> list[str]:
    """One key per line; created with one new key (mode 0600) on first use."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_keyfile(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(Fernet.generate_key().decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return _read_keyfile(path)


def _read_keyfile(path: Path) -> list[str]:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(f"{path} is readable by others: chmod 600 it")
    keys = [line.strip() for line in path.read_text().splitlines()]
    keys = [key for key in keys if key and not key.startswith("#")]
    if not keys:
        raise ValueError(f"{path} holds no key")
    return keys


def add_primary_key(path: Path) -> str:
    """Writes a new key first in the file (atomically), keeping the old ones after it."""
    old = load_or_create_keyfile(path)
    new = Fernet.generate_key().decode()
    temp = path.with_name(path.name + ".new")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join([new, *old]) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    return new
