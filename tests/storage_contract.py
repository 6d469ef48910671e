"""The contract every blob storage backend keeps.

A backend's test module subclasses ``BlobStoreContract`` and provides a ``store`` fixture::

    class TestLocal(BlobStoreContract):
        @pytest.fixture
        def store(self, tmp_path): return LocalBlobStore(tmp_path / "store")

``MemoryBlobStore`` is the smallest store that keeps the contract, for tests where disk I/O is
beside the point.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import TracebackType

import pytest

from satchel.storage.base import PIECE_SIZE, BlobStat, BlobStore, check_key, check_range

KEY = "contract-key-0000000001"
OTHER = "contract-key-0000000002"
INVALID_KEYS = [
    "../escape-attempt-0001",
    "",
    "short",
    "a/b/c/d/e/f/g/h/i/j",
    "x" * 129,
    "k" * 20 + "\n",
]


class BlobStoreContract:
    def test_put_and_read_whole(self, store: BlobStore) -> None:
        store.put(KEY, [b"hello ", b"world"])
        assert b"".join(store.read_range(KEY)) == b"hello world"
        assert store.stat(KEY).size == 11

    def test_copy_is_a_blob_of_its_own(self, store: BlobStore) -> None:
        data = os.urandom(3 * PIECE_SIZE + 17)
        store.put("c" * 16 + "source", [data])
        store.copy("c" * 16 + "source", "c" * 16 + "target")
        store.delete("c" * 16 + "source")
        assert b"".join(store.read_range("c" * 16 + "target")) == data
        with pytest.raises(FileNotFoundError):
            store.copy("c" * 16 + "missing", "c" * 16 + "other")

    def test_put_takes_any_buffer(self, store: BlobStore) -> None:
        store.put(KEY, [b"ab", bytearray(b"cd"), memoryview(b"xefx")[1:3], b""])
        assert b"".join(store.read_range(KEY)) == b"abcdef"

    def test_empty_blob(self, store: BlobStore) -> None:
        store.put(KEY, [])
        assert store.stat(KEY).size == 0
        assert list(store.read_range(KEY)) == []

    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [
            (0, None, b"0123456789"),
            (3, 7, b"3456"),
            (9, None, b"9"),
            (5, 5, b""),
            (7, 3, b""),
            (8, 100, b"89"),
            (10, None, b""),
            (25, None, b""),
            (25, 30, b""),
            (0, 0, b""),
        ],
    )
    def test_ranges(self, store: BlobStore, start: int, end: int | None, expected: bytes) -> None:
        store.put(KEY, [b"0123456789"])
        assert b"".join(store.read_range(KEY, start, end)) == expected

    @pytest.mark.parametrize("piece_size", [1, 7, 1000, 8900, PIECE_SIZE])
    def test_pieces_are_bounded(self, store: BlobStore, piece_size: int) -> None:
        data = os.urandom(10_000)
        store.put(KEY, [data])
        pieces = list(store.read_range(KEY, 100, 9_000, piece_size=piece_size))
        assert all(0 < len(piece) <= piece_size for piece in pieces)
        assert b"".join(pieces) == data[100:9000]

    @pytest.mark.parametrize(
        ("start", "end", "piece_size"), [(-1, None, 10), (0, -5, 10), (0, 5, 0)]
    )
    def test_bad_range_arguments(
        self, store: BlobStore, start: int, end: int | None, piece_size: int
    ) -> None:
        store.put(KEY, [b"data"])
        with pytest.raises(ValueError, match=r"negative|positive"):
            store.read_range(KEY, start, end, piece_size)

    def test_stat(self, store: BlobStore) -> None:
        before = datetime.now(UTC) - timedelta(seconds=5)
        store.put(KEY, [b"x" * 1234])
        stat = store.stat(KEY)
        assert stat.size == 1234
        assert stat.modified.utcoffset() == timedelta(0)
        assert before <= stat.modified <= datetime.now(UTC) + timedelta(seconds=5)

    def test_missing_blob_fails_on_the_call(self, store: BlobStore) -> None:
        with pytest.raises(FileNotFoundError):
            store.read_range(KEY)  # not iterated: the error must come from the call
        with pytest.raises(FileNotFoundError):
            store.read_range(KEY, 5, 10)
        with pytest.raises(FileNotFoundError):
            store.stat(KEY)

    def test_delete_is_idempotent(self, store: BlobStore) -> None:
        store.delete(KEY)
        store.put(KEY, [b"x"])
        store.put(OTHER, [b"y"])
        store.delete(KEY)
        store.delete(KEY)
        with pytest.raises(FileNotFoundError):
            store.stat(KEY)
        assert b"".join(store.read_range(OTHER)) == b"y"

    def test_not_visible_before_commit(self, store: BlobStore) -> None:
        writer = store.open_writer(KEY)
        writer.write(b"partial")
        with pytest.raises(FileNotFoundError):
            store.stat(KEY)
        with pytest.raises(FileNotFoundError):
            store.read_range(KEY)
        assert list(store.iter_blobs()) == []
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

    def test_abort_after_commit_does_nothing(self, store: BlobStore) -> None:
        with store.open_writer(KEY) as writer:
            writer.write(b"kept")
            writer.commit()
            writer.abort()
        assert b"".join(store.read_range(KEY)) == b"kept"

    def test_context_manager_aborts_on_error(self, store: BlobStore) -> None:
        def write_then_fail() -> None:
            with store.open_writer(KEY) as writer:
                writer.write(b"data")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            write_then_fail()
        assert list(store.iter_blobs()) == []

    def test_context_manager_aborts_without_commit(self, store: BlobStore) -> None:
        with store.open_writer(KEY) as writer:
            writer.write(b"data")
        assert list(store.iter_blobs()) == []

    def test_commit_replaces_an_existing_blob(self, store: BlobStore) -> None:
        store.put(KEY, [b"old"])
        with store.open_writer(KEY) as writer:
            writer.write(b"newer")
            assert b"".join(store.read_range(KEY)) == b"old"  # until the commit
            writer.commit()
        assert b"".join(store.read_range(KEY)) == b"newer"
        assert [key for key, _ in store.iter_blobs()] == [KEY]

    def test_two_writers_of_one_key_last_commit_wins(self, store: BlobStore) -> None:
        first, second = store.open_writer(KEY), store.open_writer(KEY)
        first.write(b"first")
        second.write(b"second")
        second.commit()
        first.commit()
        assert b"".join(store.read_range(KEY)) == b"first"

    @pytest.mark.parametrize("key", INVALID_KEYS)
    def test_invalid_keys_are_rejected(self, store: BlobStore, key: str) -> None:
        with pytest.raises(ValueError, match="invalid blob key"):
            store.open_writer(key)
        with pytest.raises(ValueError, match="invalid blob key"):
            store.read_range(key)
        with pytest.raises(ValueError, match="invalid blob key"):
            store.stat(key)
        with pytest.raises(ValueError, match="invalid blob key"):
            store.delete(key)

    def test_longest_and_shortest_keys(self, store: BlobStore) -> None:
        for key in ("A" * 16, "z-_9" * 32):
            store.put(key, [key.encode()])
            assert b"".join(store.read_range(key)) == key.encode()

    def test_iter_blobs_lists_committed_ones(self, store: BlobStore) -> None:
        store.put(KEY, [b"a"])
        store.put(OTHER, [b"bb"])
        store.put("to-be-deleted-00000000", [b"c"])
        store.delete("to-be-deleted-00000000")
        pending = store.open_writer("still-being-written-0")
        pending.write(b"ddd")
        listed = {key: stat.size for key, stat in store.iter_blobs()}
        assert listed == {KEY: 1, OTHER: 2}
        pending.abort()

    def test_sweep_temp_spares_recent_writes(self, store: BlobStore) -> None:
        store.put(OTHER, [b"committed"])
        with store.open_writer(KEY) as writer:
            writer.write(b"in progress")
            assert store.sweep_temp(timedelta(hours=1)) == 0
            writer.write(b", still")
            writer.commit()
        assert b"".join(store.read_range(KEY)) == b"in progress, still"
        assert store.sweep_temp(timedelta(0)) == 0  # committed blobs are not temp files

    def test_large_streamed_write(self, store: BlobStore) -> None:
        block = bytearray(os.urandom(1 << 20))
        with store.open_writer(KEY) as writer:
            for index in range(20):
                block[0] = index  # the writer must not keep a reference to the caller's buffer
                writer.write(block)
            writer.commit()
        assert store.stat(KEY).size == 20 << 20
        assert b"".join(store.read_range(KEY, (5 << 20) + 3, (5 << 20) + 10)) == block[3:10]
        firsts = bytes(next(store.read_range(KEY, n << 20, (n << 20) + 1))[0] for n in range(20))
        assert firsts == bytes(range(20))

    def test_check_and_free_space(self, store: BlobStore) -> None:
        store.check()
        free = store.free_bytes()
        assert free is None or free > 0

    def test_staged_blob_grows_across_writers_then_commits(self, store: BlobStore) -> None:
        assert store.staging_size(KEY) is None
        writer = store.open_staging(KEY, 0)
        writer.write(b"first ")
        writer.sync()
        writer.close()
        assert store.staging_size(KEY) == 6
        writer = store.open_staging(KEY, 6)
        writer.write(memoryview(b"second"))
        writer.close()
        with pytest.raises(FileNotFoundError):
            store.stat(KEY)  # not visible before the commit
        store.commit_staging(KEY)
        assert b"".join(store.read_range(KEY)) == b"first second"
        assert store.staging_size(KEY) is None

    def test_staged_blob_drops_a_write_cut_short(self, store: BlobStore) -> None:
        writer = store.open_staging(KEY, 0)
        writer.write(b"kept" + b"half-written")
        writer.close()
        writer = store.open_staging(KEY, 4)
        writer.write(b"!")
        writer.close()
        with pytest.raises(ValueError, match="staged blob"):
            store.open_staging(KEY, 99)
        store.commit_staging(KEY)
        assert b"".join(store.read_range(KEY)) == b"kept!"

    def test_staged_blobs_are_listed_until_committed_or_deleted(self, store: BlobStore) -> None:
        other = "b" * 24
        for key in (KEY, other):
            writer = store.open_staging(key, 0)
            writer.write(b"staged")
            writer.close()
        listed = dict(store.iter_staging())
        assert set(listed) == {KEY, other}
        assert listed[KEY].size == 6
        assert abs((listed[KEY].modified - datetime.now(UTC)).total_seconds()) < 60
        store.commit_staging(KEY)
        store.delete_staging(other)
        assert list(store.iter_staging()) == []
        assert [key for key, _stat in store.iter_blobs()] == [KEY]

    def test_staged_blob_delete(self, store: BlobStore) -> None:
        writer = store.open_staging(KEY, 0)
        writer.write(b"gone")
        writer.close()
        store.delete_staging(KEY)
        store.delete_staging(KEY)
        assert store.staging_size(KEY) is None
        assert list(store.iter_blobs()) == []


class MemoryBlobStore(BlobStore):
    """Blobs in a dict. ``max_piece`` makes reads hand out smaller pieces than asked for
    (as a network backend may); ``reads`` logs every read_range call."""

    def __init__(self, max_piece: int | None = None) -> None:
        self.blobs: dict[str, tuple[bytes, datetime]] = {}
        self.staged: dict[str, bytearray] = {}
        self.staged_at: dict[str, datetime] = {}
        self.pending: dict[int, MemoryBlobWriter] = {}
        self.max_piece = max_piece
        self.reads: list[tuple[str, int, int | None]] = []

    def open_writer(self, key: str) -> MemoryBlobWriter:
        writer = MemoryBlobWriter(self, check_key(key))
        self.pending[id(writer)] = writer
        return writer

    def read_range(
        self, key: str, start: int = 0, end: int | None = None, piece_size: int = PIECE_SIZE
    ) -> Iterator[bytes]:
        check_range(start, end, piece_size)
        data = self._get(key)[0]
        self.reads.append((key, start, end))
        step = min(piece_size, self.max_piece or piece_size)
        stop = len(data) if end is None else min(end, len(data))
        return (data[offset : min(offset + step, stop)] for offset in range(start, stop, step))

    def stat(self, key: str) -> BlobStat:
        data, modified = self._get(key)
        return BlobStat(len(data), modified)

    def _get(self, key: str) -> tuple[bytes, datetime]:
        try:
            return self.blobs[check_key(key)]
        except KeyError:
            raise FileNotFoundError(key) from None

    def delete(self, key: str) -> None:
        self.blobs.pop(check_key(key), None)

    def iter_blobs(self) -> Iterator[tuple[str, BlobStat]]:
        for key in list(self.blobs):
            yield key, self.stat(key)

    def sweep_temp(self, older_than: timedelta) -> int:
        cutoff = datetime.now(UTC) - older_than
        stale = [writer for writer in self.pending.values() if writer.touched < cutoff]
        for writer in stale:
            writer.abort()
        return len(stale)

    def check(self) -> None:
        pass

    def open_staging(self, key: str, size: int) -> MemoryStagingWriter:
        data = self.staged.setdefault(check_key(key), bytearray())
        if size > len(data):
            raise ValueError(f"staged blob has {len(data)} bytes, not {size}")
        del data[size:]
        self.staged_at[key] = datetime.now(UTC)
        return MemoryStagingWriter(data)

    def staging_size(self, key: str) -> int | None:
        data = self.staged.get(check_key(key))
        return None if data is None else len(data)

    def commit_staging(self, key: str) -> None:
        self.blobs[key] = (bytes(self.staged.pop(check_key(key))), datetime.now(UTC))

    def delete_staging(self, key: str) -> None:
        self.staged.pop(check_key(key), None)

    def iter_staging(self) -> Iterator[tuple[str, BlobStat]]:
        for key in list(self.staged):
            yield key, BlobStat(len(self.staged[key]), self.staged_at[key])


class MemoryStagingWriter:
    def __init__(self, data: bytearray) -> None:
        self.data = data

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.data += data

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryBlobWriter:
    def __init__(self, store: MemoryBlobStore, key: str) -> None:
        self.store, self.key = store, key
        self.buffer = bytearray()
        self.touched = datetime.now(UTC)
        self.state = "open"

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._require_open()
        self.buffer += data
        self.touched = datetime.now(UTC)

    def commit(self) -> None:
        self._require_open()
        self.store.blobs[self.key] = (bytes(self.buffer), datetime.now(UTC))
        self.store.pending.pop(id(self), None)
        self.state = "committed"

    def abort(self) -> None:
        if self.state == "open":
            self.store.pending.pop(id(self), None)
            self.state = "aborted"

    def _require_open(self) -> None:
        if self.state != "open":
            raise ValueError(f"blob writer is {self.state}")

    def __enter__(self) -> MemoryBlobWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()
