from __future__ import annotations

import errno
import gc
import os
import shutil
import stat
import time
from datetime import timedelta
from pathlib import Path

import pytest
from tests.helpers import open_fds
from tests.storage_contract import KEY, OTHER, BlobStoreContract

from satchel.storage import open_store
from satchel.storage.local import LocalBlobStore


class TestLocalBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalBlobStore:
        return LocalBlobStore(tmp_path / "store")


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "store")


def temp_files(store: LocalBlobStore) -> list[Path]:
    return sorted(store.tmp.iterdir())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_layout_and_modes(store: LocalBlobStore) -> None:
    store.put(KEY, [b"x"])
    path = store.root / "blobs" / KEY[:2] / KEY[2:4] / KEY
    assert path.read_bytes() == b"x"
    assert mode(path) == 0o600
    for folder in (store.root, store.blobs, store.tmp, path.parent.parent, path.parent):
        assert mode(folder) == 0o700, folder


def test_temp_file_while_writing(store: LocalBlobStore) -> None:
    with store.open_writer(KEY) as writer:
        writer.write(b"abc")
        [temp] = temp_files(store)
        assert temp.name.startswith(KEY + ".")
        assert temp.name.endswith(".part")
        assert mode(temp) == 0o600
        assert temp.read_bytes() == b"abc"  # streamed to disk, not held in memory
        writer.commit()
    assert temp_files(store) == []


def test_no_temp_file_left_after_commit_or_abort(store: LocalBlobStore) -> None:
    store.put(KEY, [b"x"])
    with store.open_writer(OTHER) as writer:
        writer.write(b"y")
    assert temp_files(store) == []


def test_commit_syncs_file_and_folder(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store.put(KEY, [b"x"])  # the first blob of its folders: they are synced too
    assert synced == [False, True, True, True]  # the file, then blobs, blobs/ab, blobs/ab/cd
    synced.clear()
    store.put(KEY, [b"y"])
    assert synced == [False, True]


def test_writer_cannot_be_used_after_commit(store: LocalBlobStore) -> None:
    writer = store.open_writer(KEY)
    writer.commit()
    with pytest.raises(ValueError, match="blob writer is closed"):
        writer.write(b"more")
    with pytest.raises(ValueError, match="blob writer is closed"):
        writer.commit()
    assert store.stat(KEY).size == 0


def full_disk(fd: int, data: bytes) -> int:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_propagates_and_abort_leaves_nothing(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = store.open_writer(KEY)
    writer.write(b"fits")
    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match="No space") as caught:
        writer.write(b"does not fit")
    monkeypatch.undo()
    assert caught.value.errno == errno.ENOSPC
    writer.abort()
    assert temp_files(store) == []
    assert list(store.iter_blobs()) == []


def test_disk_full_after_a_short_write_in_a_with_block(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls: list[int] = []

    def half_then_full(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, memoryview(data)[: len(data) // 2])
        return full_disk(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space"), store.open_writer(KEY) as writer:
        writer.write(b"x" * 1000)
    assert calls == [1000, 500]
    assert temp_files(store) == []


def test_sweep_temp_removes_only_old_files(store: LocalBlobStore) -> None:
    store.put("committed-blob-000000", [b"kept"])
    old_writer = store.open_writer(KEY)
    old_writer.write(b"stale")
    fresh_writer = store.open_writer(OTHER)
    fresh_writer.write(b"busy")
    [old_file] = [path for path in temp_files(store) if path.name.startswith(KEY)]
    an_hour_ago = time.time() - 3600
    os.utime(old_file, (an_hour_ago, an_hour_ago))
    assert store.sweep_temp(timedelta(minutes=30)) == 1
    assert [path.name.split(".")[0] for path in temp_files(store)] == [OTHER]
    with pytest.raises(FileNotFoundError):
        old_writer.commit()  # the swept write is gone for good
    old_writer.abort()
    fresh_writer.commit()
    assert {key for key, _ in store.iter_blobs()} == {"committed-blob-000000", OTHER}


def test_delete_keeps_the_bounded_fan_out_folder(store: LocalBlobStore) -> None:
    store.put(KEY, [b"x"])
    leaf = store.path_of(KEY).parent
    store.delete(KEY)
    assert leaf.is_dir()
    assert list(leaf.iterdir()) == []
    store.put(KEY, [b"again"])
    assert b"".join(store.read_range(KEY)) == b"again"


def test_delete_keeps_a_folder_shared_with_another_blob(store: LocalBlobStore) -> None:
    neighbour = KEY[:4] + "-neighbour-0000"
    store.put(KEY, [b"x"])
    store.put(neighbour, [b"y"])
    store.delete(KEY)
    assert b"".join(store.read_range(neighbour)) == b"y"


def test_iter_blobs_skips_what_is_not_a_blob(store: LocalBlobStore) -> None:
    store.put(KEY, [b"x"])
    leaf = store.path_of(KEY).parent
    (leaf / ".swap").write_bytes(b"editor")
    (leaf / "misplaced-blob-key-000001").write_bytes(b"wrong folder for its key")
    (store.blobs / "stray-file").write_bytes(b"")
    (store.blobs / "abc").mkdir()
    assert [key for key, _ in store.iter_blobs()] == [KEY]


def test_a_started_read_survives_delete(store: LocalBlobStore) -> None:
    store.put(KEY, [b"0123456789"])
    pieces = store.read_range(KEY, piece_size=4)
    store.delete(KEY)
    assert b"".join(pieces) == b"0123456789"


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_readers_close_their_file(store: LocalBlobStore) -> None:
    store.put(KEY, [b"x" * 100])
    blob = store.path_of(KEY).resolve()
    gc.collect()  # what earlier tests left for the collector closes now, not in the middle
    assert open_fds(blob) == 0
    drained = store.read_range(KEY, piece_size=10)
    assert len(list(drained)) == 10
    abandoned = store.read_range(KEY)  # never iterated, e.g. the client left before the body
    half_way = store.read_range(KEY, piece_size=10)
    next(half_way)
    assert open_fds(blob) == 2  # the count sees the two readers not finished
    del half_way  # stopped half way
    del abandoned
    gc.collect()
    assert open_fds(blob) == 0


def test_check_fails_when_the_folder_is_gone(store: LocalBlobStore) -> None:
    store.check()
    shutil.rmtree(store.root)
    with pytest.raises(OSError):  # noqa: PT011 - any OSError means "not ready"
        store.check()


def test_registry(tmp_path: Path) -> None:
    default = open_store("local", tmp_path)
    assert isinstance(default, LocalBlobStore)
    assert default.root == tmp_path / "store"
    assert isinstance(open_store(" local: ", tmp_path), LocalBlobStore)
    custom = open_store(f"local:{tmp_path / 'elsewhere'}", tmp_path)
    assert isinstance(custom, LocalBlobStore)
    assert custom.root == tmp_path / "elsewhere"


@pytest.mark.parametrize("spec", ["ftp://host/x", "LOCAL", "", "blobs"])
def test_registry_refuses_unknown_backends(tmp_path: Path, spec: str) -> None:
    with pytest.raises(ValueError, match="unknown storage backend"):
        open_store(spec, tmp_path)


def test_registry_refuses_a_relative_local_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="absolute path"):
        open_store("local:data/blobs", tmp_path)
