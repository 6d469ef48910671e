from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from starlette.testclient import TestClient
from tests.helpers import path_of, upload

from satchel.db.models import JobLease, StoredFile
from satchel.jobs.maintenance import expire_files, sweep_orphans, sweep_temp
from satchel.jobs.runner import Job, JobRunner
from satchel.web.state import AppState


def state_of(client: TestClient) -> AppState:
    state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
    return state


def blobs(state: AppState) -> list[str]:
    return [key for key, _ in state.files.store.iter_blobs()]


def test_expired_file_is_never_served_and_later_deleted(client: TestClient) -> None:
    state = state_of(client)
    result = upload(client, b"soon gone", expires="30m")
    with state.db.write() as session:
        session.execute(
            update(StoredFile).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert client.get(path_of(result["download_url"])).status_code == 404
    assert client.get(result["redirect"]).status_code == 404
    assert len(blobs(state)) == 1
    assert expire_files(state.files) == "deleted 1 file(s)"
    assert blobs(state) == []
    with state.db.read() as session:
        assert session.scalar(select(StoredFile.id)) is None


def test_exhausted_file_tombstone_is_purged(client: TestClient) -> None:
    state = state_of(client)
    result = upload(client, b"one shot", max_downloads="1")
    assert client.get(path_of(result["download_url"])).status_code == 200
    assert client.get(path_of(result["download_url"])).status_code == 410
    assert len(blobs(state)) == 1  # kept while the download may be resumed
    assert expire_files(state.files) == "deleted 0 file(s)"
    window = timedelta(seconds=state.settings.download_resume_window)
    after_window = datetime.now(UTC) + window + timedelta(minutes=1)
    state.files.clock = lambda: after_window
    assert expire_files(state.files) == "deleted 0 file(s), the bodies of 1 used up"
    assert blobs(state) == []
    assert client.get(path_of(result["download_url"])).status_code == 410
    later = datetime.now(UTC) + timedelta(days=2)
    state.files.clock = lambda: later
    assert expire_files(state.files) == "deleted 1 file(s)"
    assert client.get(path_of(result["download_url"])).status_code == 404


def test_orphan_blobs_and_stale_temp_files_are_swept(client: TestClient) -> None:
    state = state_of(client)
    kept = upload(client, b"keep me")
    store = state.files.store
    store.put("orphanblob0000000000000", [b"nobody points here"])
    writer = store.open_writer("unfinished0000000000000")
    writer.write(b"half")
    assert sweep_orphans(state.files) == "removed 0 orphan blob(s)"  # still within the grace period
    later = datetime.now(UTC) + timedelta(hours=2)
    state.files.clock = lambda: later
    assert sweep_orphans(state.files) == "removed 1 orphan blob(s)"
    assert len(blobs(state)) == 1
    assert client.get(path_of(kept["download_url"])).content == b"keep me"
    temp_files = list((state.settings.data_path / "store" / "tmp").iterdir())
    assert len(temp_files) == 1
    old = time.time() - 7 * 3600
    os.utime(temp_files[0], (old, old))
    assert sweep_temp(state.files) == "removed 1 temp file(s)"
    writer.abort()


def test_a_job_runs_once_per_interval_across_instances(client: TestClient) -> None:
    state = state_of(client)
    runs: list[str] = []
    clock_now = [datetime.now(UTC)]

    def make(name: str) -> JobRunner:
        job = Job("probe", timedelta(minutes=5), lambda: runs.append(name) or "ok")
        return JobRunner(state.db, [job], clock=lambda: clock_now[0])

    first, second = make("a"), make("b")
    assert first.run_due() == ["probe"]
    assert second.run_due() == []
    assert first.run_due() == []
    clock_now[0] += timedelta(minutes=6)
    assert second.run_due() == ["probe"]
    assert runs == ["a", "b"]
    with state.db.read() as session:
        lease = session.get(JobLease, "probe")
        assert lease is not None
        assert lease.last_result == "ok"
        assert lease.lease_until is None


def test_a_held_lease_blocks_other_instances(client: TestClient) -> None:
    state = state_of(client)
    now = datetime.now(UTC)
    runner = JobRunner(
        state.db, [Job("held", timedelta(seconds=1), lambda: "ran")], clock=lambda: now
    )
    runner.run_due()
    with state.db.write() as session:
        session.execute(
            update(JobLease).values(
                lease_until=now + timedelta(hours=1), last_started_at=now - timedelta(hours=1)
            )
        )
    assert (
        JobRunner(state.db, runner.jobs, clock=lambda: now + timedelta(minutes=1)).run_due() == []
    )


def test_a_running_job_keeps_its_lease(client: TestClient) -> None:
    import threading

    state = state_of(client)
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(10)
        return "slow done"

    lease = timedelta(milliseconds=300)
    first = JobRunner(state.db, [Job("slow", timedelta(seconds=0), slow, lease=lease)])
    worker = threading.Thread(target=first.run_due)
    worker.start()
    assert started.wait(5)
    time.sleep(0.8)  # well past the first lease: only renewals keep it
    other = JobRunner(state.db, [Job("slow", timedelta(seconds=0), lambda: "stolen", lease=lease)])
    assert other.run_due() == []
    release.set()
    worker.join(10)
    with state.db.read() as session:
        row = session.get(JobLease, "slow")
        assert row is not None
        assert row.last_result == "slow done"


def test_wake_runs_due_jobs_before_the_next_tick(client: TestClient) -> None:
    state = state_of(client)
    ran: list[float] = []
    runner = JobRunner(
        state.db, [Job("woken", timedelta(seconds=0), lambda: ran.append(time.monotonic()) or "ok")]
    )
    runner.start(tick=3600)
    try:
        time.sleep(0.2)
        assert ran == []  # the tick is an hour away
        woken_at = time.monotonic()
        runner.wake()
        deadline = time.monotonic() + 5
        while not ran and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ran, "wake() did not run the due job"
        assert ran[0] - woken_at < 2
    finally:
        runner.stop()
