"""The drive's rows: folders and the drive files in them, every query scoped by owner.

A repository works inside a session its caller opened, so that the caller decides what
one transaction holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from satchel.db.models import FileState, Folder, FolderVisibility, StoredFile

MAX_DEPTH = 64
CHUNK = 500


ORDER_KEYS = ("name", "size", "date")


@dataclass(frozen=True)
class Order:
    """How a listing is sorted: folders always come first; folders have no size, so under
    ``size`` they go by name. Ties go by id, in the same direction."""

    key: str = "name"  # one of ORDER_KEYS
    descending: bool = False


BY_NAME = Order()


@dataclass(frozen=True)
class PageCursor:
    """Where a listing goes on: after the item of this kind, name and id (and, when the
    listing is not sorted by name, the value of its sort key)."""

    kind: str  # "folder" or "file"
    name: str
    id: int
    value: str | int | datetime | None = None


@dataclass(frozen=True)
class Scope:
    """Which folders and drive files a listing shows."""

    folders: ColumnElement[bool]
    files: ColumnElement[bool]


def in_folder(owner_id: int, folder_id: int | None) -> Scope:
    return Scope(
        and_(Folder.owner_id == owner_id, _is(Folder.parent_id, folder_id), _live_folder()),
        and_(live_files(owner_id), _is(StoredFile.folder_id, folder_id)),
    )


def matching(owner_id: int, text: str) -> Scope:
    # autoescape: % and _ in the query match themselves, not any characters.
    return Scope(
        and_(
            Folder.owner_id == owner_id,
            _live_folder(),
            Folder.name.icontains(text, autoescape=True),
        ),
        and_(live_files(owner_id), StoredFile.name.icontains(text, autoescape=True)),
    )


def in_trash(owner_id: int) -> Scope:
    return Scope(
        and_(Folder.owner_id == owner_id, Folder.trashed_at.is_not(None)),
        and_(
            StoredFile.owner_id == owner_id,
            StoredFile.is_temp.is_(False),
            StoredFile.trashed_at.is_not(None),
            StoredFile.state == FileState.READY,
        ),
    )


def live_files(owner_id: int) -> ColumnElement[bool]:
    """The owner's drive files that are neither in the trash nor used up."""
    return and_(
        StoredFile.owner_id == owner_id,
        StoredFile.is_temp.is_(False),
        StoredFile.trashed_at.is_(None),
        StoredFile.state == FileState.READY,
    )


