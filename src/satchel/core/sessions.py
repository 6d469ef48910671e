"""Browser logins: a random token in the cookie, its SHA-256 in the ``sessions`` table."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from satchel.core.audit import Event, record
from satchel.core.ids import hash_token
from satchel.db.engine import Database
from satchel.db.models import User, UserSession, utcnow


class SessionService:
    def __init__(
        self, db: Database, lifetime: timedelta, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.lifetime = lifetime
        self.clock = clock

    def create(self, user: User, ip: str | None) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self.db.write() as session:
            session.add(
                UserSession(
                    token_hash=hash_token(token),
                    user_id=user.id,
                    created_at=now,
                    expires_at=now + self.lifetime,
                    ip=ip,
                )
            )
        return token

    def user_for(self, token: str | None) -> User | None:
        """The enabled user a live session token belongs to, else None."""
        if not token or len(token) > 128:
            return None
        with self.db.read() as session:
            row = session.execute(
                select(UserSession.expires_at, User)
                .join(User, User.id == UserSession.user_id)
                .where(UserSession.token_hash == hash_token(token))
            ).first()
        if row is None:
            return None
        expires_at, user = row
        if expires_at <= self.clock() or user.is_disabled:
            return None
        return user

    def end(self, token: str) -> None:
        statement = delete(UserSession).where(UserSession.token_hash == hash_token(token))
        with self.db.write() as session:
            ended = session.scalar(statement.returning(UserSession.user_id))
        if ended is not None:
            record(self.db, Event.LOGOUT, ended, f"user:{ended}")

    def end_all(self, user_id: int, keep: str | None = None) -> None:
        """Logs a user out everywhere (after a password change, all but the current one)."""
        statement = delete(UserSession).where(UserSession.user_id == user_id)
        if keep is not None:
            statement = statement.where(UserSession.token_hash != hash_token(keep))
        with self.db.write() as session:
            session.execute(statement)

    def sweep(self) -> int:
        with self.db.write() as session:
            result = session.execute(
                delete(UserSession).where(UserSession.expires_at <= self.clock())
            )
        return int(getattr(result, "rowcount", 0) or 0)
