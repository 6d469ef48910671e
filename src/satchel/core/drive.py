"""The cloud drive: folders, listing, search, trash, restore, claims and storage quotas.

Drive files are rows of ``files`` with an owner and ``is_temp`` false; folders live in their
own table. Everything here is scoped by owner: another user's ids are "not found".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from satchel.core.files import Actor, FileService
from satchel.core.ids import hash_token, is_id, new_short_code, parse_number
from satchel.core.names import make_unique, safe_content_type, safe_filename
from satchel.core.passwords import hash_password
from satchel.db.models import FileState, Folder, StoredFile
from satchel.errors import BadRequest, Conflict, Forbidden, InsufficientStorage, NotFound

SHARE_CODE_LENGTH = 12
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_DEPTH = 64
MAX_QUERY = 255
MAX_CURSOR = 2048  # a cursor holds a kind, a name (at most 255 characters) and an id
FILE_NOT_FOUND = "File not found"
FOLDER_NOT_FOUND = "Folder not found"
NOT_IN_TRASH = "Not in the trash"


@dataclass(frozen=True)
class FolderSharing:
    is_public: int = 0  # 0 private, 1 unlisted, 2 public
    access_password_md5: str | None = None  # as /api/v2 sends it; only a hash of it is kept


@dataclass(frozen=True)
class FolderChanges:
    name: str | None = None
    parent_id: int | None = None
    parent_given: bool = False
    is_public: int | None = None
    sharing: FolderSharing | None = None  # replaces visibility and password together


@dataclass(frozen=True)
class FileChanges:
    name: str | None = None
    content_type: str | None = None
    folder_id: int | None = None
    folder_given: bool = False


@dataclass(frozen=True)
class FolderStats:
    total_size: int
    total_downloads: int
    child_folder_count: int
    file_count: int


@dataclass(frozen=True)
class Page:
    """One page of a listing: folders come before files, each sorted by (name, id)."""

    folders: list[Folder]
    files: list[StoredFile]
    next_cursor: str | None


@dataclass(frozen=True)
class Cursor:
    kind: str  # "folder" or "file": the kind of the last item of the previous page
    name: str
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.kind, self.name, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        if len(text) > MAX_CURSOR:
            raise BadRequest("Invalid cursor")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            kind, name, item_id = json.loads(raw)
        except (binascii.Error, ValueError, TypeError, RecursionError):
            raise BadRequest("Invalid cursor") from None
        if kind not in ("folder", "file") or not isinstance(name, str):
            raise BadRequest("Invalid cursor")
        if not is_id(item_id) or len(name) > 1024:
            raise BadRequest("Invalid cursor")
        return cls(kind, name, item_id)


def parse_limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    number = parse_number(text, MAX_LIMIT)
    if number is None or number < 1:
        raise BadRequest(f"Invalid limit: a number from 1 to {MAX_LIMIT}")
    return number


def folder_name(raw: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequest("Folder name is required")
    if "/" in raw or "\\" in raw:
        raise BadRequest("Invalid folder name: no / or \\ in a folder name")
    name = safe_filename(raw, fallback="")
    if not name:
        raise BadRequest("Invalid folder name")
    return name


class DriveService:
    def __init__(self, files: FileService) -> None:
        self.files = files
        self.db = files.db
        files.drive_name = self.drive_name

    def now(self) -> datetime:
        return self.files.clock()

    # -- look-ups -----------------------------------------------------------------------

    def folder(self, owner_id: int, folder_id: int | None) -> Folder | None:
        """A live folder of this owner (None is the root), else 404."""
        if folder_id is None:
            return None
        with self.db.read() as session:
            return self._live_folder(session, owner_id, folder_id)

    def file(self, owner_id: int, file_id: int) -> StoredFile:
        """A live drive file of this owner, else 404."""
        with self.db.read() as session:
            found = session.get(StoredFile, file_id)
        if (
            found is None
            or found.owner_id != owner_id
            or found.is_temp
            or found.trashed_at is not None
            or found.state != FileState.READY
        ):
            raise NotFound(FILE_NOT_FOUND)
        return found

    def used_bytes(self, owner_id: int) -> int:
        """Storage that counts against the quota: every stored file of the user, trash included."""
        with self.db.read() as session:
            total = session.scalar(
                select(func.coalesce(func.sum(StoredFile.size), 0)).where(
                    StoredFile.owner_id == owner_id, StoredFile.state == FileState.READY
                )
            )
        return int(total or 0)

    def check_quota(self, owner_id: int | None, quota: int, incoming: int) -> None:
        """507 when ``incoming`` more bytes would take the owner past ``quota`` (0 = none)."""
        if owner_id is not None and quota and self.used_bytes(owner_id) + incoming > quota:
            raise InsufficientStorage(f"Storage quota exceeded (quota {quota} bytes)")

    # -- folders ------------------------------------------------------------------------

    def create_folder(
        self,
        owner_id: int,
        name: str,
        parent_id: int | None,
        sharing: FolderSharing | None = None,
    ) -> Folder:
        clean = folder_name(name)
        with self.db.write() as session:
            self._live_folder(session, owner_id, parent_id)
            unique = _unique_name(session, Folder, owner_id, parent_id, clean)
            folder = Folder(
                owner_id=owner_id,
                parent_id=parent_id,
                name=unique,
                created_at=self.now(),
                is_public=sharing.is_public if sharing else 0,
                access_password_hash=_password_hash(sharing),
                share_code=new_short_code(SHARE_CODE_LENGTH),
            )
            session.add(folder)
            session.flush()
            if self._depth(session, parent_id) >= MAX_DEPTH:
                raise BadRequest(f"Folders nest at most {MAX_DEPTH} deep")
        return folder

    def _depth(self, session: Session, folder_id: int | None) -> int:
        depth = 0
        while folder_id is not None and depth <= MAX_DEPTH:
            folder_id = session.scalar(select(Folder.parent_id).where(Folder.id == folder_id))
            depth += 1
        return depth

    def _live_folder(self, session: Session, owner_id: int, folder_id: int | None) -> Folder | None:
        found = _live(session, owner_id, folder_id)
        if found is None and folder_id is not None:
            raise NotFound(FOLDER_NOT_FOUND)
        return found

    def drive_name(self, owner_id: int, folder_id: int | None, name: str) -> str:
        """``name``, or ``name (2)``… when the folder already holds a file called that."""
        with self.db.read() as session:
            return _unique_name(session, StoredFile, owner_id, folder_id, name)

    # -- listing and search -------------------------------------------------------------

    def listing(
        self, owner_id: int, folder_id: int | None, limit: int, cursor: Cursor | None
    ) -> Page:
        folders = and_(
            Folder.owner_id == owner_id,
            _is(Folder.parent_id, folder_id),
            Folder.trashed_at.is_(None),
        )
        files = and_(_drive_files(owner_id), _is(StoredFile.folder_id, folder_id))
        return self._page(folders, files, limit, cursor)

    def search(self, owner_id: int, query: str, limit: int, cursor: Cursor | None) -> Page:
        text = query.strip()
        if not text:
            raise BadRequest("Search needs a query: q=…")
        if len(text) > MAX_QUERY:
            raise BadRequest(f"Search query too long (at most {MAX_QUERY} characters)")
        # autoescape: % and _ in the query match themselves, not any characters.
        folders = and_(
            Folder.owner_id == owner_id,
            Folder.trashed_at.is_(None),
            Folder.name.icontains(text, autoescape=True),
        )
        files = and_(_drive_files(owner_id), StoredFile.name.icontains(text, autoescape=True))
        return self._page(folders, files, limit, cursor)

    def trash(self, owner_id: int, limit: int, cursor: Cursor | None) -> Page:
        folders = and_(Folder.owner_id == owner_id, Folder.trashed_at.is_not(None))
        files = and_(
            StoredFile.owner_id == owner_id,
            StoredFile.is_temp.is_(False),
            StoredFile.trashed_at.is_not(None),
            StoredFile.state == FileState.READY,
        )
        return self._page(folders, files, limit, cursor)

    def _page(
        self,
        folder_filter: ColumnElement[bool],
        file_filter: ColumnElement[bool],
        limit: int,
        cursor: Cursor | None,
    ) -> Page:
        folders: list[Folder] = []
        files: list[StoredFile] = []
        with self.db.read() as session:
            if cursor is None or cursor.kind == "folder":
                statement = select(Folder).where(folder_filter)
                if cursor is not None:
                    statement = statement.where(
                        tuple_(Folder.name, Folder.id) > tuple_(cursor.name, cursor.id)
                    )
                folders = list(
                    session.scalars(statement.order_by(Folder.name, Folder.id).limit(limit + 1))
                )
            room = limit + 1 - len(folders)
            if room > 0:
                file_query = select(StoredFile).where(file_filter)
                if cursor is not None and cursor.kind == "file":
                    file_query = file_query.where(
                        tuple_(StoredFile.name, StoredFile.id) > tuple_(cursor.name, cursor.id)
                    )
                files = list(
                    session.scalars(file_query.order_by(StoredFile.name, StoredFile.id).limit(room))
                )
        items: list[Folder | StoredFile] = [*folders, *files]
        next_cursor = None
        if len(items) > limit:
            last = items[limit - 1]
            kind = "folder" if isinstance(last, Folder) else "file"
            next_cursor = Cursor(kind, last.name, last.id).encode()
            items = items[:limit]
        return Page(
            folders=[i for i in items if isinstance(i, Folder)],
            files=[i for i in items if isinstance(i, StoredFile)],
            next_cursor=next_cursor,
        )

    # -- trash --------------------------------------------------------------------------

    def trash_file(self, owner_id: int, file_id: int) -> None:
        self.file(owner_id, file_id)
        with self.db.write() as session:
            session.execute(
                update(StoredFile)
                .where(StoredFile.id == file_id, StoredFile.trashed_at.is_(None))
                .values(trashed_at=self.now(), trashed_with=None)
            )

    def trash_folder(self, owner_id: int, folder_id: int) -> None:
        """The folder and everything still live in it go to the trash together."""
        now = self.now()
        with self.db.write() as session:
            self._live_folder(session, owner_id, folder_id)
            inside = _subtree(session, owner_id, folder_id, live_only=True)
            session.execute(
                update(Folder)
                .where(Folder.id == folder_id)
                .values(trashed_at=now, trashed_with=None)
            )
            for chunk in _chunks(inside):
                session.execute(
                    update(Folder)
                    .where(Folder.id.in_(chunk), Folder.trashed_at.is_(None))
                    .values(trashed_at=now, trashed_with=folder_id)
                )
            for chunk in _chunks([folder_id, *inside]):
                session.execute(
                    update(StoredFile)
                    .where(
                        StoredFile.owner_id == owner_id,
                        StoredFile.folder_id.in_(chunk),
                        StoredFile.is_temp.is_(False),
                        StoredFile.trashed_at.is_(None),
                    )
                    .values(trashed_at=now, trashed_with=folder_id)
                )

    def trashed_item(self, owner_id: int, item_id: int, kind: str | None) -> Folder | StoredFile:
        """A file or folder in this owner's trash. Files and folders number separately, so
        when both exist with this id the caller must say which (``type=file|folder``)."""
        if kind not in (None, "file", "folder"):
            raise BadRequest("Invalid type: use file or folder")
        with self.db.read() as session:
            found_file = session.get(StoredFile, item_id) if kind != "folder" else None
            found_folder = session.get(Folder, item_id) if kind != "file" else None
        candidates: list[Folder | StoredFile] = []
        if (
            found_file is not None
            and found_file.owner_id == owner_id
            and not found_file.is_temp
            and found_file.trashed_at is not None
            and found_file.state == FileState.READY
        ):
            candidates.append(found_file)
        if (
            found_folder is not None
            and found_folder.owner_id == owner_id
            and found_folder.trashed_at is not None
        ):
            candidates.append(found_folder)
        if not candidates:
            raise NotFound(NOT_IN_TRASH)
        if len(candidates) > 1:
            raise Conflict(
                f"Both a file and a folder {item_id} are in the trash: add ?type=file or ?type=folder"
            )
        return candidates[0]

    def restore(self, owner_id: int, item_id: int, kind: str | None = None) -> Folder | StoredFile:
        """Back to where it was, or to the root when that folder is gone or in the trash; a name
        taken meanwhile gets a number."""
        item = self.trashed_item(owner_id, item_id, kind)
        with self.db.write() as session:
            if isinstance(item, StoredFile):
                target = _live_or_root(session, owner_id, item.folder_id)
                name = _unique_name(session, StoredFile, owner_id, target, item.name)
                session.execute(
                    update(StoredFile)
                    .where(StoredFile.id == item.id)
                    .values(folder_id=target, name=name, trashed_at=None, trashed_with=None)
                )
                restored: Folder | StoredFile | None = session.get(StoredFile, item.id)
            else:
                target = _live_or_root(session, owner_id, item.parent_id)
                name = _unique_name(session, Folder, owner_id, target, item.name)
                batch = item.trashed_with or item.id
                inside = _same_batch(
                    session, _subtree(session, owner_id, item.id, live_only=False), batch
                )
                session.execute(
                    update(Folder)
                    .where(Folder.id == item.id)
                    .values(parent_id=target, name=name, trashed_at=None, trashed_with=None)
                )
                for chunk in _chunks(inside):
                    session.execute(
                        update(Folder)
                        .where(Folder.id.in_(chunk))
                        .values(trashed_at=None, trashed_with=None)
                    )
                for chunk in _chunks([item.id, *inside]):
                    session.execute(
                        update(StoredFile)
                        .where(
                            StoredFile.owner_id == owner_id,
                            StoredFile.folder_id.in_(chunk),
                            StoredFile.trashed_with == batch,
                        )
                        .values(trashed_at=None, trashed_with=None)
                    )
                restored = session.get(Folder, item.id)
        assert restored is not None
        return restored

    def delete_forever(self, owner_id: int, item_id: int, kind: str | None = None) -> int:
        """Deletes a trashed file, or a trashed folder with what went to the trash with it;
        returns how many files went. Things trashed on their own earlier stay in the trash
        (restored, they go to the root)."""
        item = self.trashed_item(owner_id, item_id, kind)
        if isinstance(item, StoredFile):
            return self.files.delete_files([item.id])
        batch = item.trashed_with or item.id
        with self.db.read() as session:
            inside = _same_batch(
                session, _subtree(session, owner_id, item.id, live_only=False), batch
            )
            folder_ids = [item.id, *inside]
            file_ids: list[int] = []
            for chunk in _chunks(folder_ids):
                file_ids.extend(
                    session.scalars(
                        select(StoredFile.id).where(
                            StoredFile.owner_id == owner_id,
                            StoredFile.folder_id.in_(chunk),
                            StoredFile.trashed_with == batch,
                        )
                    )
                )
        deleted = self.files.delete_files(file_ids)
        self._delete_folder_rows(folder_ids)
        return deleted

    def empty_trash(self, owner_id: int) -> int:
        return self._purge(
            and_(StoredFile.owner_id == owner_id, StoredFile.trashed_at.is_not(None)),
            and_(Folder.owner_id == owner_id, Folder.trashed_at.is_not(None)),
        )

    def purge_trash(self, retention: timedelta) -> int:
        """Everything in anyone's trash for longer than ``retention`` (the job runner's task).
        A folder and its contents went to the trash together, so they go together."""
        cutoff = self.now() - retention
        return self._purge(
            and_(StoredFile.trashed_at.is_not(None), StoredFile.trashed_at <= cutoff),
            and_(Folder.trashed_at.is_not(None), Folder.trashed_at <= cutoff),
        )

    def _purge(self, file_filter: ColumnElement[bool], folder_filter: ColumnElement[bool]) -> int:
        with self.db.read() as session:
            file_ids = list(
                session.scalars(
                    select(StoredFile.id).where(file_filter, StoredFile.is_temp.is_(False))
                )
            )
            folder_ids = list(session.scalars(select(Folder.id).where(folder_filter)))
        deleted = self.files.delete_files(file_ids)
        self._delete_folder_rows(folder_ids)
        return deleted

    def _delete_folder_rows(self, folder_ids: list[int]) -> None:
        with self.db.write() as session:
            for chunk in _chunks(folder_ids):
                session.execute(delete(Folder).where(Folder.id.in_(chunk)))

    # -- edits, moves and copies --------------------------------------------------------

    def edit_file(self, owner_id: int, file_id: int, changes: FileChanges) -> StoredFile:
        """Rename, retype or move a live drive file; a name taken in the target gets a number."""
        record = self.file(owner_id, file_id)
        values: dict[str, Any] = {}
        target = record.folder_id
        if changes.folder_given:
            self.folder(owner_id, changes.folder_id)
            target = changes.folder_id
            values["folder_id"] = target
        if changes.content_type:
            values["content_type"] = safe_content_type(changes.content_type)
        name = safe_filename(changes.name) if changes.name else record.name
        if changes.name or target != record.folder_id:
            with self.db.read() as session:
                values["name"] = (
                    name
                    if name == record.name and target == record.folder_id
                    else _unique_name(session, StoredFile, owner_id, target, name, record.id)
                )
        if values:
            with self.db.write() as session:
                session.execute(update(StoredFile).where(StoredFile.id == file_id).values(**values))
        return self.file(owner_id, file_id)

    def copy_file(self, owner_id: int, file_id: int, folder_id: int | None) -> StoredFile:
        """A new drive file with the same content (a blob of its own, under a new key)."""
        record = self.file(owner_id, file_id)
        self.folder(owner_id, folder_id)
        return self.files.copy(record, owner_id, folder_id)

    def edit_folder(self, owner_id: int, folder_id: int, changes: FolderChanges) -> Folder:
        current = self.folder(owner_id, folder_id)
        assert current is not None
        values: dict[str, Any] = {"updated_at": self.now()}
        parent = current.parent_id
        with self.db.write() as session:
            if changes.parent_given:
                self._live_folder(session, owner_id, changes.parent_id)
                if changes.parent_id is not None and (
                    changes.parent_id == folder_id
                    or changes.parent_id in _subtree(session, owner_id, folder_id, live_only=True)
                ):
                    raise BadRequest("A folder cannot move into itself or a folder inside it")
                parent = changes.parent_id
                values["parent_id"] = parent
            name = folder_name(changes.name) if changes.name else current.name
            if changes.name or parent != current.parent_id:
                values["name"] = _unique_name(session, Folder, owner_id, parent, name, folder_id)
            if changes.sharing is not None:
                values["is_public"] = changes.sharing.is_public
                values["access_password_hash"] = _password_hash(changes.sharing)
            elif changes.is_public is not None:
                values["is_public"] = changes.is_public
            session.execute(update(Folder).where(Folder.id == folder_id).values(**values))
            if changes.parent_given and self._depth(session, folder_id) > MAX_DEPTH:
                raise BadRequest(f"Folders nest at most {MAX_DEPTH} deep")
        found = self.folder(owner_id, folder_id)
        assert found is not None
        return found

    def folder_stats(self, folder: Folder) -> FolderStats:
        """Size and downloads of the files directly in it, and how many children it has."""
        with self.db.read() as session:
            size, downloads, files = session.execute(
                select(
                    func.coalesce(func.sum(StoredFile.size), 0),
                    func.coalesce(func.sum(StoredFile.downloads), 0),
                    func.count(StoredFile.id),
                ).where(_drive_files(folder.owner_id), StoredFile.folder_id == folder.id)
            ).one()
            children = session.scalar(
                select(func.count(Folder.id)).where(
                    Folder.owner_id == folder.owner_id,
                    Folder.parent_id == folder.id,
                    Folder.trashed_at.is_(None),
                )
            )
        return FolderStats(int(size), int(downloads), int(children or 0), int(files))

    def shared_folder(self, share_code: str) -> Folder:
        """A live folder shared by link (unlisted or public), else 404."""
        with self.db.read() as session:
            found = session.scalar(select(Folder).where(Folder.share_code == share_code))
        if found is None or found.trashed_at is not None or found.is_public not in (1, 2):
            raise NotFound(FOLDER_NOT_FOUND)
        return found

    def search_public_folders(self, query: str, limit: int = 50) -> list[Folder]:
        text = query.strip()
        statement = select(Folder).where(Folder.is_public == 2, Folder.trashed_at.is_(None))
        if text:
            statement = statement.where(Folder.name.icontains(text, autoescape=True))
        with self.db.read() as session:
            return list(session.scalars(statement.order_by(Folder.name, Folder.id).limit(limit)))

    def public_files(self, folder: Folder, limit: int, cursor: Cursor | None) -> Page:
        """What a shared folder's page shows: its live files and subfolders."""
        return self.listing(folder.owner_id, folder.id, limit, cursor)

    def ensure_short_code(self, record: StoredFile) -> str:
        """The file's short code, given one now if it has none (/api/v2 links use them)."""
        if record.short_code:
            return record.short_code
        for _attempt in range(5):
            code = new_short_code(self.files.settings.short_code_length)
            try:
                with self.db.write() as session:
                    session.execute(
                        update(StoredFile)
                        .where(StoredFile.id == record.id, StoredFile.short_code.is_(None))
                        .values(short_code=code)
                    )
                    stored = session.scalar(
                        select(StoredFile.short_code).where(StoredFile.id == record.id)
                    )
            except IntegrityError:
                continue
            record.short_code = stored
            return str(stored)
        raise RuntimeError("could not allocate a unique short code")

    # -- claims -------------------------------------------------------------------------

    def claim(self, token: str, actor: Actor) -> StoredFile:
        """A logged-in holder of a management token takes a guest upload into their drive:
        it moves to the root of the drive, and no longer expires."""
        if actor.user_id is None:
            raise Forbidden("Log in to claim an upload into your drive")
        record = self.files.get_managed(token, actor)
        if not record.is_temp:
            raise Conflict("This file is already in a drive")
        if record.owner_id is not None and record.owner_id != actor.user_id:
            raise Forbidden("Only the uploader can claim this file")
        name = self.drive_name(actor.user_id, None, record.name)
        with self.db.write() as session:
            session.execute(
                update(StoredFile)
                .where(
                    StoredFile.manage_token_hash == hash_token(token),
                    StoredFile.is_temp.is_(True),
                )
                .values(
                    owner_id=actor.user_id,
                    is_temp=False,
                    folder_id=None,
                    name=name,
                    expires_at=None,
                )
            )
            fresh = session.get(StoredFile, record.id)
        assert fresh is not None
        return fresh


