"""``GET /qr.svg?url=…``: a QR code of one of this server's links, drawn by Satchel (no outside
service sees the link). Only links of this server, and never one with a ``#fragment``: an
end-to-end key must not reach the server."""

from __future__ import annotations

import asyncio
import io

import segno
from starlette.requests import Request
from starlette.responses import Response

from satchel.errors import BadRequest
from satchel.web.state import AppState

MAX_URL = 2048
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, max-age=3600",
}


def qr_code(url: str) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(
        out, kind="svg", border=2, omitsize=True, xmldecl=False, dark="#000", light="#fff"
    )
    return out.getvalue()


async def qr_svg(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    await state.limiter.hit("download", await state.actor(request))  # drawing costs a little
    url = request.query_params.get("url", "")
    own = state.url("/")
    if len(url) > MAX_URL or not url.startswith(own) or "#" in url:
        raise BadRequest(f"url must be a link of this server ({own}…) without a #fragment")
    body = await asyncio.to_thread(qr_code, url)
    return Response(body, media_type="image/svg+xml", headers=HEADERS)
