"""Background jobs exactly once across instances: runners with databases of their own (as
instances have) race for each job's lease; on PostgreSQL a lease row another instance is
taking is passed over, not waited for. `satchel serve --no-jobs` runs none and `satchel jobs`
runs them alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from tests.conftest import PgDatabases, free_port

from satchel.db.engine import Database
from satchel.db.models import JobLease
from satchel.jobs.runner import Job, JobRunner

INSTANCES = 6
ROUNDS = 4
SATCHEL = str(Path(sys.executable).with_name("satchel"))


def test_each_job_runs_once_per_interval_whatever_the_instances(database_url: str) -> None:
    runs: Counter[tuple[str, int]] = Counter()
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    current_round = [0]
    lock = threading.Lock()

    def job(name: str) -> Job:
        def run() -> str:
            with lock:
                runs[name, current_round[0]] += 1
            time.sleep(0.02)  # long enough for the others to be there meanwhile
            return "ok"

        return Job(name, timedelta(minutes=1), run)

    databases = [Database(database_url) for _ in range(INSTANCES)]
    runners = [
        JobRunner(db, [job("expire"), job("purge"), job("sweep")], clock=lambda: now[0])
        for db in databases
    ]
    try:
        for number in range(ROUNDS):
            current_round[0] = number
            start = threading.Barrier(INSTANCES)

            def race(runner: JobRunner, start: threading.Barrier = start) -> None:
                start.wait()
                runner.run_due()

            threads = [threading.Thread(target=race, args=(r,)) for r in runners]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            now[0] += timedelta(seconds=61)
    finally:
        for db in databases:
            db.dispose()
    expected = {(name, n): 1 for name in ("expire", "purge", "sweep") for n in range(ROUNDS)}
    assert dict(runs) == expected


def test_a_lease_row_being_taken_is_passed_over_not_waited_for(pg_database: str) -> None:
    """Another instance holds the row locked (it is taking the lease): this one goes on at once
    with the next job instead of waiting for the lock (up to the statement timeout, then 503)."""
    db = Database(pg_database, statement_timeout=5)
    ran: list[str] = []
    jobs = [
        Job(name, timedelta(minutes=1), lambda name=name: ran.append(name) or "ok")  # type: ignore[misc]
        for name in ("locked-job", "free-job")
    ]
    runner = JobRunner(db, jobs)
    engine = create_engine(pg_database)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM job_leases WHERE name IN ('locked-job', 'free-job')"))
            conn.execute(text("INSERT INTO job_leases (name) VALUES ('locked-job'), ('free-job')"))
        with engine.connect() as other, other.begin():
            other.execute(text("SELECT * FROM job_leases WHERE name = 'locked-job' FOR UPDATE"))
            started = time.monotonic()
            assert runner.run_due() == ["free-job"]
            assert time.monotonic() - started < 2
        assert runner.run_due() == ["locked-job"]  # free again: due and taken
        assert ran == ["free-job", "locked-job"]
    finally:
        engine.dispose()
        db.dispose()


def test_a_dead_instances_lease_runs_out_and_the_job_is_taken_again(database_url: str) -> None:
    db = Database(database_url)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    try:
        with db.write() as session:
            session.execute(
                text(
                    "INSERT INTO job_leases (name, owner, lease_until, last_started_at) "
                    "VALUES ('expire', 'dead-instance', :until, :started)"
                ),
                {"until": start + timedelta(minutes=5), "started": start},
            )
        job = Job("expire", timedelta(minutes=1), lambda: "ok")
        assert JobRunner(db, [job], clock=lambda: start + timedelta(minutes=4)).run_due() == []
        later = JobRunner(db, [job], clock=lambda: start + timedelta(minutes=5, seconds=1))
        assert later.run_due() == ["expire"]
    finally:
        db.dispose()


HOLDS_A_JOB = """
import sys, threading
from datetime import timedelta
from satchel.db.engine import Database
from satchel.jobs.runner import Job, JobRunner
hold = threading.Event()
JobRunner(Database(sys.argv[1]), [Job("expire", timedelta(minutes=1), lambda: hold.wait() and "")]).run_due()
"""


def test_a_killed_holders_lease_frees_its_job_at_once(database_url: str) -> None:
    """A runner killed in the middle of a job (SIGKILL, no clean-up) leaves its lease; on the
    same machine its process is known to be gone, so the job is taken again at its next turn,
    not five minutes later."""
    db = Database(database_url)
    holder = subprocess.Popen([sys.executable, "-c", HOLDS_A_JOB, database_url])
    try:
        assert wait_until(lambda: _lease_of(db, "expire")[0], 30), "the job never started"
        owner, until = _lease_of(db, "expire")
        assert f":{holder.pid}:" in owner
        job = Job("expire", timedelta(minutes=1), lambda: "ok")
        after_interval = until - timedelta(minutes=4)  # interval passed, lease still running
        alive = JobRunner(db, [job], clock=lambda: after_interval)
        assert alive.run_due() == []  # its holder still runs
        holder.kill()
        holder.wait()
        assert JobRunner(db, [job], clock=lambda: after_interval).run_due() == ["expire"]
    finally:
        holder.kill()
        holder.wait()
        db.dispose()


def _lease_of(db: Database, name: str) -> tuple[str, datetime]:
    with db.read() as session:
        row = session.get(JobLease, name)
        return (row.owner or "", row.lease_until) if row else ("", datetime.min)  # type: ignore[return-value]


# -- the commands -----------------------------------------------------------------------------------


def command_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SATCHEL_")}
    return {
        **inherited,
        "SATCHEL_DATA_DIR": str(tmp_path / "data"),
        "SATCHEL_DATABASE_URL": database_url,
        "SATCHEL_MASTER_KEYS": Fernet.generate_key().decode(),
        "SATCHEL_JOB_INTERVAL": "1s",
        "SATCHEL_RATE_LIMITS_ENABLED": "false",
    }


def leases(database_url: str) -> dict[str, str | None]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, last_result FROM job_leases")).all()
    finally:
        engine.dispose()
    return dict(rows)  # type: ignore[arg-type]


def wait_until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_serve_with_no_jobs_runs_none(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = command_env(tmp_path, database_url)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [SATCHEL, "serve", "--port", str(port), "--workers", "1", "--no-jobs"],
            env={**env, "SATCHEL_PUBLIC_URL": f"http://127.0.0.1:{port}"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        up = wait_until(lambda: _healthy(port), 30)
        assert up, log.read_text()
        time.sleep(2.5)  # more than two job ticks
        assert leases(database_url) == {}
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_satchel_jobs_runs_every_job_and_stops_on_sigterm(
    tmp_path: Path, database_url: str
) -> None:
    env = command_env(tmp_path, database_url)
    log = tmp_path / "jobs.log"
    with log.open("wb") as out:
        process = subprocess.Popen([SATCHEL, "jobs"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        expected = {"expire_files", "purge_trash", "expire_tus", "sweep_temp", "sweep_orphans"}
        assert wait_until(
            lambda: expected <= {n for n, r in leases(database_url).items() if r}, 30
        ), (leases(database_url), log.read_text())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Satchel jobs every 1 s" in log.read_text()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_instances_starting_at_once_on_a_new_database_migrate_in_turn(
    tmp_path: Path, pg_databases: PgDatabases
) -> None:
    name = f"satchel_test_{uuid.uuid4().hex[:10]}"
    with pg_databases.admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    pg_databases.names.append(name)  # dropped with the others
    url = pg_databases.base.set(database=name).render_as_string(hide_password=False)
    env = command_env(tmp_path, url)
    migrations = [
        subprocess.Popen(
            [SATCHEL, "admin", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in migrations]
    assert [process.returncode for process in migrations] == [0, 0, 0], outputs
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine.dispose()
