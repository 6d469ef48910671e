"""Resumptions of counted downloads of files with a download limit.

A counted download's signed ETag names the byte range it was counted for; sent back in
If-Range, it lets the client fetch the rest of that range without counting again. The server
cannot tell how much of an answer reached the client, so what bounds a resumption is kept
here, per counted download: a resumption starts no earlier than the one before it, and a
download is resumed at most ``RESUMES`` times within its resume window. Bytes beyond the limit
are never served to anyone but the one counted download, and to it only a bounded number of
times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, select, text

from satchel.db.engine import Database
from satchel.db.models import DownloadResume, utcnow

RESUMES = 10  # a link cut ten times over is given up on; the download was counted


class ResumeLedger:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def take(self, file_id: int, download: int, start: int, until: datetime) -> bool:
        """True when the ``download``-th download of the file may be resumed from ``start``
        (and records it), False when it was resumed from further on already or too often."""
        with self.db.write() as session:
            if not self.db.is_sqlite:  # SQLite's BEGIN IMMEDIATE already serializes writers
                key = f"resume:{file_id}:{download}"
                session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
            row = session.scalar(
                select(DownloadResume).where(
                    DownloadResume.file_id == file_id, DownloadResume.download == download
                )
            )
            if row is None:
                session.add(
                    DownloadResume(
                        file_id=file_id,
                        download=download,
                        resumes=1,
                        last_start=start,
                        expires_at=until,
                    )
                )
                return True
            if row.resumes >= RESUMES or start < row.last_start:
                return False
            row.resumes += 1
            row.last_start = start
            return True

    def sweep(self) -> int:
        with self.db.write() as session:
            result = session.execute(
                delete(DownloadResume).where(DownloadResume.expires_at <= self.clock())
            )
        return int(getattr(result, "rowcount", 0) or 0)
