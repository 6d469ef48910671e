"""``/drive/file/{id}``: the owner's page of a drive file, and moving it to the trash."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.actors import Member
from satchel.db.models import StoredFile
from satchel.errors import FileNotFound, Unauthorized
from satchel.web.account.forms import form_page, login_redirect, see_other
from satchel.web.csrf import check_csrf
from satchel.web.http import read_small_form, wants_html
from satchel.web.pages.access import parse_id
from satchel.web.public.views import download_url, iso, short_url
from satchel.web.state import AppState


async def show(request: Request) -> Response:
    state, actor = await _owner(request)
    if actor is None:
        return _login_required(request)
    record = await asyncio.to_thread(_own_file, state, actor, request)
    details = _details(state, record)
    if not wants_html(request):
        return JSONResponse(details)
    return form_page(request, "drive_file.html", {"file": details, "signed_in": True})


async def confirm_trash(request: Request) -> Response:
    state, actor = await _owner(request)
    if actor is None:
        return _login_required(request)
    record = await asyncio.to_thread(_own_file, state, actor, request)
    if not wants_html(request):
        return JSONResponse({"name": record.name, "confirm": "POST this URL to trash the file"})
    context = {"file": _details(state, record), "signed_in": True}
    return form_page(request, "drive_delete.html", context)


async def trash(request: Request) -> Response:
    state, actor = await _owner(request)
    if actor is None:
        return _login_required(request)
    check_csrf(request, await read_small_form(request))
    file_id = parse_id(request.path_params["file_id"], FileNotFound)
    await asyncio.to_thread(state.trash.trash_file, actor.user_id, file_id)
    if wants_html(request):
        return see_other("/account")
    return JSONResponse({"success": True})


async def _owner(request: Request) -> tuple[AppState, Member | None]:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request)
    return state, actor if isinstance(actor, Member) else None


def _login_required(request: Request) -> Response:
    if wants_html(request):
        return login_redirect(request.url.path)
    raise Unauthorized("Login required")


def _own_file(state: AppState, actor: Member, request: Request) -> StoredFile:
    file_id = parse_id(request.path_params["file_id"], FileNotFound)
    return state.drive_files.get(actor.user_id, file_id)


def _details(state: AppState, record: StoredFile) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "size": record.size,
        "content_type": record.content_type,
        "public": record.is_public,
        "has_password": record.password_hash is not None,
        "downloads": state.files.downloads_of(record),
        "created_at": iso(record.created_at),
        "last_download_at": iso(record.last_download_at),
        "download_url": download_url(state, record),
        "short_url": short_url(state, record),
        "stats_url": state.url(f"/stats/{record.uuid}"),
        "delete_url": state.url(f"/drive/file/{record.id}/delete"),
    }
