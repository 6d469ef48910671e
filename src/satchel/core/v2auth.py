"""/api/v2 credentials: key pairs, the one access token per user, and download tokens."""

from __future__ import annotations

import hmac
import secrets
import string
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from satchel.core.audit import Event, record
from satchel.core.ids import hash_token
from satchel.db.engine import Database
from satchel.db.models import DownloadToken, User, V2Token, utcnow

TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 128
KEY_LENGTH = 64
IDLE_EXPIRY = timedelta(hours=1)
DOWNLOAD_TOKEN_LIFETIME = timedelta(hours=24)


def new_access_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def new_key() -> str:
    return secrets.token_hex(KEY_LENGTH // 2)


class V2AuthService:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    # -- key pairs ----------------------------------------------------------------------

    def generate_keys(self, user_id: int) -> tuple[str, str]:
        """A new pair, replacing the old one: key1 is kept as it is, key2 only as a hash."""
        key1, key2 = new_key(), new_key()
        with self.db.write() as session:
            session.execute(
                update(User)
                .where(User.id == user_id)
                .values(v2_key1=key1, v2_key2_hash=hash_token(key2))
            )
        record(self.db, Event.V2_KEYS_CHANGED, user_id, f"user:{user_id}", "new key pair")
        return key1, key2

    def user_for_keys(self, key1: str, key2: str) -> User | None:
        if len(key1) > 128 or len(key2) > 128:
            return None
        with self.db.read() as session:
            user = session.scalar(select(User).where(User.v2_key1 == key1))
        expected = user.v2_key2_hash if user is not None and user.v2_key2_hash else "0" * 64
        matches = hmac.compare_digest(expected, hash_token(key2))
        if user is None or not matches or user.is_disabled or not user.api_enabled:
            return None
        return user

    # -- access tokens ------------------------------------------------------------------

    def issue_token(self, user: User) -> str:
        """A new token for ``user``; the one it had before stops working."""
        token = new_access_token()
        now = self.clock()
        values = {"token_hash": hash_token(token), "created_at": now, "last_used_at": now}
        for _attempt in range(3):
            try:
                with self.db.write() as session:
                    session.execute(delete(V2Token).where(V2Token.user_id == user.id))
                    session.add(V2Token(user_id=user.id, **values))
                return token
            except IntegrityError:
                continue  # two authorize calls at once: the later one wins on retry
        raise RuntimeError("could not store the access token")

    def user_for_token(self, token: str, account_id: str) -> User | None:
        """The user of a live token whose account id matches; using it keeps it alive."""
        if len(token) != TOKEN_LENGTH or not account_id.isdigit():
            return None
        now = self.clock()
        with self.db.read() as session:
            row = session.execute(
                select(V2Token, User)
                .join(User, User.id == V2Token.user_id)
                .where(V2Token.token_hash == hash_token(token))
            ).first()
        if row is None:
            return None
        stored, user = row
        if str(user.id) != account_id or user.is_disabled or not user.api_enabled:
            return None
        if stored.last_used_at + IDLE_EXPIRY <= now:
            return None
        with self.db.write() as session:
            session.execute(update(V2Token).where(V2Token.id == stored.id).values(last_used_at=now))
        return user

    def disable_token(self, token: str, account_id: str) -> bool:
        user = self.user_for_token(token, account_id)
        if user is None:
            return False
        with self.db.write() as session:
            session.execute(delete(V2Token).where(V2Token.token_hash == hash_token(token)))
        return True

    # -- download tokens ----------------------------------------------------------------

    def download_token(self, file_id: int) -> str:
        token = secrets.token_hex(32)
        now = self.clock()
        with self.db.write() as session:
            session.add(
                DownloadToken(
                    token_hash=hash_token(token),
                    file_id=file_id,
                    created_at=now,
                    expires_at=now + DOWNLOAD_TOKEN_LIFETIME,
                )
            )
        return token

    def download_token_valid(self, token: str, file_id: int) -> bool:
        if len(token) != 64:
            return False
        with self.db.read() as session:
            found = session.scalar(
                select(DownloadToken).where(DownloadToken.token_hash == hash_token(token))
            )
        return found is not None and found.file_id == file_id and found.expires_at > self.clock()

    def sweep(self) -> int:
        """Expired download tokens and access tokens idle for over an hour."""
        now = self.clock()
        with self.db.write() as session:
            gone = session.execute(delete(DownloadToken).where(DownloadToken.expires_at <= now))
            idle = session.execute(delete(V2Token).where(V2Token.last_used_at <= now - IDLE_EXPIRY))
        return int(getattr(gone, "rowcount", 0) or 0) + int(getattr(idle, "rowcount", 0) or 0)
