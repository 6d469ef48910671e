"""Pages of one file reached by a random secret: ``/stats/{uuid}`` and the confirmation
``GET /delete/{token}`` in front of the existing ``POST /delete/{token}``."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.ids import is_uuid4
from satchel.errors import NotFound, PasswordRequired, WrongPassword
from satchel.web.account.forms import form_page
from satchel.web.http import wants_html
from satchel.web.pages.share import PASS_COOKIE
from satchel.web.public.views import iso
from satchel.web.state import AppState
from satchel.web.templates import render


async def stats(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    public_id = request.path_params["uuid"]
    if not is_uuid4(public_id):
        raise NotFound()
    actor = await state.actor(request)
    await state.limiter.hit("download", actor)
    password = request.query_params.get("pw")
    file_pass = request.cookies.get(PASS_COOKIE)
    try:
        record = await asyncio.to_thread(
            state.downloads.stats, public_id, actor, password, file_pass
        )
    except (PasswordRequired, WrongPassword) as exc:
        if not wants_html(request):
            raise
        # The share page's form, which posts the password (a ?pw= form put it in the URL).
        wrong = isinstance(exc, WrongPassword)
        context = {
            "action": f"/d/{public_id}",
            "next": True,
            "error": exc.detail if wrong else None,
        }
        return form_page(request, "share_password.html", context, 403 if wrong else 401)
    facts = {
        "name": record.name,
        "size": record.size,
        "downloads": state.files.downloads_of(record),
        "created_at": iso(record.created_at),
        "last_download_at": iso(record.last_download_at),
    }
    if not wants_html(request):
        return JSONResponse(facts)
    return render(request, "stats.html", {"file": facts})


async def confirm_delete(request: Request) -> Response:
    """Links in e-mails and chats are followed by previews and scanners: a GET never deletes."""
    state: AppState = request.app.state.satchel
    actor = await state.actor(request, key_permission="read")
    await state.limiter.hit("manage", actor)
    token = request.path_params["token"]
    record = await asyncio.to_thread(state.files.get_managed, token, actor)
    if not wants_html(request):
        answer: dict[str, Any] = {
            "name": record.name,
            "confirm": "POST this URL to delete the file",
        }
        return JSONResponse(answer)
    return form_page(request, "delete_confirm.html", {"name": record.name, "token": token})
