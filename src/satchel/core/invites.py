"""Registration invites for ``registration = invite``: one-time codes, only their SHA-256 kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update

from satchel.core.ids import hash_token, new_short_code
from satchel.db.engine import Database
from satchel.db.models import Invite, User, utcnow
from satchel.errors import BadRequest, Forbidden, NotFound

CODE_LENGTH = 24  # base62: 142 bits


class InviteService:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create(self, expires: timedelta | None = None) -> str:
        """A new code, valid for ``expires`` (None: until used); shown once, never stored."""
        code = new_short_code(CODE_LENGTH)
        now = self.clock()
        with self.db.write() as session:
            session.add(
                Invite(
                    code_hash=hash_token(code),
                    created_at=now,
                    expires_at=None if expires is None else now + expires,
                )
            )
        return code

    def use(self, code: str, user_id: int | None = None) -> int:
        """Marks the invite used and returns its id. One conditional UPDATE: of two
        registrations sending the same code at once, only one gets it."""
        now = self.clock()
        statement = (
            update(Invite)
            .where(
                Invite.code_hash == _hash(code),
                Invite.used_at.is_(None),
                or_(Invite.expires_at.is_(None), Invite.expires_at > now),
            )
            .values(used_at=now, used_by=user_id)
            .returning(Invite.id)
            .execution_options(synchronize_session=False)
        )
        with self.db.write() as session:
            invite_id = session.scalar(statement)
        if invite_id is None:
            raise self._unusable(code)
        return int(invite_id)

    def redeem(self, code: str, create: Callable[[], User]) -> User:
        """Takes the invite, then creates the account; a failed creation hands the code back."""
        invite_id = self.use(code)
        try:
            user = create()
        except BaseException:
            self._set(invite_id, used_at=None, used_by=None)
            raise
        self._set(invite_id, used_by=user.id)
        return user

    def revoke(self, invite_id: int) -> None:
        """An unused invite stops working (its row goes: its code is then "not valid")."""
        with self.db.write() as session:
            invite = session.get(Invite, invite_id)
            if invite is None:
                raise NotFound("No such invite")
            if invite.used_at is not None:
                raise BadRequest("This invite has been used already")
            session.execute(delete(Invite).where(Invite.id == invite_id))

    def _set(self, invite_id: int, **values: object) -> None:
        with self.db.write() as session:
            session.execute(
                update(Invite)
                .where(Invite.id == invite_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def _unusable(self, code: str) -> Forbidden:
        with self.db.read() as session:
            invite = session.scalar(select(Invite).where(Invite.code_hash == _hash(code)))
        if invite is None:
            return Forbidden("This invite code is not valid")
        if invite.used_at is not None:
            return Forbidden("This invite code has already been used")
        return Forbidden("This invite code has expired")


def _hash(code: str) -> str:
    return hash_token(code.strip())
