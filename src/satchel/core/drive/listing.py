"""Listings of a drive: a folder's contents, search, the trash; one page at a time.

Pages are keyset-paginated: folders come before files, each sorted by (name, id) unless
another order is asked for (size or date, either way), and the cursor names the last item
of the page before, with its sort key.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from satchel.core.ids import is_id, parse_number
from satchel.db.engine import Database
from satchel.db.models import Folder, StoredFile
from satchel.db.repositories.drive import (
    BY_NAME,
    ORDER_KEYS,
    DriveRows,
    Order,
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
MAX_CURSOR = 2048  # a cursor holds a kind, a name (at most 255 characters), an id, a sort key
MAX_TREE = 2000  # folders drawn in a drive's folder tree


@dataclass(frozen=True)
class Page:
    folders: list[Folder]
    files: list[StoredFile]
    next_cursor: str | None


@dataclass(frozen=True)
class Cursor(PageCursor):
    order: Order = BY_NAME

    def encode(self) -> str:
        fields: list[object] = [self.kind, self.name, self.id]
        if self.order != BY_NAME:
            value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
            fields += [self.order.key, int(self.order.descending), value]
        raw = json.dumps(fields, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def after(cls, item: Folder | StoredFile, order: Order) -> Cursor:
        kind = "folder" if isinstance(item, Folder) else "file"
        value: str | int | datetime | None = None
        if order.key == "date":
            value = item.created_at
        elif order.key == "size" and isinstance(item, StoredFile):
            value = item.size
        return cls(kind, item.name, item.id, value, order)

    @classmethod
    def decode(cls, text: str | None, order: Order = BY_NAME) -> Cursor | None:
        """The cursor of a page of a listing in ``order`` (another order's is refused)."""
        if not text:
            return None
        if len(text) > MAX_CURSOR:
            raise BadRequest("Invalid cursor")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            fields = json.loads(raw)
            kind, name, item_id = fields[:3]
            value = _sort_value(fields[3:], order, kind)
        except (binascii.Error, ValueError, TypeError, RecursionError, KeyError, IndexError):
            raise BadRequest("Invalid cursor") from None
        if kind not in ("folder", "file") or not isinstance(name, str):
            raise BadRequest("Invalid cursor")
        if not is_id(item_id) or len(name) > 1024:
            raise BadRequest("Invalid cursor")
        return cls(kind, name, item_id, value, order)


def _sort_value(extra: list[object], order: Order, kind: str) -> str | int | datetime | None:
    """The sort key's value that a cursor carries after its kind, name and id."""
    if not extra:
        if order != BY_NAME:
            raise ValueError("a cursor of another order")
        return None
    key, descending, value = extra
    if key != order.key or bool(descending) != order.descending or order == BY_NAME:
        raise ValueError("a cursor of another order")
    if key == "date" and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a naive time")
        return moment
    if key == "size" and kind == "file":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("a bad size")
        return value
    if value is not None:
        raise ValueError("a bad sort value")
    return None


def parse_order(key: str | None, direction: str | None) -> Order:
    """``sort`` (name, size, date) and ``order`` (asc, desc) as a listing's order."""
    key = key or "name"
    if key not in ORDER_KEYS:
        raise BadRequest("Invalid sort: use name, size or date")
    if direction not in (None, "", "asc", "desc"):
        raise BadRequest("Invalid order: use asc or desc")
    return Order(key, direction == "desc")


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
        self,
        owner_id: int,
        folder_id: int | None,
        limit: int,
        cursor: Cursor | None,
        order: Order = BY_NAME,
    ) -> Page:
        """What is directly in a folder (None: the root)."""
        return self._page(in_folder(owner_id, folder_id), limit, cursor, order)

    def search(
        self, owner_id: int, query: str, limit: int, cursor: Cursor | None, order: Order = BY_NAME
    ) -> Page:
        text = search_text(query)
        if not text:
            raise BadRequest("Search needs a query: q=…")
        return self._page(matching(owner_id, text), limit, cursor, order)

    def trash(
        self, owner_id: int, limit: int, cursor: Cursor | None, order: Order = BY_NAME
    ) -> Page:
        return self._page(in_trash(owner_id), limit, cursor, order)

    def tree(self, owner_id: int) -> list[Folder]:
        """The owner's live folders (at most MAX_TREE), by name: the folder tree of a drive."""
        with self.db.read() as session:
            return DriveRows(session).live_folders(owner_id, MAX_TREE)

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

    def _page(self, scope: Scope, limit: int, cursor: Cursor | None, order: Order) -> Page:
        with self.db.read() as session:
            folders, files = DriveRows(session).page(scope, limit, cursor, order)
        items: list[Folder | StoredFile] = [*folders, *files]
        next_cursor = None
        if len(items) > limit:
            next_cursor = Cursor.after(items[limit - 1], order).encode()
            items = items[:limit]
        return Page(
            folders=[i for i in items if isinstance(i, Folder)],
            files=[i for i in items if isinstance(i, StoredFile)],
            next_cursor=next_cursor,
        )
