"""Expiry, tombstones, stale temp files and orphan blobs."""

from __future__ import annotations

from datetime import timedelta
from itertools import islice

from sqlalchemy import and_, or_, select, update

from satchel.config import Settings
from satchel.core.audit import AuditLog
from satchel.core.drive.trash import TrashService
from satchel.core.files import FileService
from satchel.core.guesses import GuessLimiter
from satchel.core.imports import UrlImportService
from satchel.core.resumes import ResumeLedger
from satchel.core.sessions import SessionService
from satchel.core.tus import TusService
from satchel.core.v2auth import V2AuthService
from satchel.db.models import FileState, StoredFile
from satchel.jobs.runner import Job

TOMBSTONE_DAYS = 1
BATCH = 500


def spend_used_up(files: FileService) -> int:
    """The bodies of used-up files, once their downloads can no longer be resumed."""
    cutoff = files.clock() - timedelta(seconds=files.settings.download_resume_window)
    spent = 0
    while True:
        with files.db.read() as session:
            rows = session.execute(
                select(StoredFile.id, StoredFile.blob_key)
                .where(StoredFile.state == FileState.GONE, StoredFile.gone_at <= cutoff)
                .limit(BATCH)
            ).all()
        for file_id, blob_key in rows:
            files.store.delete(blob_key)
            with files.db.write() as session:
                session.execute(
                    update(StoredFile).where(StoredFile.id == file_id).values(state=FileState.SPENT)
                )
        spent += len(rows)
        if len(rows) < BATCH:
            return spent


def expire_files(files: FileService) -> str:
    """Deletes expired files, and files used up long enough ago (their link said 410 meanwhile)."""
    spent = spend_used_up(files)
    now = files.clock()
    # Never before the used-up files' resumptions are over.
    resume = timedelta(seconds=files.settings.download_resume_window)
    tombstone_cutoff = now - max(timedelta(days=TOMBSTONE_DAYS), resume)
    condition = or_(
        and_(StoredFile.expires_at.is_not(None), StoredFile.expires_at <= now),
        and_(
            StoredFile.state.in_((FileState.GONE, FileState.SPENT)),
            StoredFile.gone_at <= tombstone_cutoff,
        ),
        and_(
            StoredFile.max_downloads.is_not(None),
            StoredFile.downloads >= StoredFile.max_downloads,
            StoredFile.last_download_at <= tombstone_cutoff,
        ),
    )
    deleted = 0
    while True:
        with files.db.read() as session:
            ids = list(session.scalars(select(StoredFile.id).where(condition).limit(BATCH)))
        files.delete_files(ids)
        deleted += len(ids)
        if len(ids) < BATCH:
            return f"deleted {deleted} file(s)" + (
                f", the bodies of {spent} used up" if spent else ""
            )


def sweep_temp(files: FileService) -> str:
    removed = files.store.sweep_temp(timedelta(seconds=files.settings.temp_max_age))
    return f"removed {removed} temp file(s)"


def sweep_orphans(files: FileService) -> str:
    """Blobs no row points to (a crash between commit and insert) older than the grace period."""
    cutoff = files.clock() - timedelta(seconds=files.settings.orphan_grace)
    candidates = (key for key, stat in files.store.iter_blobs() if stat.modified < cutoff)
    removed = 0
    while batch := list(islice(candidates, BATCH)):
        known = files.known_blob_keys(batch)
        for key in batch:
            if key not in known:
                files.store.delete(key)
                removed += 1
    return f"removed {removed} orphan blob(s)"


def maintenance_jobs(
    *,
    settings: Settings,
    files: FileService,
    trash: TrashService,
    sessions: SessionService,
    imports: UrlImportService,
    v2auth: V2AuthService,
    tus: TusService,
    guesses: GuessLimiter,
    audit: AuditLog,
    resumes: ResumeLedger,
) -> list[Job]:
    interval = timedelta(seconds=settings.job_interval)
    retention = timedelta(seconds=settings.trash_retention)
    every_ten = max(interval, timedelta(minutes=10))
    return [
        Job(
            "expire_tus",
            interval,
            lambda: (
                f"removed {tus.sweep(timedelta(seconds=settings.orphan_grace))} "
                "expired or orphan tus upload(s)"
            ),
        ),
        # Imports themselves run in their own workers (core.imports.ImportWorkers).
        Job("fail_stale_imports", interval, imports.fail_stale),
        Job("sweep_v2_tokens", every_ten, lambda: f"removed {v2auth.sweep()} token(s)"),
        Job("expire_files", interval, lambda: expire_files(files)),
        Job(
            "purge_trash",
            interval,
            lambda: f"purged {trash.purge(retention)} file(s) from the trash",
        ),
        Job("sweep_sessions", every_ten, lambda: f"ended {sessions.sweep()} session(s)"),
        Job(
            "sweep_failed_guesses",
            every_ten,
            lambda: f"forgot {guesses.sweep()} failed password guess(es)",
        ),
        Job(
            "sweep_download_resumes",
            every_ten,
            lambda: f"forgot the resumptions of {resumes.sweep()} download(s)",
        ),
        Job(
            "prune_audit",
            max(interval, timedelta(hours=1)),
            lambda: (
                f"deleted {audit.prune(timedelta(seconds=settings.audit_retention))} audit event(s)"
            ),
        ),
        Job("sweep_temp", interval, lambda: sweep_temp(files)),
        Job("sweep_orphans", every_ten, lambda: sweep_orphans(files)),
    ]
