"""The audit log: security events in the database (logins, logouts, password and key changes,
deletions, every admin action), each with its time, actor, client address, target and a short
detail. Callers pass names and ids, never a secret; the detail is cut short all the same."""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, or_, select

from satchel.db.engine import Database
from satchel.db.models import AuditEvent, User, utcnow

MAX_LIMIT = 1000
PRUNE_BATCH = 5000  # rows per delete: short transactions, within the statement timeout
_FIELD = 255
# The request's client address, set by the web layer for the whole request: the core
# functions that record events are not handed one.
_CLIENT_IP: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "satchel_audit_ip", default=None
)
# Whatever looks like one of Satchel's secrets is never written, even if a caller slips.
_SECRETS = re.compile(r"sat_[0-9A-Za-z]{8,}|[0-9A-Za-z_-]{40,}")


class Event(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGOUT = "logout"
    PASSWORD_CHANGED = "password.changed"  # noqa: S105 - an event name
    API_KEY_CREATED = "apikey.created"
    API_KEY_REVOKED = "apikey.revoked"
    V2_KEYS_CHANGED = "v2keys.changed"
    FILE_DELETED = "file.deleted"
    FOLDER_DELETED = "folder.deleted"
    TRASH_DELETED = "trash.deleted"
    ADMIN_PACKAGE_SET = "admin.user.package"
    ADMIN_USER_DISABLED = "admin.user.disabled"
    ADMIN_USER_ENABLED = "admin.user.enabled"
    ADMIN_API_ACCESS = "admin.user.api"
    ADMIN_PACKAGE_SAVED = "admin.package.saved"
    ADMIN_INVITE_CREATED = "admin.invite.created"
    ADMIN_INVITE_REVOKED = "admin.invite.revoked"
    ADMIN_FILE_REMOVED = "admin.file.removed"


@dataclass(frozen=True)
class Entry:
    at: datetime
    event: str
    actor_id: int | None
    actor: str | None  # the actor's username, when the account still exists
    ip: str | None
    target: str
    detail: str


@contextmanager
def client_address(ip: str | None) -> Iterator[None]:
    """Events recorded inside carry ``ip`` (one request's worth of work)."""
    token = _CLIENT_IP.set(ip)
    try:
        yield
    finally:
        _CLIENT_IP.reset(token)


def clean(text: str) -> str:
    """Short, one line, and nothing shaped like a key or token."""
    flat = " ".join(str(text).split())
    return _SECRETS.sub("[hidden]", flat)[:_FIELD]


def record(
    db: Database,
    event: Event,
    actor_id: int | None = None,
    target: str = "",
    detail: str = "",
    ip: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    row = AuditEvent(
        at=clock(),
        event=str(event),
        actor_id=actor_id,
        ip=(ip or _CLIENT_IP.get() or None),
        target=clean(target),
        detail=clean(detail),
    )
    with db.write() as session:
        session.add(row)


class AuditLog:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def prune(self, keep: timedelta) -> int:
        """Deletes the events older than ``keep`` (none when it is zero), oldest first."""
        if not keep:
            return 0
        cutoff, removed = self.clock() - keep, 0
        while True:
            with self.db.write() as session:
                ids = session.scalars(
                    select(AuditEvent.id)
                    .where(AuditEvent.at < cutoff)
                    .order_by(AuditEvent.id)
                    .limit(PRUNE_BATCH)
                ).all()
                if ids:
                    session.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids)))
            removed += len(ids)
            if len(ids) < PRUNE_BATCH:
                return removed

    def latest(
        self, limit: int = 50, event: str | None = None, user: User | None = None
    ) -> list[Entry]:
        """Newest first. ``event`` matches the name or a prefix ending in a dot ("admin.");
        ``user`` matches what the user did and what was done to the user."""
        query = (
            select(AuditEvent, User.username)
            .outerjoin(User, User.id == AuditEvent.actor_id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(max(1, min(limit, MAX_LIMIT)))
        )
        if event:
            query = query.where(
                AuditEvent.event.startswith(event, autoescape=True)
                if event.endswith(".")
                else AuditEvent.event == event
            )
        if user is not None:
            query = query.where(
                or_(AuditEvent.actor_id == user.id, AuditEvent.target == user_target(user))
            )
        with self.db.read() as session:
            rows = session.execute(query).all()
        return [_entry(row, name) for row, name in rows]


def user_target(user: User) -> str:
    return f"user:{user.username}"


def _entry(row: AuditEvent, username: str | None) -> Entry:
    return Entry(row.at, row.event, row.actor_id, username, row.ip, row.target, row.detail)


EVENTS = tuple(str(event) for event in Event)
