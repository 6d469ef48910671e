"""``/folder/{code}[/{slug}]`` (a shared folder's page, its password form and its files'
downloads) and ``/folders`` (the site's search of public folders)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.drive import FILE_NOT_FOUND, MAX_QUERY, Cursor, Page
from satchel.core.files import Actor, DownloadPlan
from satchel.db.models import Folder, StoredFile
from satchel.errors import BadRequest, NotFound, PasswordRequired, WrongPassword
from satchel.web.account.forms import form_page, secure_cookies, see_other
from satchel.web.csrf import check_csrf
from satchel.web.http import parse_range, read_small_form, wants_html
from satchel.web.pages.access import (
    ACCESS_COOKIE,
    access_key,
    cookie_path,
    folder_path,
    may_open,
    open_folder,
    parse_id,
)
from satchel.web.public.downloads import respond
from satchel.web.state import AppState
from satchel.web.templates import render

PAGE_SIZE = 100
SEARCH_LIMIT = 50


async def show(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request)
    folder = await asyncio.to_thread(open_folder, state, request.path_params["code"], actor)
    if not may_open(state.files.keys, folder, actor, request.cookies.get(ACCESS_COOKIE)):
        if not wants_html(request):
            raise PasswordRequired("This folder needs its password")
        return _password_form(request, folder, wrong=False)
    cursor = Cursor.decode(request.query_params.get("cursor"))
    page = await asyncio.to_thread(state.drive.public_files, folder, PAGE_SIZE, cursor)
    listing = _listing(state, folder, page)
    if not wants_html(request):
        return JSONResponse(listing)
    return render(request, "folder.html", {**listing, "owner": actor.user_id == folder.owner_id})


async def unlock(request: Request) -> Response:
    """The password form: a right password sets the folder's access cookie."""
    state: AppState = request.app.state.satchel
    actor = await state.actor(request)
    await state.limiter.hit("login", actor)  # as many guesses as at the login form
    fields = await read_small_form(request)
    check_csrf(request, fields)
    folder = await asyncio.to_thread(open_folder, state, request.path_params["code"], actor)
    try:
        await asyncio.to_thread(
            state.files.check_folder_password, folder, fields.get("password", ""), actor
        )
    except (WrongPassword, PasswordRequired):
        if not wants_html(request):
            raise WrongPassword() from None
        return _password_form(request, folder, wrong=True)
    response: Response = (
        see_other(folder_path(folder)) if wants_html(request) else JSONResponse({"success": True})
    )
    if folder.access_password_hash is not None:
        response.set_cookie(
            ACCESS_COOKIE,
            access_key(state.files.keys, folder),
            max_age=state.settings.session_lifetime,
            path=cookie_path(folder),
            secure=secure_cookies(state.settings),
            httponly=True,
            samesite="lax",
        )
    return response


async def download(request: Request) -> Response:
    """A file directly in the folder, for whoever may open the folder: the folder's sharing
    is what the owner chose for it, so the file's own visibility is not asked again."""
    state: AppState = request.app.state.satchel
    actor = await state.actor(request)
    await state.limiter.hit("download", actor)
    folder = await asyncio.to_thread(open_folder, state, request.path_params["code"], actor)
    if not may_open(state.files.keys, folder, actor, request.cookies.get(ACCESS_COOKIE)):
        if wants_html(request):
            return see_other(folder_path(folder))
        raise PasswordRequired("This folder needs its password")
    file_id = parse_id(request.path_params["file_id"], FILE_NOT_FOUND)
    byte_range = parse_range(request.headers.get("range"))
    as_owner = Actor(ip=actor.ip, user_id=folder.owner_id)
    counts = request.method == "GET"

    def plan() -> DownloadPlan:
        record = _file_in(state, folder, file_id)
        return state.files.plan_download(record, as_owner, None, byte_range, counts)

    return await respond(request, state, await asyncio.to_thread(plan))


async def search(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    query = request.query_params.get("q", "")
    if len(query) > MAX_QUERY:
        raise BadRequest(f"Search query too long (at most {MAX_QUERY} characters)")
    found = await asyncio.to_thread(state.drive.search_public_folders, query, SEARCH_LIMIT)
    results = [{"name": f.name, "url": state.url(folder_path(f))} for f in found]
    if not wants_html(request):
        return JSONResponse({"query": query, "folders": results})
    return render(request, "folders.html", {"query": query, "folders": results})


def _file_in(state: AppState, folder: Folder, file_id: int) -> StoredFile:
    record = state.drive.file(folder.owner_id, file_id)
    if record.folder_id != folder.id:
        raise NotFound(FILE_NOT_FOUND)
    return record


def _password_form(request: Request, folder: Folder, wrong: bool) -> Response:
    context = {"name": folder.name, "action": folder_path(folder), "wrong": wrong}
    return form_page(request, "folder_password.html", context, 403 if wrong else 401)


def _listing(state: AppState, folder: Folder, page: Page) -> dict[str, Any]:
    base = folder_path(folder)
    return {
        "name": folder.name,
        "url": state.url(base),
        "folders": [_subfolder(state, child) for child in page.folders],
        "files": [
            {
                "id": record.id,
                "name": record.name,
                "size": record.size,
                "downloads": state.files.downloads_of(record),
                "url": state.url(f"/folder/{folder.share_code}/file/{record.id}"),
            }
            for record in page.files
        ],
        "next_cursor": page.next_cursor,
        "next_url": state.url(f"{base}?cursor={page.next_cursor}") if page.next_cursor else None,
    }


def _subfolder(state: AppState, child: Folder) -> dict[str, Any]:
    shared = child.is_public in (1, 2)
    return {"name": child.name, "url": state.url(folder_path(child)) if shared else None}
