"""The rows of stored files, as shared uploads and downloads use them.

Hot paths (a download's look-up and count, an upload's insert) use Core statements built
once: building SQLAlchemy statements costs more than running them on SQLite, and the ORM's
identity map and loading cost more than the query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from satchel.db.models import FileState, Folder, StoredFile, TusUpload

_BY_UUID = select(StoredFile.__table__).where(StoredFile.uuid == bindparam("uuid"))
_INSERT = insert(StoredFile).returning(StoredFile.id)
_COUNT_DOWNLOAD = (
    update(StoredFile)
    .where(StoredFile.id == bindparam("file_id"), StoredFile.state == FileState.READY)
    .where(or_(StoredFile.max_downloads.is_(None), StoredFile.downloads < StoredFile.max_downloads))
    .values(downloads=StoredFile.downloads + 1, last_download_at=bindparam("now"))
    .returning(StoredFile.downloads)
)
_ADD_DOWNLOADS = (
    update(StoredFile)
    .where(StoredFile.id == bindparam("file_id"))
    .values(downloads=StoredFile.downloads + bindparam("count"), last_download_at=bindparam("now"))
)


def by_uuid(conn: Connection, uuid: str) -> StoredFile | None:
    row = conn.execute(_BY_UUID, {"uuid": uuid}).mappings().first()
    return None if row is None else StoredFile(**row)


def insert_file(conn: Connection, values: dict[str, Any]) -> int:
    file_id: int = conn.execute(_INSERT, values).scalar_one()
    return file_id


def count_download(conn: Connection, file_id: int, now: datetime) -> int | None:
    """One more download of a file with a limit, in one statement: None when none is left."""
    downloads: int | None = conn.execute(_COUNT_DOWNLOAD, {"file_id": file_id, "now": now}).scalar()
    return downloads


def add_downloads(conn: Connection, counts: dict[int, int], now: datetime) -> None:
    """In the order of the ids, as every writer of several rows locks them: two such writers
    then queue instead of deadlocking."""
    rows = [
        {"file_id": file_id, "count": counts[file_id], "now": now} for file_id in sorted(counts)
    ]
    conn.execute(_ADD_DOWNLOADS, rows)


class FileRows:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, file_id: int) -> StoredFile | None:
        return self.session.get(StoredFile, file_id)

    def by_short_code(self, code: str) -> StoredFile | None:
        return self.session.scalar(select(StoredFile).where(StoredFile.short_code == code))

    def by_token_hash(self, token_hash: str) -> StoredFile | None:
        return self.session.scalar(
            select(StoredFile).where(StoredFile.manage_token_hash == token_hash)
        )

    def folder(self, folder_id: int) -> Folder | None:
        return self.session.get(Folder, folder_id)

    def update(self, file_id: int, **values: Any) -> None:
        self.session.execute(update(StoredFile).where(StoredFile.id == file_id).values(**values))

    def mark_gone(self, file_id: int, now: datetime) -> None:
        self.session.execute(
            update(StoredFile)
            .where(StoredFile.id == file_id, StoredFile.state == FileState.READY)
            .values(state=FileState.GONE, gone_at=now)
        )

    def set_short_code_if_none(self, file_id: int, code: str) -> str | None:
        self.session.execute(
            update(StoredFile)
            .where(StoredFile.id == file_id, StoredFile.short_code.is_(None))
            .values(short_code=code)
        )
        return self.session.scalar(select(StoredFile.short_code).where(StoredFile.id == file_id))

    def delete(self, file_ids: Sequence[int]) -> list[str]:
        """Deletes the rows; their blob keys, for the caller to delete after the commit."""
        keys = list(
            self.session.scalars(select(StoredFile.blob_key).where(StoredFile.id.in_(file_ids)))
        )
        self.session.execute(delete(StoredFile).where(StoredFile.id.in_(file_ids)))
        return keys

    def known_blob_keys(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` a row points to: a file's, or a tus upload's whose registration
        a crash interrupted (it is finished when the upload is next asked for)."""
        files = self.session.scalars(
            select(StoredFile.blob_key).where(StoredFile.blob_key.in_(keys))
        )
        uploads = self.session.scalars(
            select(TusUpload.blob_key).where(TusUpload.blob_key.in_(keys))
        )
        return {*files, *uploads}
