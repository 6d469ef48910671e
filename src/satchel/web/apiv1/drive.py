"""``/apiv1`` drive endpoints: upload, download, listing, properties, folders, search, trash."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.actors import Member
from satchel.core.drive.listing import Cursor, parse_limit
from satchel.core.files import CreatedUpload
from satchel.core.ids import is_id, parse_number
from satchel.core.options import UploadOptions
from satchel.db.models import StoredFile
from satchel.errors import BadRequest, FileNotFound, FolderNotFound, NotFound, NotInTrash
from satchel.web.apiv1.auth import authenticate, json_body
from satchel.web.apiv1.views import file_json, folder_json, page_json
from satchel.web.http import parse_range
from satchel.web.multipart import UploadIngest
from satchel.web.public.downloads import respond
from satchel.web.public.uploads import ingest_body, start_ingest
from satchel.web.state import AppState


async def upload(request: Request) -> Response:
    """Each file of the body becomes a drive file of its own: private, no expiry."""
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "write")
    ingest = await start_ingest(request, state, actor, separate=True)

    def check_early(fields: dict[str, str]) -> None:
        state.folders.live(actor.user_id, _folder_field(fields))

    ingest.before_first_file = check_early
    with state.uploads.slot(actor):
        created = await ingest_body(
            request, ingest, lambda last_batch: _complete(state, ingest, last_batch, actor)
        )
    files = [
        {**file_json(state, c.file), "manage_url": state.url(f"/manage/{c.manage_token}")}
        for c in created
    ]
    return JSONResponse({"files": files}, status_code=201)


def _complete(
    state: AppState, ingest: UploadIngest, last_batch: list[bytes], actor: Member
) -> list[CreatedUpload]:
    ingest.feed_many(last_batch)
    blobs = ingest.finish_separate()
    folder_id = _folder_field(ingest.fields)
    options = UploadOptions(is_temp=False, folder_id=folder_id, public=False)
    return state.uploads.register(actor, blobs, options)


def _folder_field(fields: dict[str, str]) -> int | None:
    text = fields.get("folder_id", "").strip()
    if text in ("", "0", "null"):
        return None
    number = parse_number(text)
    if number is None:
        raise BadRequest("Invalid folder_id: must be a number")
    return number


async def download(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "download")
    byte_range = parse_range(request.headers.get("range"))

    def plan() -> Any:
        record = state.drive_files.get(actor.user_id, _id(request, "file_id"))
        return state.downloads.plan_own(record, byte_range)

    return await respond(request, state, await asyncio.to_thread(plan))


async def list_folder(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "read")
    folder_id = _id(request, "folder_id") if "folder_id" in request.path_params else None
    limit = parse_limit(request.query_params.get("limit"))
    cursor = Cursor.decode(request.query_params.get("cursor"))

    def work() -> dict[str, Any]:
        folder = state.folders.live(actor.user_id, folder_id)
        page = state.listings.folder(actor.user_id, folder_id, limit, cursor)
        return {
            "folder": folder_json(state, folder) if folder else None,
            **page_json(state, page),
        }

    return JSONResponse(await asyncio.to_thread(work))


async def properties(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "read")
    record = await asyncio.to_thread(state.drive_files.get, actor.user_id, _id(request, "file_id"))
    return JSONResponse(file_json(state, record))


async def trash_file(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "delete")
    file_id = _id(request, "file_id")
    await asyncio.to_thread(state.trash.trash_file, actor.user_id, file_id)
    return JSONResponse({"success": True, "trashed": {"type": "file", "id": file_id}})


async def create_folder(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "write")
    body = await json_body(request)
    name = body.get("name")
    if not isinstance(name, str):
        raise BadRequest("name is required: the folder's name")
    parent = body.get("parent_id")
    if parent is not None and not is_id(parent):
        raise BadRequest("parent_id must be a folder id (a number) or null")
    folder = await asyncio.to_thread(state.folders.create, actor.user_id, name, parent or None)
    return JSONResponse(folder_json(state, folder), status_code=201)


async def trash_folder(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "delete")
    folder_id = _id(request, "folder_id")
    await asyncio.to_thread(state.trash.trash_folder, actor.user_id, folder_id)
    return JSONResponse({"success": True, "trashed": {"type": "folder", "id": folder_id}})


async def search(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "read")
    query = request.query_params.get("q", "")
    limit = parse_limit(request.query_params.get("limit"))
    cursor = Cursor.decode(request.query_params.get("cursor"))
    page = await asyncio.to_thread(state.listings.search, actor.user_id, query, limit, cursor)
    return JSONResponse({"query": query.strip(), **page_json(state, page)})


async def list_trash(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "read")
    limit = parse_limit(request.query_params.get("limit"))
    cursor = Cursor.decode(request.query_params.get("cursor"))
    page = await asyncio.to_thread(state.listings.trash, actor.user_id, limit, cursor)
    return JSONResponse(page_json(state, page))


async def restore(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "restore")
    item = await asyncio.to_thread(
        state.trash.restore, actor.user_id, _id(request, "item_id"), _kind(request)
    )
    shown = file_json(state, item) if isinstance(item, StoredFile) else folder_json(state, item)
    return JSONResponse({"success": True, "restored": shown})


async def delete_from_trash(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "delete")
    deleted = await asyncio.to_thread(
        state.trash.delete_forever, actor.user_id, _id(request, "item_id"), _kind(request)
    )
    return JSONResponse({"success": True, "deleted_files": deleted})


async def empty_trash(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "delete")
    deleted = await asyncio.to_thread(state.trash.empty, actor.user_id)
    return JSONResponse({"success": True, "deleted_files": deleted})


_NOT_FOUND: dict[str, type[NotFound]] = {
    "file_id": FileNotFound,
    "folder_id": FolderNotFound,
    "item_id": NotInTrash,
}


def _id(request: Request, name: str) -> int:
    number = parse_number(str(request.path_params[name]))
    if number is None:
        raise _NOT_FOUND[name]()
    return number


def _kind(request: Request) -> str | None:
    return request.query_params.get("type") or None
