"""Folders of a drive: creating, renaming, moving, sharing settings, totals; and the free
name for something new in a folder ("a (2).txt")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from satchel.core.ids import new_short_code
from satchel.core.names import make_unique, safe_filename
from satchel.core.passwords import hash_password
from satchel.db.engine import Database
from satchel.db.models import Folder, FolderVisibility, StoredFile, utcnow
from satchel.db.repositories.drive import MAX_DEPTH, DriveRows
from satchel.errors import BadRequest, FolderNotFound

SHARE_CODE_LENGTH = 12


@dataclass(frozen=True)
class FolderSharing:
    visibility: FolderVisibility = FolderVisibility.PRIVATE
    access_password_md5: str | None = None  # as /api/v2 sends it; only a hash of it is kept


@dataclass(frozen=True)
class FolderChanges:
    name: str | None = None
    parent_id: int | None = None
    parent_given: bool = False
    visibility: FolderVisibility | None = None
    sharing: FolderSharing | None = None  # replaces visibility and password together


@dataclass(frozen=True)
class FolderStats:
    total_size: int
    total_downloads: int
    child_folder_count: int
    file_count: int


def folder_name(raw: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequest("Folder name is required")
    if "/" in raw or "\\" in raw:
        raise BadRequest("Invalid folder name: no / or \\ in a folder name")
    name = safe_filename(raw, fallback="")
    if not name:
        raise BadRequest("Invalid folder name")
    return name


def free_name(
    rows: DriveRows,
    kind: type[Folder] | type[StoredFile],
    owner_id: int,
    parent_id: int | None,
    name: str,
    itself: int | None = None,
) -> str:
    """The first of ``name``, ``name (2)``, ``name (3)``… not live in that folder (any case)."""
    stem, dot, _ext = name.rpartition(".")
    prefix = stem if dot and stem else name  # numbered() keeps this part in front
    return make_unique(name, rows.taken_names(kind, owner_id, parent_id, name, prefix, itself))


def access_password_hash(sharing: FolderSharing | None) -> str | None:
    if sharing is None or not sharing.access_password_md5:
        return None
    return hash_password(sharing.access_password_md5.lower())


class FolderService:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def live(self, owner_id: int, folder_id: int | None) -> Folder | None:
        """A live folder of this owner (None is the root), else FolderNotFound."""
        if folder_id is None:
            return None
        with self.db.read() as session:
            return _live_or_404(DriveRows(session), owner_id, folder_id)

    def free_file_name(self, owner_id: int, folder_id: int | None, name: str) -> str:
        with self.db.read() as session:
            return free_name(DriveRows(session), StoredFile, owner_id, folder_id, name)

    def create(
        self,
        owner_id: int,
        name: str,
        parent_id: int | None,
        sharing: FolderSharing | None = None,
    ) -> Folder:
        clean = folder_name(name)
        with self.db.write() as session:
            rows = DriveRows(session)
            _live_or_404(rows, owner_id, parent_id)
            folder = Folder(
                owner_id=owner_id,
                parent_id=parent_id,
                name=free_name(rows, Folder, owner_id, parent_id, clean),
                created_at=self.clock(),
                is_public=sharing.visibility if sharing else FolderVisibility.PRIVATE,
                access_password_hash=access_password_hash(sharing),
                share_code=new_short_code(SHARE_CODE_LENGTH),
            )
            session.add(folder)
            session.flush()
            if rows.depth(parent_id) >= MAX_DEPTH:
                raise BadRequest(f"Folders nest at most {MAX_DEPTH} deep")
        return folder

    def edit(self, owner_id: int, folder_id: int, changes: FolderChanges) -> Folder:
        with self.db.write() as session:
            rows = DriveRows(session)
            current = _live_or_404(rows, owner_id, folder_id)
            assert current is not None
            values = self._moved(rows, current, changes)
            name = folder_name(changes.name) if changes.name else current.name
            parent = changes.parent_id if changes.parent_given else current.parent_id
            if changes.name or parent != current.parent_id:
                values["name"] = free_name(rows, Folder, owner_id, parent, name, folder_id)
            values.update(_sharing_values(changes))
            rows.update_folder(folder_id, updated_at=self.clock(), **values)
            if changes.parent_given and rows.depth(folder_id) > MAX_DEPTH:
                raise BadRequest(f"Folders nest at most {MAX_DEPTH} deep")
        found = self.live(owner_id, folder_id)
        assert found is not None
        return found

    def _moved(self, rows: DriveRows, current: Folder, changes: FolderChanges) -> dict[str, object]:
        if not changes.parent_given:
            return {}
        _live_or_404(rows, current.owner_id, changes.parent_id)
        inside = rows.subtree(current.owner_id, current.id, live_only=True)
        if changes.parent_id is not None and (
            changes.parent_id == current.id or changes.parent_id in inside
        ):
            raise BadRequest("A folder cannot move into itself or a folder inside it")
        return {"parent_id": changes.parent_id}

    def stats(self, folder: Folder) -> FolderStats:
        """Size and downloads of the files directly in it, and how many children it has."""
        with self.db.read() as session:
            size, downloads, files, children = DriveRows(session).folder_totals(folder)
        return FolderStats(size, downloads, children, files)


def _sharing_values(changes: FolderChanges) -> dict[str, object]:
    if changes.sharing is not None:
        return {
            "is_public": changes.sharing.visibility,
            "access_password_hash": access_password_hash(changes.sharing),
        }
    if changes.visibility is not None:
        return {"is_public": changes.visibility}
    return {}


def _live_or_404(rows: DriveRows, owner_id: int, folder_id: int | None) -> Folder | None:
    found = rows.live_folder(owner_id, folder_id)
    if found is None and folder_id is not None:
        raise FolderNotFound()
    return found
