"""Failed guesses at secrets people type (file, folder and account passwords), counted in
the database so that the limit holds across every worker and instance.

Only failures are kept: a row per scope (the file or folder or account guessed at, and the
client guessing) and time. Once a scope has ``limit`` failures within ``window``, every guess
in that scope is refused (429) until the oldest of them leaves the window.

A guess is claimed before the secret is compared: counting and writing its row is one
transaction, serialized per scope, and the row counts as a failure until the guess proves
right and takes it back. So guesses sent at the same moment cannot all pass the count while
the slow comparisons run: at most ``limit`` are ever compared per window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from satchel.db.engine import Database
from satchel.db.models import FailedGuess, utcnow
from satchel.errors import RateLimited


class GuessLimiter:
    def __init__(
        self,
        db: Database,
        limit: int,
        window: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.limit = limit
        self.window = window
        self.clock = clock

    def claim(self, *scopes: str) -> list[int]:
        """Counts one guess in each of ``scopes`` as failed, or 429 when any has used up its
        failures. The ids returned are given to ``right()`` when the guess was right."""
        if not self.limit:
            return []
        scopes = tuple(scope[:96] for scope in scopes)
        now = self.clock()
        with self.db.write() as session:
            if not self.db.is_sqlite:  # SQLite's BEGIN IMMEDIATE already serializes writers
                for scope in sorted(set(scopes)):  # one order: two claims never deadlock
                    session.execute(
                        text("SELECT pg_advisory_xact_lock(hashtext(:scope))"),
                        {"scope": f"guess:{scope}"},
                    )
            for scope in scopes:
                self._refuse_when_used_up(session, scope, now)
            rows = [FailedGuess(scope=scope, at=now) for scope in scopes]
            session.add_all(rows)
            session.flush()
            return [row.id for row in rows]

    def right(self, claimed: list[int]) -> None:
        """The claimed guess was right: it is no failure."""
        if claimed:
            with self.db.write() as session:
                session.execute(delete(FailedGuess).where(FailedGuess.id.in_(claimed)))

    def _refuse_when_used_up(self, session: Session, scope: str, now: datetime) -> None:
        count, oldest = session.execute(
            select(func.count(FailedGuess.id), func.min(FailedGuess.at)).where(
                FailedGuess.scope == scope, FailedGuess.at > now - self.window
            )
        ).one()
        if count >= self.limit:
            wait = (oldest + self.window - now).total_seconds()
            raise RateLimited(int(wait) + 1, "Too many wrong passwords, try again later")

    def sweep(self) -> int:
        with self.db.write() as session:
            result = session.execute(
                delete(FailedGuess).where(FailedGuess.at <= self.clock() - self.window)
            )
        return int(getattr(result, "rowcount", 0) or 0)


def client_scope(user_id: int | None, ip: str) -> str:
    return f"user:{user_id}" if user_id is not None else f"ip:{ip}"
