"""tus under faults: a lease of a process that died, a full disk, a failed creation, stray
staged blobs."""

from __future__ import annotations

import errno
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient
from tests.test_tus import (
    blob_key_of,
    create,
    new_upload,
    offset_of,
    patch,
    payload,
    staged_size,
    state_of,
)

from satchel.core import processes
from satchel.core.tus import LEASE, TusAppend
from satchel.db.models import TusUpload, utcnow
from satchel.errors import DatabaseUnavailable
from satchel.storage.local import LocalStagingWriter


def hold_lease(client: TestClient, path: str, holder: str) -> None:
    with state_of(client).db.write() as session:
        session.execute(
            update(TusUpload)
            .where(TusUpload.id == path.rsplit("/", 1)[1])
            .values(busy_until=utcnow() + LEASE, busy_by=holder)
        )


def dead_local_process() -> str:
    """The lease holder name of a process of this machine that has exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    boot = processes._boot_id()
    return f"{socket.gethostname()}:{boot}:{child.pid}:1"


def test_a_lease_of_a_process_that_died_does_not_block(client: TestClient) -> None:
    data = payload(3000)
    path = new_upload(client, len(data))
    assert patch(client, path, 0, data[:1000]).status_code == 204
    # The server was killed in the middle of the next PATCH: its lease is still in the row.
    hold_lease(client, path, dead_local_process())
    assert offset_of(client, path) == 1000
    resumed = patch(client, path, 1000, data[1000:])
    assert resumed.status_code == 204, resumed.text
    assert client.get(resumed.headers["satchel-download-url"]).content == data


def test_a_live_lease_elsewhere_blocks_with_a_message_that_says_so(client: TestClient) -> None:
    path = new_upload(client, 100)
    hold_lease(client, path, "another-host:boot:123:456")
    busy = patch(client, path, 0, b"x" * 10)
    assert busy.status_code == 409
    assert "Another request is writing" in busy.json()["error"]
    assert 0 < int(busy.headers["retry-after"]) <= LEASE.total_seconds() + 1
    wrong = patch(client, path, 7, b"x" * 10)
    assert wrong.status_code == 409
    assert "Upload-Offset 7 does not match the upload's offset 0" in wrong.json()["error"]


def test_the_process_identity_tells_a_live_process_from_a_dead_one() -> None:
    assert not processes.is_gone(processes.this_process())
    assert processes.is_gone(dead_local_process())
    assert processes.is_gone(None)
    # Another machine's holder cannot be checked from here: its lease has to run out.
    assert not processes.is_gone("elsewhere:boot:1:1")
    assert not processes.is_gone("garbage")


def test_a_killed_process_not_yet_reaped_holds_no_lease() -> None:
    """A worker killed while its parent has not waited for it stays a zombie in /proc, with
    its pid and start time: it runs no more, so its lease must not block either."""
    child = subprocess.Popen(["sleep", "30"])
    try:
        holder = f"{socket.gethostname()}:{processes._boot_id()}:{child.pid}:"
        holder += str(processes._start_time(child.pid))
        assert not processes.is_gone(holder)
        child.kill()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        assert processes.is_gone(holder)
    finally:
        child.kill()
        child.wait()


def test_a_full_disk_during_a_patch_is_507_and_keeps_nothing_of_it(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    mib = 1 << 20
    data = payload(3 * mib + 5)
    path = new_upload(client, len(data))
    assert patch(client, path, 0, data[: mib + 7]).status_code == 204
    before = staged_size(client, path)
    written = {"bytes": 0}
    real_write = LocalStagingWriter.write

    def fills_up(self: LocalStagingWriter, chunk: bytes | bytearray | memoryview) -> None:
        written["bytes"] += len(chunk)
        if written["bytes"] > mib:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, chunk)

    monkeypatch.setattr(LocalStagingWriter, "write", fills_up)
    full = patch(client, path, mib + 7, data[mib + 7 :])
    assert full.status_code == 507, full.text
    assert full.json()["error"] == "Server storage is full"
    assert staged_size(client, path) == before
    assert offset_of(client, path) == mib + 7
    monkeypatch.setattr(LocalStagingWriter, "write", real_write)
    done = patch(client, path, mib + 7, data[mib + 7 :])
    assert done.status_code == 204
    assert client.get(done.headers["satchel-download-url"]).content == data


def test_a_full_disk_at_creation_is_507_and_leaves_no_row(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(self: LocalStagingWriter, chunk: bytes | bytearray | memoryview) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LocalStagingWriter, "write", no_space)
    assert create(client, 100).status_code == 507
    state = state_of(client)
    with state.db.read() as session:
        assert session.scalars(select(TusUpload.id)).all() == []
    assert list(state.files.store.iter_staging()) == []


def test_a_creation_whose_row_cannot_be_written_leaves_no_staged_blob(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = state_of(client)

    def unavailable() -> None:
        raise DatabaseUnavailable()

    monkeypatch.setattr(state.tus.db, "write", unavailable)
    assert create(client, 100).status_code == 503
    monkeypatch.undo()
    assert list(state.files.store.iter_staging()) == []


def test_the_sweep_removes_staged_blobs_no_upload_points_to(client: TestClient) -> None:
    state = state_of(client)
    kept = new_upload(client, 100)
    stray = "s" * 32
    writer = state.files.store.open_staging(stray, 0)
    writer.write(b"left by a crash")
    writer.close()
    assert state.tus.sweep(orphan_grace=timedelta(hours=1)) == 0  # too young to tell
    assert state.tus.sweep(orphan_grace=timedelta(0)) == 1
    staged = {key for key, _stat in state.files.store.iter_staging()}
    assert staged == {blob_key_of(client, kept)}


def test_a_crash_between_commit_and_registration_is_finished_later(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = state_of(client)
    data = payload(5000)
    path = new_upload(client, len(data))

    def killed(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the process died here")

    # The process dies right after the commit: none of its clean-up runs.
    monkeypatch.setattr(state.files, "register_upload", killed)
    monkeypatch.setattr(state.files.store, "delete", lambda key: None)
    monkeypatch.setattr(TusAppend, "rollback", lambda self: None)
    monkeypatch.setattr(TusAppend, "_fail", lambda self: None)
    with pytest.raises(RuntimeError, match="died here"):
        patch(client, path, 0, data)
    monkeypatch.undo()
    hold_lease(client, path, dead_local_process())
    with state.db.read() as session:
        row = session.get(TusUpload, path.rsplit("/", 1)[1])
        assert row is not None
        assert row.state == "committing"
    # The orphan sweep keeps the committed blob: the upload still points to it.
    assert "removed 0 orphan" in sweep_all_orphans(client)
    result = client.get(f"{path}/result")
    assert result.status_code == 200, result.text
    assert client.get(result.json()["download_url"]).content == data
    assert offset_of(client, path) == len(data)


def sweep_all_orphans(client: TestClient) -> str:
    from satchel.jobs.maintenance import sweep_orphans

    files = state_of(client).files
    original = files.clock
    files.clock = lambda: original() + timedelta(days=1)  # type: ignore[method-assign]
    try:
        return sweep_orphans(files)
    finally:
        files.clock = original  # type: ignore[method-assign]
