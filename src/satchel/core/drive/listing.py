"""Listings of a drive: a folder's contents, search, the trash; one page at a time.

Pages are keyset-paginated: folders come before files, each sorted by (name, id), and the
cursor names the last item of the page before.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from satchel.core.ids import is_id, parse_number
from satchel.db.engine import Database
from satchel.db.models import Folder, StoredFile
from satchel.db.repositories.drive import (
    DriveRows,
    PageCursor,
    Scope,
    in_folder,
    in_trash,
    matching,
)
from satchel.errors import BadRequest

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_QUERY = 255
MAX_CURSOR = 2048  # a cursor holds a kind, a name (at most 255 characters) and an id


@dataclass(frozen=True)
class Page:
    folders: list[Folder]
    files: list[StoredFile]
    next_cursor: str | None


@dataclass(frozen=True)
class Cursor(PageCursor):
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


def search_text(query: str) -> str:
    text = query.strip()
    if len(text) > MAX_QUERY:
        raise BadRequest(f"Search query too long (at most {MAX_QUERY} characters)")
    return text


class ListingService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def folder(
        self, owner_id: int, folder_id: int | None, limit: int, cursor: Cursor | None
    ) -> Page:
        """What is directly in a folder (None: the root)."""
        return self._page(in_folder(owner_id, folder_id), limit, cursor)

    def search(self, owner_id: int, query: str, limit: int, cursor: Cursor | None) -> Page:
        text = search_text(query)
        if not text:
            raise BadRequest("Search needs a query: q=…")
        return self._page(matching(owner_id, text), limit, cursor)

    def trash(self, owner_id: int, limit: int, cursor: Cursor | None) -> Page:
        return self._page(in_trash(owner_id), limit, cursor)

    def everything_in(self, owner_id: int, folder_id: int | None) -> Page:
        """Every item of a folder, page after page (for clients that take no cursor)."""
        folders: list[Folder] = []
        files: list[StoredFile] = []
        cursor = None
        while True:
            page = self.folder(owner_id, folder_id, MAX_LIMIT, cursor)
            folders += page.folders
            files += page.files
            if page.next_cursor is None:
                return Page(folders, files, None)
            cursor = Cursor.decode(page.next_cursor)

    def _page(self, scope: Scope, limit: int, cursor: Cursor | None) -> Page:
        with self.db.read() as session:
            folders, files = DriveRows(session).page(scope, limit, cursor)
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
