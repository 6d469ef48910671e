from __future__ import annotations

import base64
import errno
import hashlib
import os
import stat
import threading
import traceback
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from satchel.crypto.keys import (
    KeyRing,
    KeyUnwrapError,
    add_primary_key,
    fingerprint,
    load_or_create_keyfile,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the key ring --------------------------------------------------------------------------


def test_wrap_and_unwrap() -> None:
    ring = KeyRing([Fernet.generate_key()])
    data_key = os.urandom(32)
    token = ring.wrap(data_key)
    assert isinstance(token, bytes)
    assert data_key not in token
    assert ring.unwrap(token) == data_key


def test_keys_may_be_text_or_bytes() -> None:
    key = Fernet.generate_key()
    token = KeyRing([key]).wrap(b"k" * 32)
    assert KeyRing([key.decode()]).unwrap(token) == b"k" * 32


def test_rotation_keeps_old_tokens_readable_and_rewraps_under_the_new_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = KeyRing([old]).wrap(b"k" * 32)
    rotated = KeyRing([new, old])
    assert rotated.unwrap(token) == b"k" * 32
    rewrapped = rotated.rewrap(token)
    assert KeyRing([new]).unwrap(rewrapped) == b"k" * 32
    with pytest.raises(KeyUnwrapError):
        KeyRing([new]).unwrap(token)
    with pytest.raises(KeyUnwrapError):
        KeyRing([old]).unwrap(rewrapped)


def test_foreign_or_damaged_tokens_are_refused() -> None:
    ring = KeyRing([Fernet.generate_key()])
    token = ring.wrap(b"k" * 32)
    damaged = token[:-5] + (b"AAAAA" if not token.endswith(b"AAAAA") else b"BBBBB")
    for bad in (KeyRing([Fernet.generate_key()]).wrap(b"k" * 32), damaged, b"", b"garbage"):
        with pytest.raises(KeyUnwrapError):
            ring.unwrap(bad)
        with pytest.raises(KeyUnwrapError):
            ring.rewrap(bad)


def test_primary_fingerprint() -> None:
    first, second = Fernet.generate_key(), Fernet.generate_key()
    expected = hashlib.sha256(base64.urlsafe_b64decode(first)).hexdigest()[:12]
    assert KeyRing([first, second]).primary_fingerprint == expected
    assert KeyRing([first.decode()]).primary_fingerprint == expected
    assert fingerprint(first) == expected
    assert KeyRing([second, first]).primary_fingerprint != expected


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-real-key-secret-value",
        b"not-a-real-key-secret-value",
        "secret-valu",  # bad base64 padding: the decoder's own error could quote it
        "secret-value!" * 4,
        base64.urlsafe_b64encode(b"secret-value-16b").decode(),  # decodes, but to 16 bytes
    ],
)
def test_bad_key_is_refused_without_echoing_it(bad: str | bytes) -> None:
    with pytest.raises(ValueError, match="master key #2 is not a valid Fernet key") as caught:
        KeyRing([Fernet.generate_key(), bad])
    shown = "".join(traceback.format_exception(caught.value))
    assert "secret" not in shown
    assert "c2VjcmV0" not in shown  # base64 of "secret"


def test_key_ring_needs_a_list_of_keys() -> None:
    with pytest.raises(ValueError, match="no master key"):
        KeyRing([])
    with pytest.raises(TypeError, match="list of keys"):
        KeyRing(Fernet.generate_key().decode())


# -- the key file --------------------------------------------------------------------------


def test_keyfile_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "master.keys"
    first = load_or_create_keyfile(path)
    assert len(first) == 1
    KeyRing(first)  # a valid key
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert path.read_text() == first[0] + "\n"
    assert load_or_create_keyfile(path) == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["master.keys"]  # no temp left


def test_keyfile_ignores_blank_and_comment_lines(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    one, two = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    path.write_text(f"# rotated 2026-01-01\n\n  {one}  \n# old:\n{two}\n")
    path.chmod(0o600)
    assert load_or_create_keyfile(path) == [one, two]


@pytest.mark.parametrize("insecure", [0o644, 0o640, 0o620, 0o604, 0o610, 0o660])
def test_keyfile_open_to_others_is_refused(tmp_path: Path, insecure: int) -> None:
    path = tmp_path / "master.keys"
    load_or_create_keyfile(path)
    path.chmod(insecure)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_or_create_keyfile(path)
    with pytest.raises(PermissionError, match="chmod 600"):
        add_primary_key(path)


def test_keyfile_without_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    path.write_text("# nothing here\n\n")
    path.chmod(0o600)
    with pytest.raises(ValueError, match="holds no key"):
        load_or_create_keyfile(path)


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    start = threading.Barrier(8)
    results: list[list[str]] = []

    def worker() -> None:
        start.wait()
        results.append(load_or_create_keyfile(path))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert all(result == results[0] for result in results)
    assert len(results[0]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.keys"]


def test_keyfile_on_a_file_system_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: object, target: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "master.keys"
    keys = load_or_create_keyfile(path)
    assert len(keys) == 1
    assert mode(path) == 0o600
    assert load_or_create_keyfile(path) == keys
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.keys"]


def test_add_primary_key_puts_the_new_key_first(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    old = load_or_create_keyfile(path)
    new = add_primary_key(path)
    assert load_or_create_keyfile(path) == [new, *old]
    assert mode(path) == 0o600
    assert KeyRing(load_or_create_keyfile(path)).primary_fingerprint == fingerprint(new)
    newest = add_primary_key(path)
    assert load_or_create_keyfile(path) == [newest, new, *old]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.keys"]


def test_add_primary_key_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    old = Fernet.generate_key().decode()
    path.write_text(f"# Satchel master keys: back this file up\n\n{old}\n# retired below\n")
    path.chmod(0o600)
    new = add_primary_key(path)
    assert path.read_text() == (
        f"# Satchel master keys: back this file up\n\n{new}\n{old}\n# retired below\n"
    )


def test_add_primary_key_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.keys"
    new = add_primary_key(path)
    keys = load_or_create_keyfile(path)
    assert keys[0] == new
    assert len(keys) == 2


def test_rotation_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    before = KeyRing(load_or_create_keyfile(path))
    token = before.wrap(b"d" * 32)
    add_primary_key(path)
    after = KeyRing(load_or_create_keyfile(path))
    rewrapped = after.rewrap(token)
    assert KeyRing(load_or_create_keyfile(path)[:1]).unwrap(rewrapped) == b"d" * 32
