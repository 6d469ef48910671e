"""The drive's folder tree, and the owner's pages of one drive file (``/drive/file/{id}``)
and one folder (``/drive/folder/{id}/properties``): their facts, links and sharing."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.actors import Member
from satchel.core.drive.folders import FolderChanges, FolderSharing
from satchel.core.options import ManageChanges, parse_password
from satchel.db.models import Folder, FolderVisibility, StoredFile
from satchel.errors import BadRequest, FileNotFound, FolderNotFound, SatchelError, Unauthorized
from satchel.web.account.forms import form_page, login_redirect, see_other
from satchel.web.csrf import check_csrf
from satchel.web.errors import Handler, status_of
from satchel.web.http import read_small_form, wants_html
from satchel.web.pages.access import folder_path, parse_id
from satchel.web.public.views import download_url, iso, short_url
from satchel.web.state import AppState


class Tree:
    """A drive's live folders as a tree: children by parent, the path to a folder."""

    def __init__(self, folders: list[Folder]) -> None:
        self.by_id = {folder.id: folder for folder in folders}
        self.children: dict[int | None, list[Folder]] = {}
        for folder in folders:
            parent = folder.parent_id if folder.parent_id in self.by_id else None
            self.children.setdefault(parent, []).append(folder)

    def path(self, folder_id: int | None) -> list[Folder]:
        """From the top of the drive down to the folder, itself included."""
        found: list[Folder] = []
        while folder_id is not None and folder_id in self.by_id and len(found) <= 64:
            folder = self.by_id[folder_id]
            found.insert(0, folder)
            folder_id = folder.parent_id
        return found

    def flat(self, parent: int | None = None, depth: int = 0) -> Iterator[tuple[Folder, int]]:
        """Every folder with its depth, each under its parent: the choices of a Move."""
        for folder in self.children.get(parent, []):
            yield folder, depth
            if depth < 64:
                yield from self.flat(folder.id, depth + 1)


def drive_context(tree: Tree, folder_id: int | None) -> dict[str, Any]:
    """What every drive page shows around its content: the tree, where one is, where to go."""
    return {
        "tree": tree,
        "folder": tree.by_id.get(folder_id) if folder_id is not None else None,
        "folder_id": folder_id,
        "crumbs": tree.path(folder_id),
        "open_ids": {f.id for f in tree.path(folder_id)},
        "targets": list(tree.flat()),
    }


async def _owner(request: Request) -> tuple[AppState, Member | None]:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request)
    return state, actor if isinstance(actor, Member) else None


def _login_required(request: Request) -> Response:
    if wants_html(request):
        return login_redirect(request.url.path)
    raise Unauthorized("Login required")


# -- a file -------------------------------------------------------------------------------


async def show(request: Request, error: SatchelError | None = None) -> Response:
    return await file_page(request, request.path_params["file_id"], error)


async def file_page(request: Request, file_text: str, error: SatchelError | None) -> Response:
    """A file's page (``file_text``: its id from the path), with an error to show or none."""
    state, actor = await _owner(request)
    if actor is None:
        return _login_required(request)
    file_id = parse_id(file_text, FileNotFound)

    def work() -> tuple[StoredFile, Tree]:
        record = state.drive_files.get(actor.user_id, file_id)
        return record, Tree(state.listings.tree(actor.user_id))

    record, tree = await asyncio.to_thread(work)
    details = _details(state, record)
    if not wants_html(request) and error is None:
        return JSONResponse(details)
    context = {
        **drive_context(tree, record.folder_id),
        "file": details,
        "max_days": state.settings.max_expiry // 86400,
    }
    return page_response(request, "drive_file.html", context, error)


async def share_file(request: Request) -> Response:
    """The sharing form: what /manage changes, and the short link on or off."""
    state, actor = await _owner(request)
    if actor is None:
        return _login_required(request)
    file_id = parse_id(request.path_params["file_id"], FileNotFound)
    fields = await read_small_form(request)

    def work() -> None:
        changes = ManageChanges.from_fields({**fields, "_form": "1"}, state.settings.max_expiry)
        short_link = fields.get("short_link") == "on"
        state.drive_files.share(actor, file_id, changes, short_link)

    return await _change(request, fields, work, f"/drive/file/{file_id}", show)


async def confirm_trash(request: Request) -> Response:
    state, actor = await _owner(request)
    if actor is None:
        return _login_required(request)
    file_id = parse_id(request.path_params["file_id"], FileNotFound)
    record = await asyncio.to_thread(state.drive_files.get, actor.user_id, file_id)
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


