"""Metadata tables (SQLAlchemy 2.0 typed models)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite has no integer type wider than INTEGER, and only "INTEGER PRIMARY KEY" autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: the same on SQLite (no time zones) and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class FileState(StrEnum):
    READY = "ready"  # served
    # Its download limit was reached: the link answers 410; the body stays for the counted
    # downloads' resumptions until download_resume_window has passed.
    GONE = "gone"
    SPENT = "spent"  # the body is deleted; the row stays a day so the link still says 410


class FolderVisibility(IntEnum):
    """A folder's sharing, as /api/v2's ``is_public`` numbers it."""

    PRIVATE = 0
    UNLISTED = 1  # its page opens for whoever has the link
    PUBLIC = 2  # and the site's folder search lists it


class TusState(StrEnum):
    UPLOADING = "uploading"
    COMMITTING = "committing"  # its blob is being committed and registered as a file
    COMPLETE = "complete"
    FAILED = "failed"


class ImportStatus(StrEnum):
    """A URL import: pending → downloading → complete | failed | cancelled."""

    PENDING = "pending"
    DOWNLOADING = "downloading"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StoredFile(Base):
    __tablename__ = "files"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    short_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    manage_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    blob_key: Mapped[str] = mapped_column(String(64), unique=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    # Fingerprint of the master key that wrapped ``wrapped_key`` (None: not known yet, from
    # before it was recorded): what key rotation and retirement look at.
    wrapped_by: Mapped[str | None] = mapped_column(String(16), index=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_e2e: Mapped[bool] = mapped_column(Boolean, default=False)
    # None for the legacy format (salt and IV sent with the upload), "v1" for docs/e2e-format.md.
    e2e_format: Mapped[str | None] = mapped_column(String(8))
    e2e_salt: Mapped[bytes | None] = mapped_column(LargeBinary)
    e2e_iv: Mapped[bytes | None] = mapped_column(LargeBinary)
    is_temp: Mapped[bool] = mapped_column(Boolean, default=True)
    owner_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    folder_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    uploader_ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    max_downloads: Mapped[int | None] = mapped_column(Integer)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    last_download_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default=FileState.READY, index=True)
    gone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Drive files only: set while the file is in its owner's trash; ``trashed_with`` is the
    # folder whose deletion took it there (restoring that folder brings it back too).
    trashed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    trashed_with: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        # Listing a folder: keyset pagination by (name, id) within one owner's folder.
        Index("ix_files_drive", "owner_id", "folder_id", "name", "id"),
        # Ids are never reused, on SQLite too: a script holding an old id must not reach a
        # newer file (PostgreSQL's sequences never hand out a number twice anyway).
        {"sqlite_autoincrement": True},
    )


class JobLease(Base):
    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(160))  # token@process (core.processes)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_result: Mapped[str | None] = mapped_column(String(255))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # Lower-cased copy: names are unique regardless of case, and looked up that way.
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    package: Mapped[str] = mapped_column(String(64))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    api_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_ip: Mapped[str | None] = mapped_column(String(45))
    # /api/v2 key pair: key1 names the pair (shown on the account page), key2 is the secret
    # (shown once, stored as its SHA-256).
    v2_key1: Mapped[str | None] = mapped_column(String(64), unique=True)
    v2_key2_hash: Mapped[str | None] = mapped_column(String(64))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The secret is never stored: only its SHA-256, looked up by equality.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))  # "sat_AbC…" shown in listings
    label: Mapped[str] = mapped_column(String(100), default="")
    permissions: Mapped[dict[str, bool]] = mapped_column(JSON)
    allowed_ips: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_ip: Mapped[str | None] = mapped_column(String(45))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Folder(Base):
    __tablename__ = "folders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    trashed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    trashed_with: Mapped[int | None] = mapped_column(BigInteger)
    is_public: Mapped[int] = mapped_column(Integer, default=FolderVisibility.PRIVATE)
    # /api/v2 sends an MD5 of the password (and the page makes one of what is typed): only a
    # slow salted hash (Argon2) of that MD5 is kept.
    access_password_hash: Mapped[str | None] = mapped_column(String(255))
    share_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_folders_tree", "owner_id", "parent_id", "name", "id"),
        {"sqlite_autoincrement": True},
    )


class UserSession(Base):
    """A browser login: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ip: Mapped[str | None] = mapped_column(String(45))


