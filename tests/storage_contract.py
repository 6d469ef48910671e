"""The contract every blob storage backend passes: subclass with a ``store`` fixture."""

from __future__ import annotations

import os

import pytest

from satchel.storage.base import BlobStore

KEY = "contract-key-0000000001"
OTHER = "contract-key-0000000002"


class BlobStoreContract:
    def test_put_and_read_whole(self, store: BlobStore) -> None:
        store.put(KEY, [b"hello ", b"world"])
        assert b"".join(store.read_range(KEY)) == b"hello world"
        assert store.stat(KEY).size == 11

    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [
            (0, None, b"0123456789"),
            (3, 7, b"3456"),
            (9, None, b"9"),
            (5, 5, b""),
            (8, 100, b"89"),
            (10, None, b""),
        ],
    )
    def test_ranges(self, store: BlobStore, start: int, end: int | None, expected: bytes) -> None:
        store.put(KEY, [b"0123456789"])
        assert b"".join(store.read_range(KEY, start, end)) == expected

    def test_pieces_are_bounded(self, store: BlobStore) -> None:
        data = os.urandom(10_000)
        store.put(KEY, [data])
        pieces = list(store.read_range(KEY, 100, 9_000, piece_size=1000))
        assert all(0 < len(piece) <= 1000 for piece in pieces)
        assert b"".join(pieces) == data[100:9000]

    def test_missing_blob(self, store: BlobStore) -> None:
        with pytest.raises(FileNotFoundError):
            store.read_range(KEY)
        with pytest.raises(FileNotFoundError):
            store.stat(KEY)

    def test_delete_is_idempotent(self, store: BlobStore) -> None:
        store.put(KEY, [b"x"])
        store.delete(KEY)
        store.delete(KEY)
        with pytest.raises(FileNotFoundError):
            store.stat(KEY)

    def test_not_visible_before_commit(self, store: BlobStore) -> None:
        writer = store.open_writer(KEY)
        writer.write(b"partial")
        with pytest.raises(FileNotFoundError):
            store.stat(KEY)
        assert [key for key, _ in store.iter_blobs()] == []
        writer.commit()
        assert store.stat(KEY).size == 7

    def test_abort_leaves_nothing(self, store: BlobStore) -> None:
        writer = store.open_writer(KEY)
        writer.write(b"partial")
        writer.abort()
        writer.abort()
        assert list(store.iter_blobs()) == []
        with pytest.raises(FileNotFoundError):
            store.stat(KEY)

    def test_context_manager_aborts_on_error(self, store: BlobStore) -> None:
        def write_then_fail() -> None:
            with store.open_writer(KEY) as writer:
                writer.write(b"data")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            write_then_fail()
        assert list(store.iter_blobs()) == []

    def test_commit_replaces_an_existing_blob(self, store: BlobStore) -> None:
        store.put(KEY, [b"old"])
        store.put(KEY, [b"newer"])
        assert b"".join(store.read_range(KEY)) == b"newer"

    @pytest.mark.parametrize(
        "key", ["../escape-attempt-0001", "", "short", "a/b/c/d/e/f/g/h/i/j", "x" * 200]
    )
    def test_invalid_keys_are_rejected(self, store: BlobStore, key: str) -> None:
        with pytest.raises(ValueError, match="invalid blob key"):
            store.open_writer(key)
        with pytest.raises(ValueError, match="invalid blob key"):
            store.read_range(key)

    def test_iter_blobs_lists_committed_ones(self, store: BlobStore) -> None:
        store.put(KEY, [b"a"])
        store.put(OTHER, [b"bb"])
        listed = {key: stat.size for key, stat in store.iter_blobs()}
        assert listed == {KEY: 1, OTHER: 2}

    def test_large_streamed_write(self, store: BlobStore) -> None:
        block = os.urandom(1 << 20)
        with store.open_writer(KEY) as writer:
            for _ in range(20):
                writer.write(block)
            writer.commit()
        assert store.stat(KEY).size == 20 << 20
        assert b"".join(store.read_range(KEY, (5 << 20) + 3, (5 << 20) + 10)) == block[3:10]

    def test_check_and_free_space(self, store: BlobStore) -> None:
        store.check()
        free = store.free_bytes()
        assert free is None or free > 0
