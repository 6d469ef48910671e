"""The public API (SPEC §2, §3): upload, download, short links, management, deletion."""

from __future__ import annotations

from starlette.routing import Route

from satchel.web.public import downloads, manage, openapi, uploads


def routes() -> list[Route]:
    return [
        Route("/openapi.json", openapi.openapi, methods=["GET"]),
        Route("/", uploads.index, methods=["GET"]),
        Route("/upload", uploads.upload, methods=["POST"]),
        Route("/f/{public_id}", downloads.download, methods=["GET", "HEAD"]),
        Route("/f/{public_id}/encrypted", downloads.download, methods=["GET", "HEAD"]),
        Route("/f/{public_id}/{filename:path}", downloads.download, methods=["GET", "HEAD"]),
        Route("/s/{code}", downloads.short_link, methods=["GET", "HEAD"]),
        Route("/manage/{token}", manage.show, methods=["GET"]),
        Route("/manage/{token}", manage.update, methods=["POST"]),
        Route("/manage/{token}/download", downloads.owner_download, methods=["GET", "HEAD"]),
        Route("/delete/{token}", manage.remove, methods=["POST", "DELETE"]),
    ]