class Invite(Base):
    """A one-time registration code for ``registration = invite``; only its hash is kept."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[int | None] = mapped_column(BigInteger)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class V2Token(Base):
    """The one /api/v2 access token of a user (a new ``authorize`` replaces it)."""

    __tablename__ = "v2_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DownloadResume(Base):
    """How often a counted download of a file with a limit was resumed (core.resumes)."""

    __tablename__ = "download_resumes"

    file_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    download: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    resumes: Mapped[int] = mapped_column(Integer)
    last_start: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class DownloadToken(Base):
    """A 24-hour URL parameter that downloads one file, private ones too (/api/v2)."""

    __tablename__ = "download_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    file_id: Mapped[int] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class UrlImport(Base):
    """A remote URL queued for import into a user's drive by the job runner."""

    __tablename__ = "url_imports"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    folder_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), index=True)  # ImportStatus
    error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    total_size: Mapped[int | None] = mapped_column(BigInteger)
    downloaded: Mapped[int] = mapped_column(BigInteger, default=0)
    file_id: Mapped[int | None] = mapped_column(BigInteger)
    worker: Mapped[str | None] = mapped_column(String(64))


class TusUpload(Base):
    """A resumable (tus) upload in progress, or finished and keeping its result a while."""

    __tablename__ = "tus_uploads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    uploader_ip: Mapped[str | None] = mapped_column(String(45))
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    metadata_header: Mapped[str] = mapped_column(String(8192), default="")
    options: Mapped[dict[str, str]] = mapped_column(JSON)
    blob_key: Mapped[str] = mapped_column(String(64), unique=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_by: Mapped[str | None] = mapped_column(String(16))  # and ``result``'s
    prefix: Mapped[bytes] = mapped_column(LargeBinary)
    # The plaintext after the last whole chunk, sealed under the data key: never on disk bare.
    tail: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default=TusState.UPLOADING, index=True)
    busy_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The process whose request holds the lease: a lease of a process that died is void.
    busy_by: Mapped[str | None] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    file_id: Mapped[int | None] = mapped_column(BigInteger)
    # The /upload answer (with the management token), sealed under the master keys.
    result: Mapped[bytes | None] = mapped_column(LargeBinary)


class KeyRingState(Base):
    """One row: which master key wraps new data keys, and a version every process watches."""

    __tablename__ = "key_ring"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)
    primary_key_id: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FailedGuess(Base):
    """A wrong password for a file, folder or account (core.guesses)."""

    __tablename__ = "failed_guesses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(96))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_failed_guesses_scope_at", "scope", "at"),)


class UploadSlot(Base):
    """An upload in progress, counted against its package's ``concurrent_uploads`` by every
    worker and instance that shares the database (core.slots)."""

    __tablename__ = "upload_slots"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    who: Mapped[str] = mapped_column(String(96), index=True)  # "user:<id>" or "ip:<address>"
    holder: Mapped[str] = mapped_column(String(160))  # the process (core.processes)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """A security event (core.audit): who did what to what, from where. Never a secret."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    event: Mapped[str] = mapped_column(String(48), index=True)
    actor_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    ip: Mapped[str | None] = mapped_column(String(45))
    target: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(String(255), default="")

    __table_args__ = ({"sqlite_autoincrement": True},)


class StoredPackage(Base):
    """A package created or changed by an admin; its limits over those of the settings."""

    __tablename__ = "packages"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
