"""User accounts: creation, password checks, packages, disabling, API access."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from satchel.core.audit import Event, record
from satchel.core.guesses import GuessLimiter
from satchel.core.ids import hash_token
from satchel.core.packages import Package
from satchel.core.passwords import hash_password, verify_password
from satchel.db.engine import Database
from satchel.db.models import User, UserSession, V2Token, utcnow
from satchel.errors import BadRequest, Conflict, NotFound

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,31}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
# Checked when the user does not exist, so that a wrong name costs as long as a wrong password.
_DUMMY_PASSWORD = "not a real password: only spends the same time"  # noqa: S105


@functools.cache
def _dummy_hash() -> str:
    # Made on first use, not at import: hashing takes Argon2's memory in every process.
    return hash_password(_DUMMY_PASSWORD)


@dataclass(frozen=True)
class NewUser:
    username: str
    password: str
    email: str | None = None
    is_admin: bool = False
    package: str | None = None


class AccountService:
    def __init__(
        self,
        db: Database,
        packages: Mapping[str, Package],
        default_package: str,
        guesses: GuessLimiter,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.packages = packages
        self.default_package = default_package
        self.guesses = guesses
        self.clock = clock

    def register(self, new: NewUser) -> User:
        """Self-service registration: an email address that already belongs to an account
        is left off the new one rather than refused, so that the answer does not tell
        whether an address is registered (usernames are public names, and must be free)."""
        try:
            return self.create_user(new)
        except Conflict:
            if new.email is None or self.find(new.username) is not None:
                raise
        return self.create_user(replace(new, email=None))

    def create_user(self, new: NewUser) -> User:
        _check_username(new.username)
        _check_password(new.password)
        email = _checked_email(new.email)
        package = self._checked_package(
            new.package or ("admin" if new.is_admin else self.default_package)
        )
        user = User(
            username=new.username,
            username_key=new.username.lower(),
            email=email,
            password_hash=hash_password(new.password),
            package=package,
            is_admin=new.is_admin,
            is_disabled=False,
            api_enabled=True,
            created_at=self.clock(),
        )
        try:
            with self.db.write() as session:
                session.add(user)
        except IntegrityError:
            raise Conflict("That username or email is taken") from None
        return user

    def authenticate(self, username: str, password: str, ip: str | None = None) -> User | None:
        """The user when name and password match and the account is enabled, else None.
        Wrong passwords count against the account and the address (RateLimited past the
        limit, whether or not the account exists)."""
        scopes = [f"account:{username.strip().lower()[:64]}"] + ([f"ip:{ip}"] if ip else [])
        claimed = self.guesses.claim(*scopes)
        user = self.find(username)
        if user is None:
            verify_password(_dummy_hash(), password)
            # Not the name typed: people type their password into the name field.
            self._login_failed("(no such user)", ip, "no such user")
            return None
        if not verify_password(user.password_hash, password):
            self._login_failed(user.username, ip, "wrong password")
            return None
        self.guesses.right(claimed)
        if user.is_disabled:
            self._login_failed(user.username, ip, "account disabled")
            return None
        record(self.db, Event.LOGIN, user.id, f"user:{user.username}", ip=ip)
        with self.db.write() as session:
            session.execute(
                update(User)
                .where(User.id == user.id)
                .values(last_login_at=self.clock(), last_login_ip=ip)
            )
        return user

    def _login_failed(self, username: str, ip: str | None, why: str) -> None:
        # The name tried (never the password), so that guessing shows in the log.
        record(self.db, Event.LOGIN_FAILED, None, f"user:{username.strip()[:64]}", why, ip)

    def find(self, username: str) -> User | None:
        with self.db.read() as session:
            return session.scalar(select(User).where(User.username_key == username.lower()))

    def get_by_id(self, user_id: int) -> User:
        with self.db.read() as session:
            user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"No user {user_id}")
        return user

    def get(self, username: str) -> User:
        user = self.find(username)
        if user is None:
            raise NotFound(f"No user {username!r}")
        return user

    def list_users(self) -> list[User]:
        with self.db.read() as session:
            return list(session.scalars(select(User).order_by(User.id)))

    def package_of(self, user: User) -> Package:
        # A package removed from the settings falls back to the default rather than failing.
        return self.packages.get(user.package) or self.packages[self.default_package]

    def set_package(self, username: str, package: str) -> User:
        return self._change(username, package=self._checked_package(package))

    def set_disabled(self, username: str, disabled: bool) -> User:
        user = self._change(username, is_disabled=disabled)
        if disabled:
            self.end_credentials(user.id)
        return user

    def set_api_access(self, username: str, enabled: bool) -> User:
        return self._change(username, api_enabled=enabled)

    def change_password(
        self, username: str, old: str, new: str, keep_session: str | None = None
    ) -> None:
        """Every login and /api/v2 token of the user ends with the old password, but for the
        browser session ``keep_session`` that made the change."""
        user = self.get(username)
        scope = f"account:{user.username_key}"
        claimed = self.guesses.claim(scope)
        if not verify_password(user.password_hash, old):
            raise BadRequest("The current password is wrong")
        self.guesses.right(claimed)
        _check_password(new)
        self._change(username, password_hash=hash_password(new))
        self.end_credentials(user.id, keep_session)
        record(self.db, Event.PASSWORD_CHANGED, user.id, f"user:{user.username}")

    def end_credentials(self, user_id: int, keep_session: str | None = None) -> None:
        """Ends the user's browser sessions (all but ``keep_session``) and /api/v2 tokens;
        API keys are credentials of their own and stay (a disabled account's keys are
        refused anyway)."""
        sessions = delete(UserSession).where(UserSession.user_id == user_id)
        if keep_session is not None:
            sessions = sessions.where(UserSession.token_hash != hash_token(keep_session))
        with self.db.write() as session:
            session.execute(sessions)
            session.execute(delete(V2Token).where(V2Token.user_id == user_id))

    def _change(self, username: str, **values: object) -> User:
        user = self.get(username)
        with self.db.write() as session:
            session.execute(update(User).where(User.id == user.id).values(**values))
        return self.get(username)

    def _checked_package(self, name: str) -> str:
        if name not in self.packages:
            raise BadRequest(f"No package {name!r}; known: {', '.join(self.packages)}")
        return name


def _check_username(username: str) -> None:
    if not USERNAME.fullmatch(username):
        raise BadRequest(
            "Username: 2 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )


def _check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(f"Password: {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def _checked_email(email: str | None) -> str | None:
    if not email:
        return None
    if not EMAIL.fullmatch(email):
        raise BadRequest("Email address is not valid")
    return email.lower()
