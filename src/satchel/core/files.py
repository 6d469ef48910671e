"""Shared files: registering uploads, downloads with counting, management by token."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from satchel.config import Settings
from satchel.core.counters import DownloadCounter
from satchel.core.expiry import expiry_time
from satchel.core.guesses import GuessLimiter, client_scope
from satchel.core.ids import hash_token, new_manage_token, new_public_id, new_short_code
from satchel.core.ingest import IngestedBlob
from satchel.core.keyring import MasterKeys
from satchel.core.options import ManageChanges, UploadOptions
from satchel.core.passwords import hash_password, verify_password
from satchel.crypto.atrest import ciphertext_size, decrypt_range, decrypt_whole
from satchel.db.engine import Database
from satchel.db.models import FileState, Folder, StoredFile, TusUpload, User, utcnow
from satchel.errors import (
    BadRequest,
    Forbidden,
    Gone,
    NotFound,
    PasswordRequired,
    RangeNotSatisfiable,
    Unauthorized,
    WrongPassword,
)
from satchel.storage.base import BlobStore

Clock = Callable[[], datetime]

# Built once: constructing SQLAlchemy statements costs more than running them on SQLite.
_BY_UUID = select(StoredFile.__table__).where(StoredFile.uuid == bindparam("uuid"))
_INSERT = insert(StoredFile).returning(StoredFile.id)
_COUNT_DOWNLOAD = (
    update(StoredFile)
    .where(StoredFile.id == bindparam("file_id"), StoredFile.state == FileState.READY)
    .where(or_(StoredFile.max_downloads.is_(None), StoredFile.downloads < StoredFile.max_downloads))
    .values(downloads=StoredFile.downloads + 1, last_download_at=bindparam("now"))
    .returning(StoredFile.downloads)
)


@dataclass(frozen=True)
class Actor:
    """Who is asking: a guest (no user id) from an address, or a logged-in user."""

    ip: str
    user_id: int | None = None
    user: User | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ByteRange:
    """A parsed ``Range: bytes=…`` header; resolved against the size by the service."""

    first: int | None
    last: int | None

    def resolve(self, size: int) -> tuple[int, int]:
        """Half-open [start, end) or RangeNotSatisfiable."""
        if self.first is None:
            suffix = self.last or 0
            if suffix <= 0 or size == 0:
                raise RangeNotSatisfiable(size)
            return max(0, size - suffix), size
        if self.first >= size:
            raise RangeNotSatisfiable(size)
        last = size - 1 if self.last is None else min(self.last, size - 1)
        return self.first, last + 1


@dataclass(frozen=True)
class CreatedUpload:
    file: StoredFile
    manage_token: str


@dataclass(frozen=True)
class DownloadPlan:
    file: StoredFile
    start: int
    end: int
    partial: bool
    counted: bool
    # This download used up the last allowed one and runs to the end: once it has ended
    # whole, the body goes.
    final: bool
    etag: str = ""

    @property
    def tag(self) -> str:
        return self.etag or plain_etag(self.file)


def plain_etag(record: StoredFile) -> str:
    return f'"{record.uuid}"'


RESUME_PURPOSE = b"download-resume"


class FileService:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        keys: MasterKeys,
        settings: Settings,
        guesses: GuessLimiter,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.store = store
        self.keys = keys
        self.settings = settings
        self.guesses = guesses
        self.clock = clock
        self.counter = DownloadCounter(db, lambda: self.clock())
        # Set by the drive: the free name for a drive file in a folder ("a (2).txt").
        self.drive_name: Callable[[int, int | None, str], str] | None = None

    # -- uploads ------------------------------------------------------------------------

    def check_upload_options(self, options: UploadOptions, actor: Actor) -> None:
        if actor.user_id is None and (not options.is_temp or options.folder_id is not None):
            raise Unauthorized("Login required for cloud drive uploads (is_temp=false)")
        if options.expires_given and options.expires is None and options.is_temp:
            raise BadRequest("expires=never needs a logged-in user with a cloud drive file")
        if options.e2e and options.password:
            raise BadRequest("An E2E upload cannot also take a server-side password")

    def register_upload(
        self, blob: IngestedBlob, options: UploadOptions, actor: Actor
    ) -> CreatedUpload:
        self.check_upload_options(options, actor)
        if options.e2e and blob.file_count > 1:
            raise BadRequest("E2E uploads take exactly one file")
        token = new_manage_token()
        now = self.clock()
        wrapped = self.keys.wrap(blob.data_key)
        values: dict[str, Any] = {
            "uuid": new_public_id(),
            "manage_token_hash": hash_token(token),
            "name": blob.name,
            "content_type": blob.content_type,
            "size": blob.size,
            "blob_key": blob.blob_key,
            "wrapped_key": wrapped.token,
            "wrapped_by": wrapped.key_id,
            "is_public": options.public,
            "password_hash": hash_password(options.password) if options.password else None,
            "is_e2e": options.e2e,
            "e2e_salt": options.e2e_salt,
            "e2e_format": options.e2e_format,
            "e2e_iv": options.e2e_iv,
            "is_temp": options.is_temp,
            "owner_id": actor.user_id,
            "folder_id": options.folder_id,
            "uploader_ip": actor.ip,
            "created_at": now,
            "expires_at": self._initial_expiry(options, now),
            "max_downloads": options.max_downloads,
            "downloads": 0,
            "state": FileState.READY,
            "short_code": None,
            "last_download_at": None,
            "gone_at": None,
        }
        if not options.is_temp and self.drive_name is not None and actor.user_id is not None:
            values["name"] = self.drive_name(actor.user_id, options.folder_id, blob.name)
        record = self._insert_with_short_code(values, options.short_url)
        return CreatedUpload(record, token)

    def _initial_expiry(self, options: UploadOptions, now: datetime) -> datetime | None:
        if not options.is_temp:
            return expiry_time(now, options.expires) if options.expires_given else None
        duration = options.expires or timedelta(seconds=self.settings.default_expiry)
        return expiry_time(now, duration)

    def _insert_with_short_code(self, values: dict[str, Any], want_short: bool) -> StoredFile:
        # Core rather than the ORM's unit of work: a third of the cost of a small upload.
        for _attempt in range(5):
            if want_short:
                values["short_code"] = new_short_code(self.settings.short_code_length)
            try:
                with self.db.write_connection() as conn:
                    file_id = conn.execute(_INSERT, values).scalar_one()
                return StoredFile(id=file_id, **values)
            except IntegrityError:
                if not want_short:
                    raise
        raise RuntimeError("could not allocate a unique short code")

    # -- downloads ----------------------------------------------------------------------

    def plan_download(
        self,
        public_id: str | StoredFile,
        actor: Actor,
        password: str | None,
        byte_range: ByteRange | None,
        counts: bool,
        if_range: str | None = None,
    ) -> DownloadPlan:
        """``public_id`` may be the record of an earlier ``lookup``. On a file with a download
        limit every GET counts, a range too, unless it resumes a counted download: the ETag
        of that download's answer, sent back in If-Range, is what proves it."""
        found = self.lookup(public_id) if isinstance(public_id, str) else public_id
        if (
            byte_range is not None
            and found.max_downloads is not None
            and self._resumes(found, if_range)
        ):
            return self._resumption(found, actor, password, byte_range)
        if if_range is not None and if_range != plain_etag(found):
            byte_range = None  # a validator that does not match: the whole body (RFC 9110)
        record = self._servable(found)
        self._check_access(record, actor, password)
        start, end = byte_range.resolve(record.size) if byte_range else (0, record.size)
        partial = byte_range is not None
        limited = record.max_downloads is not None
        if not counts or (start != 0 and not limited):
            return DownloadPlan(record, start, end, partial, counted=False, final=False)
        downloads = self._count_download(record)
        if not limited:
            return DownloadPlan(record, start, end, partial, counted=True, final=False)
        assert record.max_downloads is not None
        final = downloads >= record.max_downloads and end == record.size
        etag = self._resume_tag(record, downloads)
        return DownloadPlan(record, start, end, partial, counted=True, final=final, etag=etag)

    def _resume_tag(self, record: StoredFile, download: int) -> str:
        """The ETag of the ``download``-th download: for ``download_resume_window`` it lets
        that download, and no other, go on."""
        window = timedelta(seconds=self.settings.download_resume_window)
        claim = f"{record.uuid}.{download}.{int((self.clock() + window).timestamp())}"
        return f'"{claim}.{self.keys.sign(RESUME_PURPOSE, claim.encode())[:32]}"'

    def _resumes(self, record: StoredFile, if_range: str | None) -> bool:
        parts = (if_range or "").strip('"').split(".")
        if len(parts) != 4 or parts[0] != record.uuid or not parts[2].isdigit():
            return False
        if int(parts[2]) < self.clock().timestamp():
            return False
        return self.keys.verify(RESUME_PURPOSE, ".".join(parts[:3]).encode(), parts[3], 32)

    def _resumption(
        self, record: StoredFile, actor: Actor, password: str | None, byte_range: ByteRange
    ) -> DownloadPlan:
        """The rest of a counted download: not counted again, and served even after the
        download limit was reached, as long as the body is still there."""
        if record.trashed_at is not None or (
            record.expires_at is not None and record.expires_at <= self.clock()
        ):
            raise NotFound()
        if record.state == FileState.SPENT:
            raise Gone()
        self._check_access(record, actor, password)
        start, end = byte_range.resolve(record.size)
        return DownloadPlan(record, start, end, partial=True, counted=False, final=False)

    def plan_owner_download(self, token: str, actor: Actor) -> DownloadPlan:
        """The management token's holder may fetch the file even when it is private."""
        record = self.get_managed(token, actor)
        return DownloadPlan(record, 0, record.size, partial=False, counted=False, final=False)

    def stats(self, public_id: str, actor: Actor, password: str | None) -> StoredFile:
        """What the stats page shows, under the same rules as the download: a private or
        password-protected file tells nothing to whoever may not download it."""
        record = self.lookup(public_id)
        used_up = record.max_downloads is not None and record.downloads >= record.max_downloads
        if record.state != FileState.READY or used_up:
            raise NotFound()
        self._check_access(self._servable(record), actor, password)
        return record

    def open_to_anyone(self, record: StoredFile) -> bool:
        """Public, with no password of its own or of its folder: its name may be shown to
        whoever has a link."""
        if not record.is_public or record.password_hash:
            return False
        if record.folder_id is None:
            return True
        with self.db.read() as session:
            folder = session.get(Folder, record.folder_id)
        return folder is None or folder.access_password_hash is None

    def resolve_short_code(self, code: str) -> StoredFile:
        with self.db.read() as session:
            record = session.scalar(select(StoredFile).where(StoredFile.short_code == code))
        if record is None:
            raise NotFound()
        return self._servable(record)

    def read_small(self, record: StoredFile, start: int, end: int) -> bytes:
        """The plaintext of a file of at most one chunk, from one read of its blob."""
        size = ciphertext_size(record.size)
        blob = b"".join(self.store.read_range(record.blob_key, 0, size, piece_size=size))
        plain = decrypt_whole(blob, self.keys.unwrap(record.wrapped_key), record.size)
        return plain[start:end]

    def read(self, record: StoredFile, start: int, end: int) -> Iterator[bytes]:
        data_key = self.keys.unwrap(record.wrapped_key)
        return decrypt_range(self.store, record.blob_key, data_key, record.size, start, end)

    def finish_final_download(self, file_id: int) -> None:
        """The download that used up the limit has ended: its link is dead now. The body
        stays for the resumptions of counted downloads (the server cannot tell whether a
        client got every byte it sent) until the expiry job removes it."""
        self._mark_gone(file_id)

    def lookup(self, public_id: str) -> StoredFile:
        # Core and a detached object: the hot path of every download, where the ORM's
        # identity map and loading cost more than the query.
        with self.db.connect() as conn:
            row = conn.execute(_BY_UUID, {"uuid": public_id}).mappings().first()
        if row is None:
            raise NotFound()
        return StoredFile(**row)

    def _servable(self, record: StoredFile) -> StoredFile:
        if record.state != FileState.READY:
            raise Gone()
        if record.trashed_at is not None:
            raise NotFound()  # in its owner's trash: its links are dead until it is restored
        if record.expires_at is not None and record.expires_at <= self.clock():
            raise NotFound()
        if record.max_downloads is not None and record.downloads >= record.max_downloads:
            self._mark_gone(record.id)
            raise Gone()
        return record

    def _check_access(self, record: StoredFile, actor: Actor, password: str | None) -> None:
        is_owner = actor.user_id is not None and actor.user_id == record.owner_id
        if not record.is_public and not is_owner:
            raise Forbidden("This file is private")
        if record.folder_id is not None and not is_owner:
            self._check_folder_password(record.folder_id, password, actor)
        if record.password_hash and not is_owner:
            if not password:
                raise PasswordRequired()
            self.check_password(record.password_hash, password, f"file:{record.id}", actor)

    def check_password(self, stored_hash: str, password: str, scope: str, actor: Actor) -> None:
        """WrongPassword, counted against ``scope`` and the client; RateLimited once either
        has had too many wrong guesses."""
        client = client_scope(actor.user_id, actor.ip)
        self.guesses.check(scope, client)
        if not verify_password(stored_hash, password):
            self.guesses.failed(scope, client)
            raise WrongPassword()

    def check_folder_password(self, folder: Folder, password: str | None, actor: Actor) -> None:
        """A folder's access password, as typed: the MD5 /api/v2 clients send is what its
        stored hash is of."""
        if folder.access_password_hash is None:
            return
        if not password:
            raise PasswordRequired("This file is in a password-protected folder")
        given = hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()
        self.check_password(folder.access_password_hash, given, f"folder:{folder.id}", actor)

    def _check_folder_password(self, folder_id: int, password: str | None, actor: Actor) -> None:
        """A file in a folder with an access password asks for that password on its own
        links too: the folder's password protects what is in it."""
        with self.db.read() as session:
            folder = session.get(Folder, folder_id)
        if folder is not None:
            self.check_folder_password(folder, password, actor)

    def downloads_of(self, record: StoredFile) -> int:
        return record.downloads + self.counter.pending(record.id)

    def _count_download(self, record: StoredFile) -> int:
        """With a limit, atomic: the limit is checked and the counter bumped in one statement."""
        if record.max_downloads is None:
            return record.downloads + self.counter.add(record.id)
        with self.db.write_connection() as conn:
            downloads = conn.execute(
                _COUNT_DOWNLOAD, {"file_id": record.id, "now": self.clock()}
            ).scalar()
        if downloads is None:
            self._mark_gone(record.id)
            raise Gone()
        return downloads

    def _mark_gone(self, file_id: int) -> None:
        # The body is deleted by the download that used up the limit when it ends (it may
        # still be streaming now), or by the expiry job once the tombstone is old enough.
        statement = (
            update(StoredFile)
            .where(StoredFile.id == file_id, StoredFile.state == FileState.READY)
            .values(state=FileState.GONE, gone_at=self.clock())
        )
        with self.db.write() as session:
            session.execute(statement)

    # -- management by token ------------------------------------------------------------

    def get_managed(self, token: str, actor: Actor) -> StoredFile:
        with self.db.read() as session:
            record = session.scalar(
                select(StoredFile).where(StoredFile.manage_token_hash == hash_token(token))
            )
        if record is None or record.state != FileState.READY or record.trashed_at is not None:
            raise NotFound("File not found or invalid token")
        if record.expires_at is not None and record.expires_at <= self.clock():
            raise NotFound("File not found or invalid token")
        self._check_manager(record, actor)
        return record

    def _check_manager(self, record: StoredFile, actor: Actor) -> None:
        # The token alone manages a guest upload; a drive file only by its owner.
        if record.owner_id is not None and not record.is_temp and record.owner_id != actor.user_id:
            raise Forbidden("Only the owner can manage this file")

    def update_managed(self, token: str, changes: ManageChanges, actor: Actor) -> StoredFile:
        record = self.get_managed(token, actor)
        if changes.max_downloads_given:
            self.counter.flush()  # a new limit is checked against the stored count
        values = self._changed_values(record, changes, actor)
        if not values:
            return record  # nothing was sent that changes anything
        with self.db.write() as session:
            session.execute(update(StoredFile).where(StoredFile.id == record.id).values(**values))
            fresh = session.get(StoredFile, record.id)
        assert fresh is not None
        return fresh

    def _changed_values(
        self, record: StoredFile, changes: ManageChanges, actor: Actor
    ) -> dict[str, object]:
        values: dict[str, object] = {}
        if changes.public is not None:
            values["is_public"] = changes.public
        if changes.password_given:
            values["password_hash"] = hash_password(changes.password) if changes.password else None
        if changes.max_downloads_given:
            values["max_downloads"] = changes.max_downloads
        if changes.expires_given:
            drive_owner = (
                not record.is_temp
                and actor.user_id is not None
                and actor.user_id == record.owner_id
            )
            if changes.expires is None and not drive_owner:
                raise BadRequest("expires=never needs a logged-in owner of a cloud drive file")
            values["expires_at"] = expiry_time(self.clock(), changes.expires)
        return values

    def delete_managed(self, token: str, actor: Actor) -> None:
        record = self.get_managed(token, actor)
        self.delete_file(record.id)

    def copy(self, record: StoredFile, owner_id: int, folder_id: int | None) -> StoredFile:
        """A new drive file of ``owner_id`` with ``record``'s content and settings: the
        plaintext streams through a new data key into a blob of its own."""
        from satchel.core.blobs import store_stream

        blob = store_stream(
            self.store, self.read(record, 0, record.size), record.name, record.content_type
        )
        options = UploadOptions(
            is_temp=False,
            folder_id=folder_id,
            public=record.is_public,
            short_url=record.short_code is not None,
            e2e=record.is_e2e,
            e2e_salt=record.e2e_salt,
            e2e_iv=record.e2e_iv,
            e2e_format=record.e2e_format,
        )
        try:
            created = self.register_upload(blob, options, Actor(ip="", user_id=owner_id))
            values = {"password_hash": record.password_hash, "max_downloads": record.max_downloads}
            with self.db.write() as session:
                session.execute(
                    update(StoredFile).where(StoredFile.id == created.file.id).values(**values)
                )
                fresh = session.get(StoredFile, created.file.id)
        except BaseException:
            self.store.delete(blob.blob_key)
            raise
        assert fresh is not None
        return fresh

    def set_password_hash(self, created: CreatedUpload, password_hash: str) -> CreatedUpload:
        """For a password hashed before the file arrived (a tus upload's option)."""
        with self.db.write() as session:
            session.execute(
                update(StoredFile)
                .where(StoredFile.id == created.file.id)
                .values(password_hash=password_hash)
            )
            fresh = session.get(StoredFile, created.file.id)
        assert fresh is not None
        return CreatedUpload(fresh, created.manage_token)

    def delete_files(self, file_ids: list[int]) -> int:
        """Rows first, then blobs: a crash in between leaves orphan blobs, which the sweep
        removes, never a row whose body is gone."""
        deleted = 0
        for start in range(0, len(file_ids), 500):
            chunk = file_ids[start : start + 500]
            with self.db.write() as session:
                keys = list(
                    session.scalars(select(StoredFile.blob_key).where(StoredFile.id.in_(chunk)))
                )
                session.execute(delete(StoredFile).where(StoredFile.id.in_(chunk)))
            for key in keys:
                self.store.delete(key)
            deleted += len(keys)
        return deleted

    def delete_file(self, file_id: int) -> None:
        with self.db.write() as session:
            record = session.get(StoredFile, file_id)
            if record is None:
                return
            blob_key = record.blob_key
            session.execute(delete(StoredFile).where(StoredFile.id == file_id))
        self.store.delete(blob_key)

    def lookup_blob_keys(self, session: Session, keys: list[str]) -> set[str]:
        """Those of ``keys`` a row points to: a file's, or a tus upload's whose registration
        a crash interrupted (it is finished when the upload is next asked for)."""
        files = session.scalars(select(StoredFile.blob_key).where(StoredFile.blob_key.in_(keys)))
        uploads = session.scalars(select(TusUpload.blob_key).where(TusUpload.blob_key.in_(keys)))
        return {*files, *uploads}
