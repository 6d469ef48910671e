"""``GET|POST /manage/{token}`` and ``POST|DELETE /delete/{token}``."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from satchel.core.actors import Actor, Guest
from satchel.core.options import ManageChanges, parse_flag
from satchel.errors import Forbidden
from satchel.web.account.forms import form_page
from satchel.web.csrf import check_session_csrf
from satchel.web.http import read_small_form, wants_html
from satchel.web.public.views import manage_info
from satchel.web.state import AppState
from satchel.web.templates import render


async def show(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request, key_permission="read")
    await state.limiter.hit("manage", actor)
    token = request.path_params["token"]
    record = await asyncio.to_thread(state.files.get_managed, token, actor)
    info = manage_info(state, record, token)
    if wants_html(request):
        context = {
            "file": info,
            "token": token,
            "max_days": state.settings.max_expiry // 86400,
            "can_claim": actor.user_id is not None and record.is_temp,
        }
        return form_page(request, "manage.html", context)
    return JSONResponse(info)


async def update(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request, key_permission="write")
    await state.limiter.hit("manage", actor)
    token = request.path_params["token"]
    fields = await read_small_form(request)
    check_session_csrf(request, actor, fields)
    if parse_flag(fields.get("claim", "false"), "claim"):
        return await _claim(request, state, token, actor, fields)
    changes = ManageChanges.from_fields(fields, state.settings.max_expiry)
    record = await asyncio.to_thread(state.files.update_managed, token, changes, actor)
    if wants_html(request):
        return RedirectResponse(f"/manage/{token}", status_code=303)
    info = manage_info(state, record, token)
    return JSONResponse({"success": True, **{k: info[k] for k in _ECHOED}})


async def _claim(
    request: Request, state: AppState, token: str, actor: Actor, fields: dict[str, str]
) -> Response:
    """``claim=1``: a logged-in holder of the token takes the upload into their drive."""
    if isinstance(actor, Guest):
        raise Forbidden("Log in to claim an upload into your drive")
    record = await asyncio.to_thread(state.drive_files.claim, token, actor)
    if wants_html(request):
        return RedirectResponse(f"/manage/{token}", status_code=303)
    info = manage_info(state, record, token)
    return JSONResponse(
        {"success": True, "claimed": True, "file_id": record.id, "expires_at": info["expires_at"]}
    )


_ECHOED = ("has_password", "public", "expires_at", "max_downloads", "downloads")


async def remove(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request, key_permission="delete")
    await state.limiter.hit("delete", actor)
    check_session_csrf(request, actor, await read_small_form(request))
    await asyncio.to_thread(state.files.delete_managed, request.path_params["token"], actor)
    if wants_html(request):
        return render(request, "deleted.html", {})
    return JSONResponse({"success": True})
