"""Scoped API keys: ``sat_`` + 40 random base62 characters, only a hash stored, shown once."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from satchel.core.audit import Event, record
from satchel.db.engine import Database
from satchel.db.models import ApiKey, User, utcnow
from satchel.errors import BadRequest, Forbidden, NotFound, Unauthorized

PREFIX = "sat_"
SECRET_LENGTH = 40
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PERMISSIONS = ("read", "download", "write", "delete", "restore", "manage_keys")
MAX_ACTIVE_KEYS = 10
MAX_ALLOWED_IPS = 10
NARROWEST_ALLOWED_PREFIX = 24  # an allow-list entry covers at most a /24


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str  # shown once, never stored


@dataclass(frozen=True)
class KeyChanges:
    label: str | None = None
    permissions: Mapping[str, Any] | None = None
    allowed_ips: Sequence[Any] | None = None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return PREFIX + "".join(secrets.choice(_BASE62) for _ in range(SECRET_LENGTH))


def parse_permissions(value: Mapping[str, Any] | None) -> dict[str, bool]:
    """``{"read": true, …}``: every permission off unless given as true."""
    given = dict(value or {})
    unknown = sorted(set(given) - set(PERMISSIONS))
    if unknown:
        raise BadRequest(
            f"Unknown permission(s): {', '.join(unknown)}; known: {', '.join(PERMISSIONS)}"
        )
    if any(not isinstance(flag, bool) for flag in given.values()):
        raise BadRequest("Permissions are true or false")
    return {name: bool(given.get(name, False)) for name in PERMISSIONS}


def parse_allowed_ips(value: Sequence[Any] | None) -> list[str]:
    entries = list(value or [])
    if len(entries) > MAX_ALLOWED_IPS:
        raise BadRequest(f"At most {MAX_ALLOWED_IPS} allowed IP addresses or networks")
    return [_allowed_network(entry) for entry in entries]


def _allowed_network(entry: Any) -> str:
    try:
        network = ipaddress.IPv4Network(str(entry).strip(), strict=False)
    except ValueError:
        raise BadRequest(f"Not an IPv4 address or CIDR block: {entry!r}") from None
    if network.prefixlen < NARROWEST_ALLOWED_PREFIX:
        raise BadRequest(f"{network} is wider than /{NARROWEST_ALLOWED_PREFIX}")
    return str(network) if network.prefixlen < 32 else str(network.network_address)


def ip_allowed(ip: str, allowed: Sequence[str]) -> bool:
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(entry) for entry in allowed)


class ApiKeyService:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create(
        self,
        user: User,
        label: str,
        permissions: Mapping[str, Any] | None,
        allowed_ips: Sequence[Any] | None,
    ) -> CreatedKey:
        secret = new_secret()
        key = ApiKey(
            user_id=user.id,
            secret_hash=hash_secret(secret),
            hint=secret[: len(PREFIX) + 4],
            label=_label(label),
            permissions=parse_permissions(permissions),
            allowed_ips=parse_allowed_ips(allowed_ips),
            created_at=self.clock(),
        )
        with self.db.write() as session:
            active = session.scalar(
                select(func.count())
                .select_from(ApiKey)
                .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
            )
            if (active or 0) >= MAX_ACTIVE_KEYS:
                raise BadRequest(f"At most {MAX_ACTIVE_KEYS} active API keys: revoke one first")
            session.add(key)
        record(self.db, Event.API_KEY_CREATED, user.id, f"apikey:{key.id}", key.hint + "…")
        return CreatedKey(key, secret)

    def list(self, user: User) -> list[ApiKey]:
        with self.db.read() as session:
            query = (
                select(ApiKey)
                .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
                .order_by(ApiKey.id)
            )
            return list(session.scalars(query))

    def update(self, user: User, key_id: int, changes: KeyChanges) -> ApiKey:
        values: dict[str, Any] = {}
        if changes.label is not None:
            values["label"] = _label(changes.label)
        if changes.permissions is not None:
            values["permissions"] = parse_permissions(changes.permissions)
        if changes.allowed_ips is not None:
            values["allowed_ips"] = parse_allowed_ips(changes.allowed_ips)
        self._own_active(user, key_id)
        if values:
            with self.db.write() as session:
                session.execute(update(ApiKey).where(ApiKey.id == key_id).values(**values))
        return self._own_active(user, key_id)

    def revoke(self, user: User, key_id: int) -> None:
        self._own_active(user, key_id)
        with self.db.write() as session:
            session.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=self.clock())
            )
        record(self.db, Event.API_KEY_REVOKED, user.id, f"apikey:{key_id}")

    def authenticate(
        self, authorization: str | None, ip: str, permission: str
    ) -> tuple[User, ApiKey]:
        """The key's user for ``Authorization: Bearer sat_…``, or the 401/403 that says why not."""
        secret = _bearer(authorization)
        with self.db.read() as session:
            row = session.execute(
                select(ApiKey, User)
                .join(User, User.id == ApiKey.user_id)
                .where(ApiKey.secret_hash == hash_secret(secret))
            ).first()
        if row is None:
            raise Unauthorized("Invalid API key")
        key, user = row
        if key.revoked_at is not None:
            raise Unauthorized("This API key has been revoked")
        if user.is_disabled or not user.api_enabled:
            raise Forbidden("API access is disabled for this account")
        if not ip_allowed(ip, key.allowed_ips):
            raise Forbidden("This API key is not allowed from your IP address")
        if not key.permissions.get(permission, False):
            raise Forbidden(f"This API key lacks the '{permission}' permission")
        self._record_use(key.id, ip)
        return user, key

    def _record_use(self, key_id: int, ip: str) -> None:
        with self.db.write() as session:
            session.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id)
                .values(last_used_at=self.clock(), last_used_ip=ip)
            )

    def _own_active(self, user: User, key_id: int) -> ApiKey:
        with self.db.read() as session:
            key = session.get(ApiKey, key_id)
        # Another user's key is "not found": ids of others' keys reveal nothing.
        if key is None or key.user_id != user.id or key.revoked_at is not None:
            raise NotFound("API key not found")
        return key


