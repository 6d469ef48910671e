"""What a shared folder shows to whoever may open it, and the site's search of public
folders. Who may open one is core.access's to say."""

from __future__ import annotations

from satchel.core.drive.listing import Cursor, ListingService, Page, search_text
from satchel.db.engine import Database
from satchel.db.models import Folder
from satchel.db.repositories.drive import DriveRows

SEARCH_LIMIT = 50


class SharingService:
    def __init__(self, db: Database, listings: ListingService) -> None:
        self.db = db
        self.listings = listings

    def contents(self, folder: Folder, limit: int, cursor: Cursor | None) -> Page:
        """Its live files and subfolders."""
        return self.listings.folder(folder.owner_id, folder.id, limit, cursor)

    def search_public(self, query: str, limit: int = SEARCH_LIMIT) -> list[Folder]:
        text = search_text(query)
        with self.db.read() as session:
            return DriveRows(session).public_folders(text, limit)