class DriveRows:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- look-ups -----------------------------------------------------------------------

    def live_folder(self, owner_id: int, folder_id: int | None) -> Folder | None:
        """The owner's folder when it exists and is not in the trash, else None."""
        if folder_id is None:
            return None
        found = self.session.get(Folder, folder_id)
        if found is None or found.owner_id != owner_id or found.trashed_at is not None:
            return None
        return found

    def live_file(self, owner_id: int, file_id: int) -> StoredFile | None:
        return self._drive_file(owner_id, file_id, in_trash=False)

    def trashed_file(self, owner_id: int, file_id: int) -> StoredFile | None:
        return self._drive_file(owner_id, file_id, in_trash=True)

    def _drive_file(self, owner_id: int, file_id: int, in_trash: bool) -> StoredFile | None:
        found = self.session.get(StoredFile, file_id)
        if found is None or found.owner_id != owner_id or found.is_temp:
            return None
        if (found.trashed_at is not None) != in_trash or found.state != FileState.READY:
            return None
        return found

    def trashed_folder(self, owner_id: int, folder_id: int) -> Folder | None:
        found = self.session.get(Folder, folder_id)
        if found is None or found.owner_id != owner_id or found.trashed_at is None:
            return None
        return found

    def folder_by_share_code(self, code: str) -> Folder | None:
        return self.session.scalar(select(Folder).where(Folder.share_code == code))

    def depth(self, folder_id: int | None) -> int:
        depth = 0
        while folder_id is not None and depth <= MAX_DEPTH:
            folder_id = self.session.scalar(select(Folder.parent_id).where(Folder.id == folder_id))
            depth += 1
        return depth

    def subtree(self, owner_id: int, folder_id: int, live_only: bool) -> list[int]:
        """Ids of every folder below ``folder_id`` (not itself), breadth first."""
        found: list[int] = []
        level = [folder_id]
        for _depth in range(MAX_DEPTH + 1):
            if not level:
                break
            children: list[int] = []
            for part in chunks(level):
                statement = select(Folder.id).where(
                    Folder.owner_id == owner_id, Folder.parent_id.in_(part)
                )
                if live_only:
                    statement = statement.where(_live_folder())
                children.extend(self.session.scalars(statement))
            found.extend(children)
            level = children
        return found

    def same_batch(self, folder_ids: list[int], batch: int) -> list[int]:
        """Those of ``folder_ids`` that went to the trash together with folder ``batch``."""
        found: list[int] = []
        for part in chunks(folder_ids):
            found.extend(
                self.session.scalars(
                    select(Folder.id).where(Folder.id.in_(part), Folder.trashed_with == batch)
                )
            )
        return found

    def taken_names(
        self,
        kind: type[Folder] | type[StoredFile],
        owner_id: int,
        parent_id: int | None,
        name: str,
        prefix: str,
        itself: int | None = None,
    ) -> set[str]:
        """Lower-cased live names in the folder that are ``name`` or start with ``prefix``."""
        if kind is Folder:
            scope = in_folder(owner_id, parent_id).folders
            column: Any = Folder.name
        else:
            scope = in_folder(owner_id, parent_id).files
            column = StoredFile.name
        similar = or_(
            column == name, func.lower(column).startswith(prefix.lower(), autoescape=True)
        )
        statement = select(column).where(scope, similar)
        if itself is not None:
            statement = statement.where(kind.id != itself)
        return {str(n).lower() for n in self.session.scalars(statement)}

    # -- listings -----------------------------------------------------------------------

    def page(
        self, scope: Scope, limit: int, after: PageCursor | None, order: Order = BY_NAME
    ) -> tuple[list[Folder], list[StoredFile]]:
        """Up to ``limit`` + 1 items after ``after``: folders first, each kind in ``order``."""
        folders: list[Folder] = []
        if after is None or after.kind == "folder":
            folders = list(self._sorted(Folder, scope.folders, order, after, limit + 1))
        files: list[StoredFile] = []
        room = limit + 1 - len(folders)
        if room > 0:
            file_after = after if after is not None and after.kind == "file" else None
            files = list(self._sorted(StoredFile, scope.files, order, file_after, room))
        return folders, files

    def _sorted(
        self,
        kind: type[Folder] | type[StoredFile],
        where: ColumnElement[bool],
        order: Order,
        after: PageCursor | None,
        limit: int,
    ) -> Any:
        column = sort_column(kind, order.key)
        statement: Any = select(kind).where(where)
        if after is not None:
            value = after.name if column is kind.name else after.value
            key = tuple_(column, kind.id)
            start = tuple_(value, after.id)
            statement = statement.where(key < start if order.descending else key > start)
        if order.descending:
            statement = statement.order_by(column.desc(), kind.id.desc())
        else:
            statement = statement.order_by(column, kind.id)
        return self.session.scalars(statement.limit(limit))

    def live_folders(self, owner_id: int, limit: int) -> list[Folder]:
        """Up to ``limit`` of the owner's live folders (a tree to draw), by name."""
        statement = select(Folder).where(Folder.owner_id == owner_id, _live_folder())
        return list(self.session.scalars(statement.order_by(Folder.name, Folder.id).limit(limit)))

    def public_folders(self, text: str, limit: int) -> list[Folder]:
        statement = select(Folder).where(
            Folder.is_public == FolderVisibility.PUBLIC, _live_folder()
        )
        if text:
            statement = statement.where(Folder.name.icontains(text, autoescape=True))
        return list(self.session.scalars(statement.order_by(Folder.name, Folder.id).limit(limit)))

    def used_bytes(self, owner_id: int) -> int:
        """Every stored file of the owner, the trash included."""
        total = self.session.scalar(
            select(func.coalesce(func.sum(StoredFile.size), 0)).where(
                StoredFile.owner_id == owner_id, StoredFile.state == FileState.READY
            )
        )
        return int(total or 0)

    def folder_totals(self, folder: Folder) -> tuple[int, int, int, int]:
        """Size, downloads and count of the files directly in it, and its live children."""
        size, downloads, files = self.session.execute(
            select(
                func.coalesce(func.sum(StoredFile.size), 0),
                func.coalesce(func.sum(StoredFile.downloads), 0),
                func.count(StoredFile.id),
            ).where(live_files(folder.owner_id), StoredFile.folder_id == folder.id)
        ).one()
        children = self.session.scalar(
            select(func.count(Folder.id)).where(in_folder(folder.owner_id, folder.id).folders)
        )
        return int(size), int(downloads), int(files), int(children or 0)

    # -- changes ------------------------------------------------------------------------

    def update_folder(self, folder_id: int, **values: Any) -> None:
        self.session.execute(update(Folder).where(Folder.id == folder_id).values(**values))

    def update_file(self, file_id: int, **values: Any) -> None:
        self.session.execute(update(StoredFile).where(StoredFile.id == file_id).values(**values))

    def claim(self, file_id: int, owner_id: int, name: str) -> bool:
        """A guest upload into the root of ``owner_id``'s drive, without expiry."""
        result = self.session.execute(
            update(StoredFile)
            .where(StoredFile.id == file_id, StoredFile.is_temp.is_(True))
            .values(owner_id=owner_id, is_temp=False, folder_id=None, name=name, expires_at=None)
        )
        return bool(getattr(result, "rowcount", 0))

    def trash_folders(self, folder_ids: Sequence[int], when: datetime, batch: int) -> None:
        for part in chunks(folder_ids):
            self.session.execute(
                update(Folder)
                .where(Folder.id.in_(part), Folder.trashed_at.is_(None))
                .values(trashed_at=when, trashed_with=batch)
            )

    def trash_files_in(
        self, owner_id: int, folder_ids: Sequence[int], when: datetime, batch: int
    ) -> None:
        for part in chunks(folder_ids):
            self.session.execute(
                update(StoredFile)
                .where(
                    StoredFile.owner_id == owner_id,
                    StoredFile.folder_id.in_(part),
                    StoredFile.is_temp.is_(False),
                    StoredFile.trashed_at.is_(None),
                )
                .values(trashed_at=when, trashed_with=batch)
            )

    def untrash_folders(self, folder_ids: Sequence[int]) -> None:
        for part in chunks(folder_ids):
            self.session.execute(
                update(Folder).where(Folder.id.in_(part)).values(trashed_at=None, trashed_with=None)
            )

    def untrash_files_in(self, owner_id: int, folder_ids: Sequence[int], batch: int) -> None:
        for part in chunks(folder_ids):
            self.session.execute(
                update(StoredFile)
                .where(
                    StoredFile.owner_id == owner_id,
                    StoredFile.folder_id.in_(part),
                    StoredFile.trashed_with == batch,
                )
                .values(trashed_at=None, trashed_with=None)
            )

    def files_trashed_with(self, owner_id: int, folder_ids: Sequence[int], batch: int) -> list[int]:
        found: list[int] = []
        for part in chunks(folder_ids):
            found.extend(
                self.session.scalars(
                    select(StoredFile.id).where(
                        StoredFile.owner_id == owner_id,
                        StoredFile.folder_id.in_(part),
                        StoredFile.trashed_with == batch,
                    )
                )
            )
        return found

    def trashed_ids(
        self, owner_id: int | None, trashed_before: datetime | None
    ) -> tuple[list[int], list[int]]:
        """Drive file and folder ids in the trash (of one owner, or everyone's), trashed
        before a moment when one is given."""
        files: list[ColumnElement[bool]] = [
            StoredFile.trashed_at.is_not(None),
            StoredFile.is_temp.is_(False),
        ]
        folders: list[ColumnElement[bool]] = [Folder.trashed_at.is_not(None)]
        if owner_id is not None:
            files.append(StoredFile.owner_id == owner_id)
            folders.append(Folder.owner_id == owner_id)
        if trashed_before is not None:
            files.append(StoredFile.trashed_at <= trashed_before)
            folders.append(Folder.trashed_at <= trashed_before)
        file_ids = list(self.session.scalars(select(StoredFile.id).where(*files)))
        folder_ids = list(self.session.scalars(select(Folder.id).where(*folders)))
        return file_ids, folder_ids

    def delete_folders(self, folder_ids: Sequence[int]) -> None:
        for part in chunks(folder_ids):
            self.session.execute(delete(Folder).where(Folder.id.in_(part)))


def sort_column(kind: type[Folder] | type[StoredFile], key: str) -> Any:
    if key == "date":
        return kind.created_at
    if key == "size" and kind is StoredFile:
        return StoredFile.size
    return kind.name


def chunks(ids: Sequence[int], size: int = CHUNK) -> list[list[int]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def _is(column: Any, value: int | None) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value  # type: ignore[no-any-return]


def _live_folder() -> ColumnElement[bool]:
    return Folder.trashed_at.is_(None)
