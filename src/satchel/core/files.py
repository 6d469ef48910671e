"""Stored files: what an upload registers, what a management token manages, and the body
read back, decrypted, for downloads and copies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from satchel.config import Settings
from satchel.core.actors import Actor
from satchel.core.audit import Event, record
from satchel.core.bundles import IngestedBlob
from satchel.core.counters import DownloadCounter
from satchel.core.expiry import expiry_time
from satchel.core.ids import (
    hash_token,
    new_blob_key,
    new_manage_token,
    new_public_id,
    new_short_code,
)
from satchel.core.keyring import MasterKeys
from satchel.core.options import ManageChanges, UploadOptions
from satchel.core.passwords import hash_password
from satchel.crypto.atrest import ciphertext_size, decrypt_range, decrypt_whole
from satchel.db.engine import Database
from satchel.db.models import FileState, StoredFile, utcnow
from satchel.db.repositories.files import FileRows, by_uuid, insert_file
from satchel.errors import BadRequest, Forbidden, NotFound
from satchel.storage.base import BlobStore

Clock = Callable[[], datetime]
SHORT_CODE_ATTEMPTS = 5


@dataclass(frozen=True)
class CreatedUpload:
    file: StoredFile
    manage_token: str


def is_live(record: StoredFile, now: datetime) -> bool:
    """Whether a file's links work: not used up and removed, not in its owner's trash, not
    expired. (A file whose last allowed download was counted is still live until that download
    has ended: downloads check the count themselves.)"""
    if record.state != FileState.READY or record.trashed_at is not None:
        return False
    return record.expires_at is None or record.expires_at > now


def used_up(record: StoredFile) -> bool:
    return record.max_downloads is not None and record.downloads >= record.max_downloads


class FileService:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        keys: MasterKeys,
        settings: Settings,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.store = store
        self.keys = keys
        self.settings = settings
        self.clock = clock
        self.counter = DownloadCounter(db, lambda: self.clock())

    # -- registering --------------------------------------------------------------------

    def register_upload(
        self, blob: IngestedBlob, options: UploadOptions, actor: Actor, name: str | None = None
    ) -> CreatedUpload:
        """The row that makes ``blob`` a file (the upload policy decides whether it may be);
        ``name`` overrides the blob's (a drive file's free name in its folder)."""
        token = new_manage_token()
        now = self.clock()
        wrapped = self.keys.wrap(blob.data_key)
        values: dict[str, Any] = {
            "uuid": new_public_id(),
            "manage_token_hash": hash_token(token),
            "name": name or blob.name,
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
        record = self._insert_with_short_code(values, options.short_url)
        return CreatedUpload(record, token)

    def _initial_expiry(self, options: UploadOptions, now: datetime) -> datetime | None:
        if not options.is_temp:
            return expiry_time(now, options.expires) if options.expires_given else None
        duration = options.expires or timedelta(seconds=self.settings.default_expiry)
        return expiry_time(now, duration)

    def _insert_with_short_code(self, values: dict[str, Any], want_short: bool) -> StoredFile:
        for _attempt in range(SHORT_CODE_ATTEMPTS):
            if want_short:
                values["short_code"] = new_short_code(self.settings.short_code_length)
            try:
                with self.db.write_connection() as conn:
                    file_id = insert_file(conn, values)
                return StoredFile(id=file_id, **values)
            except IntegrityError:
                if not want_short:
                    raise
        raise RuntimeError("could not allocate a unique short code")

    def set_password_hash(self, created: CreatedUpload, password_hash: str) -> CreatedUpload:
        """For a password hashed before the file arrived (a tus upload's option)."""
        with self.db.write() as session:
            rows = FileRows(session)
            rows.update(created.file.id, password_hash=password_hash)
            fresh = rows.get(created.file.id)
        assert fresh is not None
        return CreatedUpload(fresh, created.manage_token)

    def ensure_short_code(self, record: StoredFile) -> str:
        """The file's short code, given one now if it has none (/api/v2 links use them)."""
        if record.short_code:
            return record.short_code
        for _attempt in range(SHORT_CODE_ATTEMPTS):
            code = new_short_code(self.settings.short_code_length)
            try:
                with self.db.write() as session:
                    stored = FileRows(session).set_short_code_if_none(record.id, code)
            except IntegrityError:
                continue
            record.short_code = stored
            return str(stored)
        raise RuntimeError("could not allocate a unique short code")

    # -- looking up -----------------------------------------------------------------------

    def lookup(self, public_id: str) -> StoredFile:
        with self.db.connect() as conn:
            record = by_uuid(conn, public_id)
        if record is None:
            raise NotFound()
        return record

    def by_short_code(self, code: str) -> StoredFile:
        with self.db.read() as session:
            record = FileRows(session).by_short_code(code)
        if record is None:
            raise NotFound()
        return record

    def get(self, file_id: int) -> StoredFile | None:
        with self.db.read() as session:
            return FileRows(session).get(file_id)

    def downloads_of(self, record: StoredFile) -> int:
        return record.downloads + self.counter.pending(record.id)

    # -- the body -----------------------------------------------------------------------

    def read_small(self, record: StoredFile, start: int, end: int) -> bytes:
        """The plaintext of a file of at most one chunk, from one read of its blob."""
        size = ciphertext_size(record.size)
        blob = b"".join(self.store.read_range(record.blob_key, 0, size, piece_size=size))
        plain = decrypt_whole(blob, self.keys.unwrap(record.wrapped_key), record.size)
        return plain[start:end]

    def read(self, record: StoredFile, start: int, end: int) -> Iterator[bytes]:
        data_key = self.keys.unwrap(record.wrapped_key)
        return decrypt_range(self.store, record.blob_key, data_key, record.size, start, end)

    def copy_blob(self, record: StoredFile) -> IngestedBlob:
        """A blob of its own with ``record``'s bytes, copied by the store (on S3 a server-side
        copy: no byte passes through Satchel). The sealed bytes are copied as they are, so the
        copy has the same data key, which its own row wraps again; deleting either file leaves
        the other whole."""
        key = new_blob_key()
        self.store.copy(record.blob_key, key)
        return IngestedBlob(
            blob_key=key,
            data_key=self.keys.unwrap(record.wrapped_key),
            size=record.size,
            name=record.name,
            content_type=record.content_type,
            file_count=1,
            file_names=[record.name],
        )

    # -- management by token --------------------------------------------------------------

    def get_managed(self, token: str, actor: Actor) -> StoredFile:
        """The token alone manages a guest upload; a drive file only by its owner."""
        with self.db.read() as session:
            record = FileRows(session).by_token_hash(hash_token(token))
        if record is None or not is_live(record, self.clock()):
            raise NotFound("File not found or invalid token")
        if record.owner_id is not None and not record.is_temp and record.owner_id != actor.user_id:
            raise Forbidden("Only the owner can manage this file")
        return record

    def update_managed(self, token: str, changes: ManageChanges, actor: Actor) -> StoredFile:
        return self.apply_changes(self.get_managed(token, actor), changes, actor)

    def apply_changes(self, record: StoredFile, changes: ManageChanges, actor: Actor) -> StoredFile:
        """What /manage changes, on a file the caller may manage (checked before)."""
        if changes.max_downloads_given:
            self.counter.flush()  # a new limit is checked against the stored count
        values = self._changed_values(record, changes, actor)
        if not values:
            return record  # nothing was sent that changes anything
        with self.db.write() as session:
            rows = FileRows(session)
            rows.update(record.id, **values)
            fresh = rows.get(record.id)
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
            drive_owner = not record.is_temp and actor.user_id == record.owner_id
            if changes.expires is None and not drive_owner:
                raise BadRequest("expires=never needs a logged-in owner of a cloud drive file")
            values["expires_at"] = expiry_time(self.clock(), changes.expires)
        return values

    def delete_managed(self, token: str, actor: Actor) -> None:
        stored = self.get_managed(token, actor)
        self.delete_files([stored.id])
        record(self.db, Event.FILE_DELETED, actor.user_id, f"file:{stored.id}", "by its link")

    def update(self, file_id: int, **values: Any) -> StoredFile:
        with self.db.write() as session:
            rows = FileRows(session)
            rows.update(file_id, **values)
            fresh = rows.get(file_id)
        assert fresh is not None
        return fresh

    # -- deleting -----------------------------------------------------------------------

    def delete_files(self, file_ids: list[int]) -> int:
        """Rows first, then blobs: a crash in between leaves orphan blobs, which the sweep
        removes, never a row whose body is gone."""
        deleted = 0
        for start in range(0, len(file_ids), 500):
            with self.db.write() as session:
                keys = FileRows(session).delete(file_ids[start : start + 500])
            for key in keys:
                self.store.delete(key)
            deleted += len(keys)
        return deleted

    def known_blob_keys(self, keys: list[str]) -> set[str]:
        with self.db.read() as session:
            return FileRows(session).known_blob_keys(keys)