def _password_hash(sharing: FolderSharing | None) -> str | None:
    if sharing is None or not sharing.access_password_md5:
        return None
    return hash_password(sharing.access_password_md5.lower())


def _drive_files(owner_id: int) -> ColumnElement[bool]:
    return and_(
        StoredFile.owner_id == owner_id,
        StoredFile.is_temp.is_(False),
        StoredFile.trashed_at.is_(None),
        StoredFile.state == FileState.READY,
    )


def _is(column: Any, value: int | None) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value  # type: ignore[no-any-return]


def _unique_name(
    session: Session,
    model: type[Folder] | type[StoredFile],
    owner_id: int,
    parent_id: int | None,
    name: str,
    itself: int | None = None,
) -> str:
    """The first of ``name``, ``name (2)``, ``name (3)``… not live in that folder (any case)."""
    if model is Folder:
        scope = and_(
            Folder.owner_id == owner_id,
            _is(Folder.parent_id, parent_id),
            Folder.trashed_at.is_(None),
        )
        column: Any = Folder.name
    else:
        scope = and_(_drive_files(owner_id), _is(StoredFile.folder_id, parent_id))
        column = StoredFile.name
    stem, dot, _ext = name.rpartition(".")
    prefix = stem if dot and stem else name  # numbered() keeps this part in front
    similar = or_(column == name, func.lower(column).startswith(prefix.lower(), autoescape=True))
    statement = select(column).where(scope, similar)
    if itself is not None:
        statement = statement.where(model.id != itself)
    taken = {str(n).lower() for n in session.scalars(statement)}
    return make_unique(name, taken)


