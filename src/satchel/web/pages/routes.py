"""Browser pages around shared things: shared folders, the public folder search, file stats,
delete confirmations and the owner's page of a drive file."""

from __future__ import annotations

from starlette.routing import Route

from satchel.web.errors import Handler, guard, public
from satchel.web.pages import admin, drive, drive_files, files, folders, share

PAGES: list[tuple[str, Handler, list[str]]] = [
    ("/folders", folders.search, ["GET"]),
    ("/folder/{code}", folders.show, ["GET"]),
    ("/folder/{code}", folders.unlock, ["POST"]),
    ("/folder/{code}/file/{file_id}", folders.download, ["GET", "HEAD"]),
    ("/folder/{code}/{slug}", folders.show, ["GET"]),
    ("/folder/{code}/{slug}", folders.unlock, ["POST"]),
    ("/stats/{uuid}", files.stats, ["GET"]),
    ("/delete/{token}", files.confirm_delete, ["GET"]),
    ("/drive/file/{file_id}", drive_files.show, ["GET"]),
    ("/drive/file/{file_id}/delete", drive_files.confirm_trash, ["GET"]),
    ("/drive/file/{file_id}/delete", drive_files.trash, ["POST"]),
    *share.PAGES,
    *drive.PAGES,
    *admin.PAGES,
]


def routes() -> list[Route]:
    """Pages answer errors as the public API does: a page for a browser, JSON otherwise."""
    shaped = guard(public)
    return [Route(path, shaped(handler), methods=methods) for path, handler, methods in PAGES]
