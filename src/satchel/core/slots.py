"""Uploads in progress, counted for the packages' ``concurrent_uploads``.

``UploadSlots`` is what the upload policy needs; ``DatabaseSlots`` keeps the slots as rows, so
every worker of a ``satchel serve`` (and every instance on the same database) counts the same
uploads. A slot whose process died on this machine frees itself; one of a process on another
machine counts until it expires.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, select, text

from satchel.core.processes import is_gone, this_process
from satchel.db.engine import Database
from satchel.db.models import UploadSlot, utcnow
from satchel.errors import TooManyUploads

RETRY_AFTER = 5


class UploadSlots(Protocol):
    def acquire(self, who: str, limit: int) -> str:
        """A slot for ``who`` (TooManyUploads when ``limit`` are taken); its id."""

    def release(self, slot: str) -> None: ...


class DatabaseSlots:
    def __init__(
        self, db: Database, lifetime: timedelta, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.lifetime = lifetime
        self.clock = clock

    def acquire(self, who: str, limit: int) -> str:
        now = self.clock()
        slot = secrets.token_hex(16)
        with self.db.write() as session:
            if not self.db.is_sqlite:
                # SQLite's BEGIN IMMEDIATE already serializes writers; PostgreSQL needs a lock,
                # or two uploads could both see a free slot and take it.
                session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:who))"), {"who": who})
            rows = session.execute(
                select(UploadSlot.id, UploadSlot.holder, UploadSlot.expires_at).where(
                    UploadSlot.who == who
                )
            ).all()
            stale = [row.id for row in rows if row.expires_at <= now or is_gone(row.holder)]
            if stale:
                session.execute(delete(UploadSlot).where(UploadSlot.id.in_(stale)))
            if len(rows) - len(stale) >= limit:
                raise TooManyUploads(RETRY_AFTER, f"Too many uploads at once (at most {limit})")
            session.add(
                UploadSlot(
                    id=slot,
                    who=who[:96],
                    holder=this_process(),
                    acquired_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return slot

    def release(self, slot: str) -> None:
        with self.db.write() as session:
            session.execute(delete(UploadSlot).where(UploadSlot.id == slot))