def _live(session: Session, owner_id: int, folder_id: int | None) -> Folder | None:
    """The owner's folder when it exists and is not in the trash, else None."""
    if folder_id is None:
        return None
    found = session.get(Folder, folder_id)
    if found is None or found.owner_id != owner_id or found.trashed_at is not None:
        return None
    return found


def _live_or_root(session: Session, owner_id: int, folder_id: int | None) -> int | None:
    return folder_id if _live(session, owner_id, folder_id) is not None else None


def _same_batch(session: Session, folder_ids: list[int], batch: int) -> list[int]:
    """Those of ``folder_ids`` that went to the trash together with folder ``batch``."""
    found: list[int] = []
    for chunk in _chunks(folder_ids):
        found.extend(
            session.scalars(
                select(Folder.id).where(Folder.id.in_(chunk), Folder.trashed_with == batch)
            )
        )
    return found


def _subtree(session: Session, owner_id: int, folder_id: int, live_only: bool) -> list[int]:
    """Ids of every folder below ``folder_id`` (not itself), breadth first."""
    found: list[int] = []
    level = [folder_id]
    for _depth in range(MAX_DEPTH + 1):
        if not level:
            break
        children: list[int] = []
        for chunk in _chunks(level):
            statement = select(Folder.id).where(
                Folder.owner_id == owner_id, Folder.parent_id.in_(chunk)
            )
            if live_only:
                statement = statement.where(Folder.trashed_at.is_(None))
            children.extend(session.scalars(statement))
        found.extend(children)
        level = children
    return found


def _chunks(ids: Sequence[int], size: int = 500) -> list[list[int]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]