def check_grant(
    caller: ApiKey, permissions: Mapping[str, Any], allowed_ips: Sequence[Any] | None
) -> None:
    """A key can hand out no more than it holds: no permission it lacks, and, when it is
    itself bound to addresses, no key usable from outside them."""
    granted = parse_permissions(permissions)  # unknown names and non-booleans: 400
    extra = sorted(
        name
        for name, value in granted.items()
        if value is True and not caller.permissions.get(name)
    )
    if extra:
        raise Forbidden(f"A key can only grant permissions it has itself (not {', '.join(extra)})")
    if not caller.allowed_ips or allowed_ips is None:
        return
    if not allowed_ips:
        raise Forbidden("This key is bound to addresses: a key it creates needs an allow-list too")
    own = [ipaddress.ip_network(entry) for entry in caller.allowed_ips]
    for entry in parse_allowed_ips(allowed_ips):
        network = ipaddress.ip_network(entry)
        if not any(_within(network, mine) for mine in own):
            raise Forbidden(f"{entry} is outside this key's own allow-list")


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _within(network: IPNetwork, own: IPNetwork) -> bool:
    return network.version == own.version and network.subnet_of(own)  # type: ignore[arg-type]


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("Missing API key: send Authorization: Bearer <key>")
    scheme, _, secret = authorization.strip().partition(" ")
    secret = secret.strip()
    if (
        scheme.lower() != "bearer"
        or not secret.startswith(PREFIX)
        or len(secret) != len(PREFIX) + SECRET_LENGTH
    ):
        raise Unauthorized("Invalid API key")
    return secret


def _label(label: str) -> str:
    text = (label or "").strip()
    if len(text) > 100:
        raise BadRequest("Label: at most 100 characters")
    return text
