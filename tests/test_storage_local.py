from __future__ import annotations

import errno
import os
import stat
import time
from datetime import timedelta
from pathlib import Path

import pytest
from tests.storage_contract import KEY, BlobStoreContract

from satchel.storage import open_store
from satchel.storage.local import LocalBlobStore


class TestLocalBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalBlobStore:
        return LocalBlobStore(tmp_path / "store")


def test_files_are_private_to_the_owner(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    store.put(KEY, [b"x"])
    path = next((tmp_path / "store" / "blobs").rglob(KEY))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "store" / "blobs").stat().st_mode) == 0o700


def test_no_temp_file_left_after_commit_or_abort(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    store.put(KEY, [b"x"])
    with store.open_writer("another-key-000000000") as writer:
        writer.write(b"y")
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_disk_full_propagates_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "store")
    writer = store.open_writer(KEY)

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space") as caught:
        writer.write(b"data")
    monkeypatch.undo()
    assert caught.value.errno == errno.ENOSPC
    writer.abort()
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_sweep_temp_removes_only_old_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    old_writer = store.open_writer(KEY)
    old_writer.write(b"stale")
    fresh_writer = store.open_writer("fresh-key-00000000000")
    fresh_writer.write(b"busy")
    old_file = next(p for p in (tmp_path / "store" / "tmp").iterdir() if p.name.startswith(KEY))
    past = time.time() - 3600
    os.utime(old_file, (past, past))
    assert store.sweep_temp(timedelta(minutes=30)) == 1
    assert [p.name.split(".")[0] for p in (tmp_path / "store" / "tmp").iterdir()] == [
        "fresh-key-00000000000"
    ]
    fresh_writer.abort()


def test_registry(tmp_path: Path) -> None:
    assert isinstance(open_store("local", tmp_path), LocalBlobStore)
    custom = open_store(f"local:{tmp_path / 'elsewhere'}", tmp_path)
    assert isinstance(custom, LocalBlobStore)
    assert custom.root == tmp_path / "elsewhere"
    with pytest.raises(ValueError, match="unknown storage backend"):
        open_store("ftp://x", tmp_path)
