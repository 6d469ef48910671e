from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from satchel.crypto.keys import KeyRing, KeyUnwrapError, add_primary_key, load_or_create_keyfile


def test_wrap_and_unwrap() -> None:
    ring = KeyRing([Fernet.generate_key()])
    data_key = os.urandom(32)
    assert ring.unwrap(ring.wrap(data_key)) == data_key


def test_rotation_keeps_old_tokens_readable_and_rewraps_under_the_new_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = KeyRing([old]).wrap(b"k" * 32)
    rotated = KeyRing([new, old])
    assert rotated.unwrap(token) == b"k" * 32
    rewrapped = rotated.rewrap(token)
    assert KeyRing([new]).unwrap(rewrapped) == b"k" * 32
    with pytest.raises(KeyUnwrapError):
        KeyRing([new]).unwrap(token)


def test_keyfile_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "master.keys"
    first = load_or_create_keyfile(path)
    assert len(first) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_keyfile(path) == first


def test_keyfile_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    load_or_create_keyfile(path)
    path.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_or_create_keyfile(path)


def test_add_primary_key_puts_the_new_key_first(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    old = load_or_create_keyfile(path)
    new = add_primary_key(path)
    assert load_or_create_keyfile(path) == [new, *old]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_bad_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="master key #2 is not a valid Fernet key") as caught:
        KeyRing([Fernet.generate_key(), "not-a-real-key-secret-value"])
    assert "secret-value" not in str(caught.value)
