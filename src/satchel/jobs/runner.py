"""Background jobs that run once per interval across all instances (a lease per job).

Each job has a row in ``job_leases``. An instance runs a job only after it has taken the row's
lease in one transaction: the row is selected only when its lease is free and its interval has
passed, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (an instance taking it at the same moment holds
the row; the others pass over it at once instead of queueing behind it and then finding it
taken), and SQLite's ``BEGIN IMMEDIATE`` serializes the writers of one machine. While the job
runs its lease is renewed. The lease names its holder's process (core.processes): when that
process is gone from this machine (killed, crashed), the job is free at once; the lease of an
instance on another machine that died runs out after ``lease``, and another instance takes the
job again.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from satchel import observability
from satchel.core.processes import is_gone, this_process
from satchel.db.engine import Database
from satchel.db.models import JobLease, utcnow

log = logging.getLogger("satchel.jobs")
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Job:
    name: str
    interval: timedelta
    run: Callable[[], str]
    # How long a run that stopped renewing (its instance died) blocks the job for the others.
    lease: timedelta = timedelta(minutes=5)


class JobRunner:
    def __init__(self, db: Database, jobs: list[Job], clock: Clock = utcnow) -> None:
        self.db = db
        self.jobs = jobs
        self.clock = clock
        self._token = secrets.token_hex(4)  # two runners of one process hold apart
        self.owner = ""  # set when a job is taken: the process may have forked since
        self._stop = threading.Event()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None

    def run_due(self) -> list[str]:
        """Runs every job whose interval has passed and whose lease this instance wins."""
        ran = []
        for job in self.jobs:
            if self._acquire(job):
                self._run(job)
                ran.append(job.name)
        return ran

    def start(self, tick: float) -> None:
        self._thread = threading.Thread(
            target=self._loop, args=(tick,), name="satchel-jobs", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        """Runs the due jobs now rather than at the next tick (new work was queued)."""
        self._woken.set()

    def stop(self) -> None:
        self._stop.set()
        self._woken.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self, tick: float) -> None:
        while True:
            self._woken.wait(tick)
            self._woken.clear()
            if self._stop.is_set():
                return
            try:
                self.run_due()
            except Exception:
                log.exception("job runner tick failed")

    def _acquire(self, job: Job) -> bool:
        now = self.clock()
        self._ensure_row(job.name)
        due = (
            select(JobLease.owner, JobLease.lease_until)
            .where(JobLease.name == job.name)
            .where(
                or_(
                    JobLease.last_started_at.is_(None),
                    JobLease.last_started_at <= now - job.interval,
                )
            )
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite writers are serialized
        )
        self.owner = f"{self._token}@{this_process()}"
        take = (
            update(JobLease)
            .where(JobLease.name == job.name)
            .values(owner=self.owner, lease_until=now + job.lease, last_started_at=now)
        )
        with self.db.write() as session:
            row = session.execute(due).first()
            if row is None or (_held(row.lease_until, now) and not _holder_gone(row.owner)):
                return False  # not due, leased, or being taken by another instance right now
            session.execute(take)
        return True

    def _renew_until(self, job: Job, done: threading.Event) -> None:
        """Extends the lease while the job runs, so a long run is never taken over."""
        while not done.wait(job.lease.total_seconds() / 3):
            statement = (
                update(JobLease)
                .where(JobLease.name == job.name, JobLease.owner == self.owner)
                .values(lease_until=self.clock() + job.lease)
            )
            try:
                with self.db.write() as session:
                    renewed = session.execute(statement).rowcount  # type: ignore[attr-defined]
            except Exception:
                log.exception("could not renew the lease of job %s", job.name)
                continue
            if not renewed:
                log.error("job %s lost its lease (not renewed for %s)", job.name, job.lease)

    def _ensure_row(self, name: str) -> None:
        with self.db.read() as session:
            if session.scalar(select(JobLease.name).where(JobLease.name == name)):
                return
        try:
            with self.db.write() as session:
                session.add(JobLease(name=name))
        except IntegrityError:
            pass  # another instance created it first

    def _run(self, job: Job) -> None:
        done = threading.Event()
        heartbeat = threading.Thread(target=self._renew_until, args=(job, done), daemon=True)
        heartbeat.start()
        failed = False
        try:
            result = job.run()
        except Exception as exc:
            log.exception("job %s failed", job.name)
            result, failed = f"failed: {type(exc).__name__}", True
        finally:
            done.set()
            heartbeat.join()
            observability.job_finished(job.name, failed)
        statement = (
            update(JobLease)
            .where(JobLease.name == job.name, JobLease.owner == self.owner)
            .values(lease_until=None, last_finished_at=self.clock(), last_result=result[:255])
        )
        with self.db.write() as session:
            session.execute(statement)
        log.info("job %s: %s", job.name, result)


def _held(lease_until: datetime | None, now: datetime) -> bool:
    return lease_until is not None and lease_until >= now


def _holder_gone(owner: str | None) -> bool:
    """True when the lease's holder is a process of this machine that no longer runs."""
    return is_gone((owner or "").rpartition("@")[2])
