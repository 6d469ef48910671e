"""What admins do: the figures of the site, users and their packages, packages themselves,
invites, removing an upload, and the audit log. Every change is audited with the admin as
its actor; the account rules themselves stay in AccountService (the CLI calls the same)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import func, or_, select

from satchel.core.accounts import USERNAME, AccountService
from satchel.core.audit import AuditLog, Entry, Event, record, user_target
from satchel.core.files import FileService
from satchel.core.invites import InviteService
from satchel.core.packages import Package, parse_packages
from satchel.db.engine import Database
from satchel.db.models import FileState, Folder, Invite, StoredFile, StoredPackage, User, utcnow
from satchel.errors import BadRequest, Forbidden, NotFound

USERS_PER_PAGE = 25
UPLOADS_PER_PAGE = 25
# What an admin may set on a package (name, id and level type stay as they are made).
EDITABLE = tuple(f.name for f in fields(Package) if f.name not in {"name", "id", "level_type"})
MAX_LABEL = 64
CATALOG_TTL = 5.0  # seconds another instance's package change takes to reach this one


class PackageCatalog(Mapping[str, Package]):
    """The packages of the settings, with those admins created or changed (the ``packages``
    table) over them. Read again every few seconds, so that every instance sees a change."""

    def __init__(self, db: Database, configured: Mapping[str, Package]) -> None:
        self.db = db
        self.configured = dict(configured)
        self._cached: dict[str, Package] | None = None
        self._read_at = 0.0

    def __getitem__(self, name: str) -> Package:
        return self._current()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def save(self, name: str, changes: Mapping[str, Any]) -> Package:
        """Creates or changes a package; returns it as it now is. The guest package follows
        the guest settings and is not changed here."""
        if name == "guest":
            raise BadRequest("The guest package follows the guest settings")
        if not USERNAME.fullmatch(name):
            raise BadRequest("Package name: 2 to 32 letters, digits, '.', '_' or '-'")
        current = self._current()
        limits = {key: value for key, value in changes.items() if key in EDITABLE}
        if "label" in limits and not 0 < len(str(limits["label"]).strip()) <= MAX_LABEL:
            raise BadRequest(f"Label: 1 to {MAX_LABEL} characters")
        package = self._built(name, limits, current)
        stored = {key: getattr(package, key) for key in (*limits, "id")}
        with self.db.write() as session:
            row = session.get(StoredPackage, name)
            if row is None:
                session.add(StoredPackage(name=name, limits=stored, updated_at=utcnow()))
            else:
                row.limits = {**row.limits, **stored}
                row.updated_at = utcnow()
        self._cached = None
        return self[name]

    def _built(
        self, name: str, limits: Mapping[str, Any], current: Mapping[str, Package]
    ) -> Package:
        base = current.get(name)
        if base is None:
            next_id = max((p.id for p in current.values()), default=0) + 1
            base = Package(name, next_id, name.title(), "paid user", 0)
        try:
            checked = parse_packages({name: limits})[name]
        except ValueError as exc:
            raise BadRequest(str(exc).replace(f"package {name!r}: ", "")) from None
        return replace(base, **{key: getattr(checked, key) for key in limits})

    def _current(self) -> dict[str, Package]:
        if self._cached is None or time.monotonic() - self._read_at > CATALOG_TTL:
            with self.db.read() as session:
                rows = list(session.scalars(select(StoredPackage)))
            packages = dict(self.configured)
            for row in rows:
                packages[row.name] = _with_limits(row.name, row.limits, packages.get(row.name))
            self._cached, self._read_at = packages, time.monotonic()
        return self._cached


def _with_limits(name: str, limits: Mapping[str, Any], base: Package | None) -> Package:
    known = {key: value for key, value in limits.items() if key in (*EDITABLE, "id")}
    if base is None:
        base = Package(name, int(known.get("id", 1000)), name.title(), "paid user", 0)
    return replace(base, **known)


# The admin who acts on the pages, or None: the operator at the command line (satchel admin).
Admin = User | None


def _id(admin: Admin) -> int | None:
    return None if admin is None else admin.id


def _by(admin: Admin, detail: str) -> str:
    return detail if admin is not None else " ".join(filter(None, (detail, "(satchel admin)")))


@dataclass(frozen=True)
class Figures:
    users: int
    admins: int
    disabled: int
    files: int  # stored and served (not used up), drive and guest uploads, the trash too
    bytes_stored: int  # their plaintext sizes (the ciphertext is slightly larger)
    temporary: int  # guest and other expiring uploads among them
    in_trash: int
    folders: int
    downloads: int  # downloads counted on the files still stored (removed files take theirs)


@dataclass(frozen=True)
class UserRow:
    user: User
    used_bytes: int


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class Upload:
    file: StoredFile
    owner: str | None


@dataclass(frozen=True)
class InviteRow:
    id: int
    created_at: datetime
    expires_at: datetime | None
    used_at: datetime | None
    used_by: str | None

    def status(self, now: datetime) -> str:
        if self.used_at is not None:
            return "used"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "open"


class AdminService:
    def __init__(
        self,
        db: Database,
        accounts: AccountService,
        catalog: PackageCatalog,
        invites: InviteService,
        files: FileService | None = None,  # only removing uploads needs it
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.catalog = catalog
        self.invites = invites
        self.files = files
        self.audit = AuditLog(db)
        self.clock = clock

    @staticmethod
    def require(user: User | None) -> User:
        if user is None or not user.is_admin or user.is_disabled:
            raise Forbidden("Admins only")
        return user

    # -- figures ------------------------------------------------------------------------

    def figures(self) -> Figures:
        stored = StoredFile.state == FileState.READY
        with self.db.read() as session:
            users, admins, disabled = session.execute(
                select(
                    func.count(),
                    func.count().filter(User.is_admin.is_(True)),
                    func.count().filter(User.is_disabled.is_(True)),
                ).select_from(User)
            ).one()
            files, size, temporary, trashed, downloads = session.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(StoredFile.size), 0),
                    func.count().filter(StoredFile.is_temp.is_(True)),
                    func.count().filter(StoredFile.trashed_at.is_not(None)),
                    func.coalesce(func.sum(StoredFile.downloads), 0),
                ).where(stored)
            ).one()
            folders = session.scalar(select(func.count()).select_from(Folder))
        return Figures(
            int(users), int(admins), int(disabled), int(files), int(size),
            int(temporary), int(trashed), int(folders or 0), int(downloads),
        )  # fmt: skip

    # -- users --------------------------------------------------------------------------

    def users(
        self, query: str = "", page: int = 1, per_page: int = USERS_PER_PAGE
    ) -> Page[UserRow]:
        """Users whose name or email contains ``query`` (``%`` and ``_`` match themselves)."""
        page = max(1, page)
        condition = or_(
            User.username_key.contains(query.strip().lower(), autoescape=True),
            User.email.contains(query.strip().lower(), autoescape=True),
        )
        used = (
            select(func.coalesce(func.sum(StoredFile.size), 0))
            .where(StoredFile.owner_id == User.id, StoredFile.state == FileState.READY)
            .scalar_subquery()
        )
        with self.db.read() as session:
            total = session.scalar(select(func.count()).select_from(User).where(condition))
            rows = session.execute(
                select(User, used)
                .where(condition)
                .order_by(User.username_key)
                .offset((page - 1) * per_page)
                .limit(per_page)
            ).all()
        items = [UserRow(user, int(size)) for user, size in rows]
        return Page(items, int(total or 0), page, per_page)

    def set_package(self, admin: Admin, user_id: int, package: str) -> User:
        user = self.accounts.set_package(self._username(user_id), package)
        self._record(admin, Event.ADMIN_PACKAGE_SET, user, package)
        return user

    def set_disabled(self, admin: Admin, user_id: int, disabled: bool) -> User:
        if disabled and admin is not None and user_id == admin.id:
            raise BadRequest("You cannot disable your own account")
        user = self.accounts.set_disabled(self._username(user_id), disabled)
        event = Event.ADMIN_USER_DISABLED if disabled else Event.ADMIN_USER_ENABLED
        self._record(admin, event, user)
        return user

    def set_api_access(self, admin: Admin, user_id: int, enabled: bool) -> User:
        user = self.accounts.set_api_access(self._username(user_id), enabled)
        self._record(admin, Event.ADMIN_API_ACCESS, user, "on" if enabled else "off")
        return user

    def _username(self, user_id: int) -> str:
        return self.accounts.get_by_id(user_id).username

    def _record(self, admin: Admin, event: Event, user: User, detail: str = "") -> None:
        record(self.db, event, _id(admin), user_target(user), _by(admin, detail))

    # -- packages -----------------------------------------------------------------------

    def packages(self) -> list[Package]:
        return sorted(self.catalog.values(), key=lambda package: package.id)

    def save_package(self, admin: Admin, name: str, changes: Mapping[str, Any]) -> Package:
        package = self.catalog.save(name.strip(), changes)
        given = ", ".join(f"{key}={changes[key]}" for key in changes if key in EDITABLE)
        target = f"package:{package.name}"
        record(self.db, Event.ADMIN_PACKAGE_SAVED, _id(admin), target, _by(admin, given))
        return package

    # -- invites ------------------------------------------------------------------------

    def create_invite(self, admin: Admin, expires: timedelta | None) -> str:
        code = self.invites.create(expires)
        until = "until used" if expires is None else f"valid {_lifetime(expires)}"
        record(self.db, Event.ADMIN_INVITE_CREATED, _id(admin), "invite", _by(admin, until))
        return code

    def invite_list(self, limit: int = 100) -> list[InviteRow]:
        with self.db.read() as session:
            rows = session.execute(
                select(Invite, User.username)
                .outerjoin(User, User.id == Invite.used_by)
                .order_by(Invite.id.desc())
                .limit(limit)
            ).all()
        return [
            InviteRow(invite.id, invite.created_at, invite.expires_at, invite.used_at, name)
            for invite, name in rows
        ]

    def revoke_invite(self, admin: Admin, invite_id: int) -> None:
        self.invites.revoke(invite_id)
        target = f"invite:{invite_id}"
        record(self.db, Event.ADMIN_INVITE_REVOKED, _id(admin), target, _by(admin, ""))

    # -- uploads ------------------------------------------------------------------------

    def recent_uploads(self, page: int = 1, per_page: int = UPLOADS_PER_PAGE) -> Page[Upload]:
        page = max(1, page)
        stored = StoredFile.state == FileState.READY
        with self.db.read() as session:
            total = session.scalar(select(func.count()).select_from(StoredFile).where(stored))
            rows = session.execute(
                select(StoredFile, User.username)
                .outerjoin(User, User.id == StoredFile.owner_id)
                .where(stored)
                .order_by(StoredFile.created_at.desc(), StoredFile.id.desc())
                .offset((page - 1) * per_page)
                .limit(per_page)
            ).all()
        return Page([Upload(f, name) for f, name in rows], int(total or 0), page, per_page)

    def remove_upload(self, admin: Admin, file_id: int) -> None:
        """Deletes a stored file for good (its links answer 404), whoever owns it."""
        assert self.files is not None, "built without the file service"
        found = self.files.get(file_id)
        if found is None:
            raise NotFound("No such upload")
        self.files.delete_files([file_id])
        owner = f"owner {found.owner_id}" if found.owner_id is not None else "guest upload"
        target = f"file:{file_id} {found.name}"
        record(self.db, Event.ADMIN_FILE_REMOVED, _id(admin), target, _by(admin, owner))

    # -- audit --------------------------------------------------------------------------

    def audit_entries(self, limit: int = 100, event: str = "", username: str = "") -> list[Entry]:
        user = self.accounts.get(username.strip()) if username.strip() else None
        return self.audit.latest(limit, event.strip() or None, user)


def _lifetime(span: timedelta) -> str:
    if span.total_seconds() % 86400 == 0:
        return f"{span.days} day{'s' if span.days != 1 else ''}"
    return str(span)
