"""Browser pages around shared things: shared folders, the public folder search, file stats,
delete confirmations and the owner's page of a drive file."""

from __future__ import annotations

from starlette.routing import Route

from satchel.web.pages import drive_files, files, folders


def routes() -> list[Route]:
    return [
        Route("/folders", folders.search, methods=["GET"]),
        Route("/folder/{code}", folders.show, methods=["GET"]),
        Route("/folder/{code}", folders.unlock, methods=["POST"]),
        Route("/folder/{code}/file/{file_id}", folders.download, methods=["GET", "HEAD"]),
        Route("/folder/{code}/{slug}", folders.show, methods=["GET"]),
        Route("/folder/{code}/{slug}", folders.unlock, methods=["POST"]),
        Route("/stats/{uuid}", files.stats, methods=["GET"]),
        Route("/delete/{token}", files.confirm_delete, methods=["GET"]),
        Route("/drive/file/{file_id}", drive_files.show, methods=["GET"]),
        Route("/drive/file/{file_id}/delete", drive_files.confirm_trash, methods=["GET"]),
        Route("/drive/file/{file_id}/delete", drive_files.trash, methods=["POST"]),
    ]
