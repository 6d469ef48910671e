"""The public API (SPEC §2, §3): upload, download, short links, management, deletion."""

from __future__ import annotations

from starlette.routing import Route

from satchel.web.errors import guard, public
from satchel.web.public import downloads, manage, openapi, qr, uploads


def routes() -> list[Route]:
    shaped = guard(public)
    return [
        Route("/openapi.json", openapi.openapi, methods=["GET"]),
        Route("/", shaped(uploads.index), methods=["GET"]),
        Route("/qr.svg", shaped(qr.qr_svg), methods=["GET"]),
        Route("/upload", shaped(uploads.upload), methods=["POST"]),
        Route("/f/{public_id}", shaped(downloads.download), methods=["GET", "HEAD"]),
        Route("/f/{public_id}/encrypted", shaped(downloads.download), methods=["GET", "HEAD"]),
        Route(
            "/f/{public_id}/{filename:path}", shaped(downloads.download), methods=["GET", "HEAD"]
        ),
        Route("/s/{code}", shaped(downloads.short_link), methods=["GET", "HEAD"]),
        Route("/manage/{token}", shaped(manage.show), methods=["GET"]),
        Route("/manage/{token}", shaped(manage.update), methods=["POST"]),
        Route(
            "/manage/{token}/download", shaped(downloads.owner_download), methods=["GET", "HEAD"]
        ),
        Route("/delete/{token}", shaped(manage.remove), methods=["POST", "DELETE"]),
    ]
