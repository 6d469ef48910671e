"""Failed guesses at secrets people type (file, folder and account passwords), counted in
the database so that the limit holds across every worker and instance.

Only failures are stored: a row per scope (the file or folder or account guessed at, and the
client guessing) and time. Once a scope has ``limit`` failures within ``window``, every guess
in that scope is refused (429) until the oldest of them leaves the window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select

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

    def check(self, *scopes: str) -> None:
        """429 when any of ``scopes`` has used up its failures."""
        if not self.limit:
            return
        since = self.clock() - self.window
        with self.db.connect() as conn:
            for scope in scopes:
                count, oldest = conn.execute(
                    select(func.count(FailedGuess.id), func.min(FailedGuess.at)).where(
                        FailedGuess.scope == scope, FailedGuess.at > since
                    )
                ).one()
                if count >= self.limit:
                    wait = (oldest + self.window - self.clock()).total_seconds()
                    raise RateLimited(int(wait) + 1, "Too many wrong passwords, try again later")

    def failed(self, *scopes: str) -> None:
        now = self.clock()
        with self.db.write_connection() as conn:
            conn.execute(insert(FailedGuess), [{"scope": s[:96], "at": now} for s in scopes])

    def sweep(self) -> int:
        with self.db.write() as session:
            result = session.execute(
                delete(FailedGuess).where(FailedGuess.at <= self.clock() - self.window)
            )
        return int(getattr(result, "rowcount", 0) or 0)


def client_scope(user_id: int | None, ip: str) -> str:
    return f"user:{user_id}" if user_id is not None else f"ip:{ip}"