def _details(state: AppState, record: StoredFile) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "size": record.size,
        "content_type": record.content_type,
        "folder_id": record.folder_id,
        "public": record.is_public,
        "has_password": record.password_hash is not None,
        "e2e": record.is_e2e,
        "downloads": state.files.downloads_of(record),
        "max_downloads": record.max_downloads,
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at),
        "last_download_at": iso(record.last_download_at),
        "download_url": download_url(state, record),
        "share_url": state.url(f"/d/{record.uuid}"),
        "short_url": short_url(state, record),
        "stats_url": state.url(f"/stats/{record.uuid}"),
        "delete_url": state.url(f"/drive/file/{record.id}/delete"),
    }


# -- a folder -----------------------------------------------------------------------------


async def folder_properties(request: Request, error: SatchelError | None = None) -> Response:
    return await folder_page(request, request.path_params["folder_id"], error)


async def folder_page(request: Request, folder_text: str, error: SatchelError | None) -> Response:
    state, actor = await _owner(request)
    if actor is None:
        return _login_required(request)
    folder_id = parse_id(folder_text, FolderNotFound)

    def work() -> tuple[Folder, Any, Tree]:
        folder = state.folders.live(actor.user_id, folder_id)
        assert folder is not None
        return folder, state.folders.stats(folder), Tree(state.listings.tree(actor.user_id))

    folder, stats, tree = await asyncio.to_thread(work)
    details = _folder_details(state, folder, stats)
    if not wants_html(request) and error is None:
        return JSONResponse(details)
    context = {**drive_context(tree, folder.id), "props": details}
    return page_response(request, "drive_folder.html", context, error)


def _folder_details(state: AppState, folder: Folder, stats: Any) -> dict[str, Any]:
    visibility = FolderVisibility(folder.is_public)
    return {
        "id": folder.id,
        "name": folder.name,
        "parent_id": folder.parent_id,
        "visibility": visibility.name.lower(),
        "has_password": folder.access_password_hash is not None,
        "created_at": iso(folder.created_at),
        "share_url": state.url(folder_path(folder)),
        "total_size": stats.total_size,
        "file_count": stats.file_count,
        "child_folder_count": stats.child_folder_count,
    }


VISIBILITIES = {v.name.lower(): v for v in FolderVisibility}


async def share_folder(request: Request) -> Response:
    """Private, unlisted or public, and the password (set, kept or removed)."""
    state, actor = await _owner(request)
    if actor is None:
        return _login_required(request)
    folder_id = parse_id(request.path_params["folder_id"], FolderNotFound)
    fields = await read_small_form(request)

    def work() -> None:
        state.folders.edit(actor.user_id, folder_id, folder_sharing(fields))

    back = f"/drive/folder/{folder_id}/properties"
    return await _change(request, fields, work, back, folder_properties)


def folder_sharing(fields: dict[str, str]) -> FolderChanges:
    visibility = VISIBILITIES.get(fields.get("visibility", ""))
    if visibility is None:
        raise BadRequest("Invalid visibility: private, unlisted or public")
    password = parse_password(fields.get("password", ""))
    if password:
        md5 = hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()
        return FolderChanges(sharing=FolderSharing(visibility, md5))
    if fields.get("remove_password") == "on":
        return FolderChanges(sharing=FolderSharing(visibility, None))
    return FolderChanges(visibility=visibility)


# -- shared -------------------------------------------------------------------------------


async def _change(
    request: Request,
    fields: dict[str, str],
    work: Callable[[], None],
    back: str,
    again: Callable[[Request, SatchelError], Any],
) -> Response:
    try:
        check_csrf(request, fields)
        await asyncio.to_thread(work)
    except SatchelError as error:
        if not wants_html(request):
            raise
        response: Response = await again(request, error)
        return response
    if wants_html(request):
        return see_other(back)
    return JSONResponse({"success": True})


def page_response(
    request: Request, template: str, context: dict[str, Any], error: SatchelError | None
) -> Response:
    status = 200 if error is None else status_of(error)
    shown = {**context, "signed_in": True, "error": error.detail if error else None}
    return form_page(request, template, shown, status)


PAGES: list[tuple[str, Handler, list[str]]] = [
    ("/drive/file/{file_id}", share_file, ["POST"]),
    ("/drive/folder/{folder_id}/properties", folder_properties, ["GET"]),
    ("/drive/folder/{folder_id}/properties", share_folder, ["POST"]),
]
