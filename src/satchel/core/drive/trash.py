"""The trash of a drive: what is deleted goes there, comes back from there, and is purged
after ``trash_retention``. A folder and everything still live in it go together (as one
batch, named after the folder) and come back together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from satchel.core.audit import Event, record
from satchel.core.drive.folders import free_name
from satchel.core.files import FileService
from satchel.db.engine import Database
from satchel.db.models import Folder, StoredFile, utcnow
from satchel.db.repositories.drive import DriveRows
from satchel.errors import BadRequest, Conflict, FileNotFound, FolderNotFound, NotInTrash

ITEM_KINDS = (None, "file", "folder")


class TrashService:
    def __init__(
        self, db: Database, files: FileService, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.files = files
        self.clock = clock

    def trash_file(self, owner_id: int, file_id: int) -> None:
        with self.db.write() as session:
            rows = DriveRows(session)
            if rows.live_file(owner_id, file_id) is None:
                raise FileNotFound()
            rows.update_file(file_id, trashed_at=self.clock(), trashed_with=None)
        record(self.db, Event.FILE_DELETED, owner_id, f"file:{file_id}", "to the trash")

    def trash_folder(self, owner_id: int, folder_id: int) -> None:
        """The folder and everything still live in it go to the trash together."""
        now = self.clock()
        with self.db.write() as session:
            rows = DriveRows(session)
            if rows.live_folder(owner_id, folder_id) is None:
                raise FolderNotFound()
            inside = rows.subtree(owner_id, folder_id, live_only=True)
            rows.update_folder(folder_id, trashed_at=now, trashed_with=None)
            rows.trash_folders(inside, now, batch=folder_id)
            rows.trash_files_in(owner_id, [folder_id, *inside], now, batch=folder_id)
        record(self.db, Event.FOLDER_DELETED, owner_id, f"folder:{folder_id}", "to the trash")

    def item(self, owner_id: int, item_id: int, kind: str | None) -> Folder | StoredFile:
        """A file or folder in this owner's trash. Files and folders number separately, so
        when both exist with this id the caller must say which (``type=file|folder``)."""
        if kind not in ITEM_KINDS:
            raise BadRequest("Invalid type: use file or folder")
        with self.db.read() as session:
            rows = DriveRows(session)
            found_file = rows.trashed_file(owner_id, item_id) if kind != "folder" else None
            found_folder = rows.trashed_folder(owner_id, item_id) if kind != "file" else None
        candidates = [item for item in (found_file, found_folder) if item is not None]
        if not candidates:
            raise NotInTrash()
        if len(candidates) > 1:
            raise Conflict(
                f"Both a file and a folder {item_id} are in the trash: add ?type=file or ?type=folder"
            )
        return candidates[0]

    def restore(self, owner_id: int, item_id: int, kind: str | None = None) -> Folder | StoredFile:
        """Back to where it was, or to the root when that folder is gone or in the trash; a name
        taken meanwhile gets a number."""
        item = self.item(owner_id, item_id, kind)
        with self.db.write() as session:
            rows = DriveRows(session)
            if isinstance(item, StoredFile):
                self._restore_file(rows, owner_id, item)
                restored: Folder | StoredFile | None = session.get(StoredFile, item.id)
            else:
                self._restore_folder(rows, owner_id, item)
                restored = session.get(Folder, item.id)
        assert restored is not None
        return restored

    def _restore_file(self, rows: DriveRows, owner_id: int, item: StoredFile) -> None:
        target = item.folder_id if rows.live_folder(owner_id, item.folder_id) else None
        name = free_name(rows, StoredFile, owner_id, target, item.name)
        rows.update_file(item.id, folder_id=target, name=name, trashed_at=None, trashed_with=None)

    def _restore_folder(self, rows: DriveRows, owner_id: int, item: Folder) -> None:
        target = item.parent_id if rows.live_folder(owner_id, item.parent_id) else None
        name = free_name(rows, Folder, owner_id, target, item.name)
        batch = item.trashed_with or item.id
        inside = rows.same_batch(rows.subtree(owner_id, item.id, live_only=False), batch)
        rows.update_folder(item.id, parent_id=target, name=name, trashed_at=None, trashed_with=None)
        rows.untrash_folders(inside)
        rows.untrash_files_in(owner_id, [item.id, *inside], batch)

    def delete_forever(self, owner_id: int, item_id: int, kind: str | None = None) -> int:
        """Deletes a trashed file, or a trashed folder with what went to the trash with it;
        returns how many files went. Things trashed on their own earlier stay in the trash
        (restored, they go to the root)."""
        item = self.item(owner_id, item_id, kind)
        if isinstance(item, StoredFile):
            return self._delete([item.id], [], owner_id)
        batch = item.trashed_with or item.id
        with self.db.read() as session:
            rows = DriveRows(session)
            folder_ids = [item.id, *rows.same_batch(rows.subtree(owner_id, item.id, False), batch)]
            file_ids = rows.files_trashed_with(owner_id, folder_ids, batch)
        return self._delete(file_ids, folder_ids, owner_id)

    def empty(self, owner_id: int) -> int:
        with self.db.read() as session:
            file_ids, folder_ids = DriveRows(session).trashed_ids(owner_id, None)
        return self._delete(file_ids, folder_ids, owner_id)

    def purge(self, retention: timedelta) -> int:
        """Everything in anyone's trash for longer than ``retention`` (a maintenance job)."""
        with self.db.read() as session:
            file_ids, folder_ids = DriveRows(session).trashed_ids(None, self.clock() - retention)
        return self._delete(file_ids, folder_ids)

    def _delete(
        self, file_ids: list[int], folder_ids: list[int], owner_id: int | None = None
    ) -> int:
        deleted = self.files.delete_files(file_ids)
        with self.db.write() as session:
            DriveRows(session).delete_folders(folder_ids)
        if owner_id is not None and (file_ids or folder_ids):
            detail = f"{len(file_ids)} file(s), {len(folder_ids)} folder(s) deleted for good"
            record(self.db, Event.TRASH_DELETED, owner_id, f"user:{owner_id}", detail)
        return deleted
