"""Files of a drive: looking one up, renaming, moving, copying, and claiming a guest upload
into it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from satchel.core.actors import Actor, Member
from satchel.core.drive.folders import FolderService, free_name
from satchel.core.files import FileService
from satchel.core.names import safe_content_type, safe_filename
from satchel.core.options import ManageChanges, UploadOptions
from satchel.core.uploads import UploadPolicy
from satchel.db.engine import Database
from satchel.db.models import StoredFile, utcnow
from satchel.db.repositories.drive import DriveRows
from satchel.errors import Conflict, FileNotFound, Forbidden


@dataclass(frozen=True)
class FileChanges:
    name: str | None = None
    content_type: str | None = None
    folder_id: int | None = None
    folder_given: bool = False


class DriveFileService:
    def __init__(
        self,
        db: Database,
        files: FileService,
        folders: FolderService,
        uploads: UploadPolicy,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.files = files
        self.folders = folders
        self.uploads = uploads
        self.clock = clock

    def get(self, owner_id: int, file_id: int) -> StoredFile:
        """A live drive file of this owner, else FileNotFound."""
        with self.db.read() as session:
            found = DriveRows(session).live_file(owner_id, file_id)
        if found is None:
            raise FileNotFound()
        return found

    def edit(self, owner_id: int, file_id: int, changes: FileChanges) -> StoredFile:
        """Rename, retype or move a live drive file; a name taken in the target gets a number."""
        record = self.get(owner_id, file_id)
        values: dict[str, Any] = {}
        target = record.folder_id
        if changes.folder_given:
            self.folders.live(owner_id, changes.folder_id)
            target = values["folder_id"] = changes.folder_id
        if changes.content_type:
            values["content_type"] = safe_content_type(changes.content_type)
        name = safe_filename(changes.name) if changes.name else record.name
        with self.db.write() as session:
            rows = DriveRows(session)
            if name != record.name or target != record.folder_id:
                values["name"] = free_name(rows, StoredFile, owner_id, target, name, record.id)
            if values:
                rows.update_file(file_id, **values)
        return self.get(owner_id, file_id)

    def share(
        self, owner: Member, file_id: int, changes: ManageChanges, short_link: bool | None = None
    ) -> StoredFile:
        """The owner changes what /manage changes (public, password, expiry, download limit),
        and turns the short link on or off (None: unchanged)."""
        record = self.files.apply_changes(self.get(owner.user_id, file_id), changes, owner)
        if short_link and not record.short_code:
            self.files.ensure_short_code(record)
        elif short_link is False and record.short_code:
            self.files.update(record.id, short_code=None)
        return self.get(owner.user_id, file_id)

    def copy(self, owner: Member, file_id: int, folder_id: int | None) -> StoredFile:
        """A new drive file with the same content (a blob of its own, under a new key) and
        settings, within the owner's quota."""
        record = self.get(owner.user_id, file_id)
        self.folders.live(owner.user_id, folder_id)
        self.uploads.admit(owner, record.size)
        blob = self.files.copy_blob(record)
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
            [created] = self.uploads.register(owner, [blob], options)
        except BaseException:
            self.files.store.delete(blob.blob_key)
            raise
        kept = {"password_hash": record.password_hash, "max_downloads": record.max_downloads}
        return self.files.update(created.file.id, **kept)

    def claim(self, token: str, actor: Actor) -> StoredFile:
        """A logged-in holder of a management token takes a guest upload into their drive:
        it moves to the root of the drive, and no longer expires."""
        if not isinstance(actor, Member):
            raise Forbidden("Log in to claim an upload into your drive")
        record = self.files.get_managed(token, actor)
        if not record.is_temp:
            raise Conflict("This file is already in a drive")
        if record.owner_id is not None and record.owner_id != actor.user_id:
            raise Forbidden("Only the uploader can claim this file")
        name = self.folders.free_file_name(actor.user_id, None, record.name)
        with self.db.write() as session:
            rows = DriveRows(session)
            # Of two claims at once, one takes it.
            if not rows.claim(record.id, actor.user_id, name):
                raise Conflict("This file is already in a drive")
            claimed = session.get(StoredFile, record.id)
        assert claimed is not None
        return claimed
