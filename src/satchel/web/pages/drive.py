"""``/drive``: the cloud drive in the browser. Every change is a plain form POST answered with
a 303 back to the page it came from (scripts only add select-all and dialogs); a change that
fails shows that page again with the error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.actors import Member
from satchel.core.drive.files import FileChanges
from satchel.core.drive.folders import FolderChanges
from satchel.core.drive.listing import Cursor, Page, parse_order
from satchel.core.ids import parse_number
from satchel.db.repositories.drive import Order
from satchel.errors import BadRequest, FolderNotFound, SatchelError, Unauthorized
from satchel.web.account.forms import login_redirect, see_other
from satchel.web.csrf import check_csrf
from satchel.web.errors import Handler
from satchel.web.http import MAX_FORM_BYTES, read_body, wants_html
from satchel.web.pages import drive_files
from satchel.web.pages.access import parse_id
from satchel.web.pages.drive_files import Tree, drive_context, page_response
from satchel.web.state import AppState

PAGE_SIZE = 50
Fields = list[tuple[str, str]]
Work = Callable[[AppState, Member, Fields], str]
"""A change, run in a worker thread: returns the path to go back to."""


# -- pages --------------------------------------------------------------------------------


async def folder_page(request: Request) -> Response:
    state, actor = await member(request)
    if actor is None:
        return login_redirect(_here(request))
    folder_id = None
    if "folder_id" in request.path_params:
        folder_id = parse_id(request.path_params["folder_id"], FolderNotFound)
    return await _folder_response(request, state, actor, folder_id)


async def _folder_response(
    request: Request,
    state: AppState,
    actor: Member,
    folder_id: int | None,
    error: SatchelError | None = None,
) -> Response:
    query = request.query_params
    order = parse_order(query.get("sort"), query.get("order"))
    cursor = Cursor.decode(query.get("cursor"), order)

    def work() -> tuple[Tree, Page]:
        tree = Tree(state.listings.tree(actor.user_id))
        state.folders.live(actor.user_id, folder_id)
        return tree, state.listings.folder(actor.user_id, folder_id, PAGE_SIZE, cursor, order)

    tree, page = await asyncio.to_thread(work)
    context = {
        **drive_context(tree, folder_id),
        "page": page,
        "order": order,
        "paged": cursor is not None,
        "first_url": _order_url(folder_path(folder_id), order),
        "next_url": _next_url(request, folder_path(folder_id), page),
        "sort_url": lambda key: _sort_url(folder_path(folder_id), order, key),
        "max_size": state.uploads.max_bytes(actor),
        "max_days": state.settings.max_expiry // 86400,
    }
    return page_response(request, "drive.html", context, error)


async def search_page(request: Request) -> Response:
    state, actor = await member(request)
    if actor is None:
        return login_redirect(_here(request))
    query = request.query_params.get("q", "")
    cursor = Cursor.decode(request.query_params.get("cursor"))

    def work() -> tuple[Tree, Page | None]:
        tree = Tree(state.listings.tree(actor.user_id))
        if not query.strip():
            return tree, None
        return tree, state.listings.search(actor.user_id, query, PAGE_SIZE, cursor)

    tree, page = await asyncio.to_thread(work)
    context = {
        **drive_context(tree, None),
        "query": query.strip(),
        "page": page,
        "next_url": _next_url(request, "/drive/search", page) if page else None,
    }
    return page_response(request, "drive_search.html", context, None)


async def trash_page(request: Request, error: SatchelError | None = None) -> Response:
    state, actor = await member(request)
    if actor is None:
        return login_redirect(_here(request))
    cursor = Cursor.decode(request.query_params.get("cursor"))

    def work() -> tuple[Tree, Page]:
        tree = Tree(state.listings.tree(actor.user_id))
        return tree, state.listings.trash(actor.user_id, PAGE_SIZE, cursor)

    tree, page = await asyncio.to_thread(work)
    context = {
        **drive_context(tree, None),
        "page": page,
        "retention_hours": state.settings.trash_retention // 3600,
        "next_url": _next_url(request, "/drive/trash", page),
    }
    return page_response(request, "drive_trash.html", context, error)


def _next_url(request: Request, path: str, page: Page) -> str | None:
    if page.next_cursor is None:
        return None
    query = {**request.query_params, "cursor": page.next_cursor}
    return f"{path}?{urlencode(query)}"


def _sort_url(path: str, order: Order, key: str) -> str:
    """Sorted by ``key``: ascending, or the other way when it is sorted by it already."""
    return _order_url(path, Order(key, order.key == key and not order.descending))


def _order_url(path: str, order: Order) -> str:
    query = urlencode({"sort": order.key, "order": "desc" if order.descending else "asc"})
    return f"{path}?{query}"


def _here(request: Request) -> str:
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


async def member(request: Request) -> tuple[AppState, Member | None]:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request)
    return state, actor if isinstance(actor, Member) else None


# -- changes ------------------------------------------------------------------------------


async def act(
    request: Request,
    work: Work,
    on_error: Callable[[Request, AppState, Member, Fields, SatchelError], Awaitable[Response]],
) -> Response:
    """A form's change: logged in, its CSRF token, ``work`` in a thread; then a 303 to where
    ``work`` says (JSON for scripts), or the page again with the error for a browser."""
    state, actor = await member(request)
    if actor is None:
        if wants_html(request):
            return login_redirect("/drive")
        raise Unauthorized("Login required")
    fields = await form_fields(request)
    try:
        check_csrf(request, dict(fields))
        back = await asyncio.to_thread(work, state, actor, fields)
    except SatchelError as error:
        if not wants_html(request):
            raise
        return await on_error(request, state, actor, fields, error)
    if wants_html(request):
        return see_other(back)
    return JSONResponse({"success": True, "redirect": back})


async def form_fields(request: Request) -> Fields:
    """Every field of an urlencoded form, repeated ones (the ticked items) included."""
    body = await read_body(request, MAX_FORM_BYTES, "Form too large")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and kind != "application/x-www-form-urlencoded":
        raise BadRequest("Send the form as application/x-www-form-urlencoded")
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("Invalid form body") from None


async def _listing_again(
    request: Request, state: AppState, actor: Member, fields: Fields, error: SatchelError
) -> Response:
    """The page the form was on (a file's or folder's page, else the folder it names in
    ``here``), with the error."""
    form = dict(fields)
    back = _local(form.get("back", "")).split("?")[0].rstrip("/").split("/")
    if len(back) == 4 and back[2] == "file":
        return await drive_files.file_page(request, back[3], error)
    if len(back) == 5 and back[2] == "folder" and back[4] == "properties":
        return await drive_files.folder_page(request, back[3], error)
    try:
        here = folder_field(form, "here")
        return await _folder_response(request, state, actor, here, error)
    except SatchelError:
        return await _folder_response(request, state, actor, None, error)


async def _trash_again(
    request: Request, state: AppState, actor: Member, fields: Fields, error: SatchelError
) -> Response:
    return await trash_page(request, error)


def folder_field(fields: Mapping[str, str], name: str) -> int | None:
    """A folder id field: empty (or 0) is the top of the drive."""
    text = fields.get(name, "").strip()
    if text in ("", "0"):
        return None
    number = parse_number(text)
    if number is None:
        raise FolderNotFound()
    return number


def folder_path(folder_id: int | None) -> str:
    return "/drive" if folder_id is None else f"/drive/folder/{folder_id}"


def selected(fields: Fields) -> tuple[list[int], list[int]]:
    """The ticked items (``item=file-12``, ``item=folder-3``): file ids and folder ids."""
    files: list[int] = []
    folders: list[int] = []
    for name, value in fields:
        if name != "item":
            continue
        kind, _, number = value.partition("-")
        item_id = parse_number(number)
        if kind not in ("file", "folder") or item_id is None:
            raise BadRequest(f"Invalid item: {value}")
        (files if kind == "file" else folders).append(item_id)
    if not files and not folders:
        raise BadRequest("Select at least one file or folder first")
    return files, folders


def _new_folder(state: AppState, actor: Member, fields: Fields) -> str:
    form = dict(fields)
    parent = folder_field(form, "here")
    state.folders.create(actor.user_id, form.get("name", ""), parent)
    return folder_path(parent)


def _rename(state: AppState, actor: Member, fields: Fields) -> str:
    form = dict(fields)
    files, folders = selected(fields)
    if len(files) + len(folders) != 1:
        raise BadRequest("Rename one item at a time: select exactly one")
    name = form.get("name", "").strip()
    if not name:
        raise BadRequest("Type the new name first")
    if files:
        state.drive_files.edit(actor.user_id, files[0], FileChanges(name=name))
    else:
        state.folders.edit(actor.user_id, folders[0], FolderChanges(name=name))
    return back_to(form)


def _move(state: AppState, actor: Member, fields: Fields) -> str:
    form = dict(fields)
    files, folders = selected(fields)
    target = folder_field(form, "target")
    state.folders.live(actor.user_id, target)
    for folder_id in folders:
        changes = FolderChanges(parent_id=target, parent_given=True)
        state.folders.edit(actor.user_id, folder_id, changes)
    for file_id in files:
        state.drive_files.edit(
            actor.user_id, file_id, FileChanges(folder_id=target, folder_given=True)
        )
    return back_to(form)


def _copy(state: AppState, actor: Member, fields: Fields) -> str:
    form = dict(fields)
    files, folders = selected(fields)
    if folders:
        raise BadRequest("Only files can be copied: select files, not folders")
    target = folder_field(form, "target")
    for file_id in files:
        state.drive_files.copy(actor, file_id, target)
    return back_to(form)


def _delete(state: AppState, actor: Member, fields: Fields) -> str:
    form = dict(fields)
    files, folders = selected(fields)
    for file_id in files:
        state.trash.trash_file(actor.user_id, file_id)
    for folder_id in folders:
        state.trash.trash_folder(actor.user_id, folder_id)
    return back_to(form)


def _restore(state: AppState, actor: Member, fields: Fields) -> str:
    files, folders = selected(fields)
    for file_id in files:
        state.trash.restore(actor.user_id, file_id, "file")
    for folder_id in folders:
        state.trash.restore(actor.user_id, folder_id, "folder")
    return "/drive/trash"


def _empty(state: AppState, actor: Member, fields: Fields) -> str:
    state.trash.empty(actor.user_id)
    return "/drive/trash"


def back_to(form: Mapping[str, str]) -> str:
    """The page the form was on: its ``back`` field, else the folder it names in ``here``."""
    return _local(form.get("back", "")) or folder_path(folder_field(form, "here"))


def _local(path: str) -> str:
    """A drive page to go back to; anything else is ignored (never a redirect elsewhere)."""
    plain = "//" not in path and "\\" not in path
    if path.startswith("/drive") and plain and not any(ord(c) < 32 or ord(c) == 127 for c in path):
        return path
    return ""


def _action(work: Work, on_error: Any = _listing_again) -> Handler:
    async def handler(request: Request) -> Response:
        return await act(request, work, on_error)

    handler.__name__ = work.__name__.lstrip("_")
    return handler


PAGES: list[tuple[str, Handler, list[str]]] = [
    ("/drive", folder_page, ["GET"]),
    ("/drive/folder/{folder_id}", folder_page, ["GET"]),
    ("/drive/search", search_page, ["GET"]),
    ("/drive/trash", trash_page, ["GET"]),
    ("/drive/folders", _action(_new_folder), ["POST"]),
    ("/drive/rename", _action(_rename), ["POST"]),
    ("/drive/move", _action(_move), ["POST"]),
    ("/drive/copy", _action(_copy), ["POST"]),
    ("/drive/delete", _action(_delete), ["POST"]),
    ("/drive/trash/restore", _action(_restore, _trash_again), ["POST"]),
    ("/drive/trash/empty", _action(_empty, _trash_again), ["POST"]),
    *drive_files.PAGES,
]
