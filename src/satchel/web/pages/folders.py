"""``/folder/{code}[/{slug}]`` (a shared folder's page, its password form and its files'
downloads) and ``/folders`` (the site's search of public folders)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.access import FOLDER_ACCESS_LIFETIME
from satchel.core.drive.listing import Cursor, Page, search_text
from satchel.db.models import Folder, FolderVisibility
from satchel.errors import FileNotFound, PasswordRequired, WrongPassword
from satchel.web.account.forms import form_page, secure_cookies, see_other
from satchel.web.csrf import check_csrf
from satchel.web.http import read_small_form, wants_html
from satchel.web.pages.access import ACCESS_COOKIE, cookie_path, folder_path, parse_id
from satchel.web.public.downloads import download_request, respond
from satchel.web.state import AppState
from satchel.web.templates import render

PAGE_SIZE = 100


async def show(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request)
    access = state.access
    folder = await asyncio.to_thread(access.shared_folder, request.path_params["code"], actor)
    if not access.may_open(folder, actor, request.cookies.get(ACCESS_COOKIE)):
        if not wants_html(request):
            raise PasswordRequired("This folder needs its password")
        return _password_form(request, folder, wrong=False)
    cursor = Cursor.decode(request.query_params.get("cursor"))
    page = await asyncio.to_thread(state.sharing.contents, folder, PAGE_SIZE, cursor)
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
    folder = await asyncio.to_thread(state.access.shared_folder, request.path_params["code"], actor)
    try:
        key = await asyncio.to_thread(
            state.access.unlock, folder, fields.get("password", ""), actor
        )
    except (WrongPassword, PasswordRequired):
        if not wants_html(request):
            raise WrongPassword() from None
        return _password_form(request, folder, wrong=True)
    response: Response = (
        see_other(folder_path(folder)) if wants_html(request) else JSONResponse({"success": True})
    )
    if key is not None:
        response.set_cookie(
            ACCESS_COOKIE,
            key,
            max_age=FOLDER_ACCESS_LIFETIME,
            path=cookie_path(folder),
            secure=secure_cookies(state.settings),
            httponly=True,
            samesite="lax",
        )
    return response


async def download(request: Request) -> Response:
    """A file directly in the folder, for whoever may open the folder."""
    state: AppState = request.app.state.satchel
    actor = await state.actor(request)
    await state.limiter.hit("download", actor)
    code = request.path_params["code"]
    file_id = parse_id(request.path_params["file_id"], FileNotFound)
    asked = download_request(request, actor)
    cookie = request.cookies.get(ACCESS_COOKIE)
    try:
        plan = await asyncio.to_thread(state.downloads.plan_shared, code, file_id, asked, cookie)
    except (PasswordRequired, WrongPassword) as exc:
        if not wants_html(request):
            raise
        folder = await asyncio.to_thread(state.access.shared_folder, code, actor)
        if not state.access.may_open(folder, actor, cookie):
            return see_other(folder_path(folder))
        # The file's own password, for a private file that has no share page to post it to.
        wrong = isinstance(exc, WrongPassword)
        return render(request, "password.html", {"wrong": wrong}, 403 if wrong else 401)
    return await respond(request, state, plan)


async def search(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    query = request.query_params.get("q", "")
    search_text(query)  # 400 when too long
    found = await asyncio.to_thread(state.sharing.search_public, query)
    results = [{"name": f.name, "url": state.url(folder_path(f))} for f in found]
    if not wants_html(request):
        return JSONResponse({"query": query, "folders": results})
    await state.actor(request)  # the header shows who is signed in
    return render(request, "folders.html", {"query": query, "folders": results})


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
                # A public one with a password of its own: its share page, which asks for it.
                "url": state.url(f"/d/{record.uuid}")
                if record.password_hash and record.is_public
                else state.url(f"/folder/{folder.share_code}/file/{record.id}"),
            }
            for record in page.files
        ],
        "next_cursor": page.next_cursor,
        "next_url": state.url(f"{base}?cursor={page.next_cursor}") if page.next_cursor else None,
    }


def _subfolder(state: AppState, child: Folder) -> dict[str, Any]:
    shared = child.is_public in (FolderVisibility.UNLISTED, FolderVisibility.PUBLIC)
    return {"name": child.name, "url": state.url(folder_path(child)) if shared else None}
