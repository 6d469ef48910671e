"""``/apiv1`` drive endpoints: upload, download, listing, properties, folders, search, trash."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.drive import (
    FILE_NOT_FOUND,
    FOLDER_NOT_FOUND,
    NOT_IN_TRASH,
    Cursor,
    parse_limit,
)
from satchel.core.files import Actor, DownloadPlan
from satchel.core.ids import is_id, parse_number
from satchel.core.ingest import UploadIngest
from satchel.core.options import UploadOptions
from satchel.db.models import StoredFile
from satchel.errors import BadRequest, NotFound
from satchel.web.apiv1.auth import authenticate, json_body
from satchel.web.apiv1.views import file_json, folder_json, page_json
from satchel.web.http import parse_range
from satchel.web.public.downloads import respond
from satchel.web.public.uploads import (
    boundary_of,
    check_quota,
    check_space,
    checked_length,
    ingest_body,
    max_upload,
    upload_slot,
)
from satchel.web.state import AppState


async def upload(request: Request) -> Response:
    """Each file of the body becomes a drive file of its own: private, no expiry."""
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "write")
    boundary = boundary_of(request)
    max_bytes = max_upload(state, actor)
    content_length = checked_length(request, max_bytes)
    await check_space(state, actor, content_length)
    assert actor.user_id is not None
    owner = actor.user_id

    def check_early(fields: dict[str, str]) -> None:
        state.drive.folder(owner, _folder_field(fields))

    ingest = UploadIngest(
        state.files.store, boundary, content_length or -1, max_bytes, check_early, separate=True
    )
    with upload_slot(state, actor):
        created = await ingest_body(
            request, ingest, lambda last_batch: _complete(state, ingest, last_batch, actor)
        )
    files = [
        {**file_json(state, c.file), "manage_url": state.url(f"/manage/{c.manage_token}")}
        for c in created
    ]
    return JSONResponse({"files": files}, status_code=201)


def _complete(
    state: AppState, ingest: UploadIngest, last_batch: list[bytes], actor: Actor
) -> list[Any]:
    ingest.feed_many(last_batch)
    blobs = ingest.finish_separate()
    assert actor.user_id is not None
    folder_id = _folder_field(ingest.fields)
    state.drive.folder(actor.user_id, folder_id)
    check_quota(state, actor, sum(blob.size for blob in blobs))
    options = UploadOptions(is_temp=False, folder_id=folder_id, public=False)
    created = []
    try:
        for blob in blobs:
            created.append(state.files.register_upload(blob, options, actor))
    except BaseException:
        # All or nothing: the files registered so far go, the rest are aborted by the caller.
        state.files.delete_files([c.file.id for c in created])
        raise
    return created


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
    assert actor.user_id is not None
    record = await asyncio.to_thread(state.drive.file, actor.user_id, _id(request, "file_id"))
    if record.is_e2e:
        raise BadRequest("End-to-end encrypted files cannot be downloaded through the API")
    byte_range = parse_range(request.headers.get("range"))
    start, end = byte_range.resolve(record.size) if byte_range else (0, record.size)
    plan = DownloadPlan(
        record, start, end, partial=byte_range is not None, counted=False, final=False
    )
    return await respond(request, state, plan)


async def list_folder(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "read")
    assert actor.user_id is not None
    folder_id = _id(request, "folder_id") if "folder_id" in request.path_params else None
    limit = parse_limit(request.query_params.get("limit"))
    cursor = Cursor.decode(request.query_params.get("cursor"))

    def work() -> dict[str, Any]:
        assert actor.user_id is not None
        folder = state.drive.folder(actor.user_id, folder_id)
        page = state.drive.listing(actor.user_id, folder_id, limit, cursor)
        return {
            "folder": folder_json(state, folder) if folder else None,
            **page_json(state, page),
        }

    return JSONResponse(await asyncio.to_thread(work))


async def properties(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "read")
    assert actor.user_id is not None
    record = await asyncio.to_thread(state.drive.file, actor.user_id, _id(request, "file_id"))
    return JSONResponse(file_json(state, record))


async def trash_file(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "delete")
    assert actor.user_id is not None
    file_id = _id(request, "file_id")
    await asyncio.to_thread(state.drive.trash_file, actor.user_id, file_id)
    return JSONResponse({"success": True, "trashed": {"type": "file", "id": file_id}})


async def create_folder(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "write")
    assert actor.user_id is not None
    body = await json_body(request)
    name = body.get("name")
    if not isinstance(name, str):
        raise BadRequest("name is required: the folder's name")
    parent = body.get("parent_id")
    if parent is not None and not is_id(parent):
        raise BadRequest("parent_id must be a folder id (a number) or null")
    folder = await asyncio.to_thread(state.drive.create_folder, actor.user_id, name, parent or None)
    return JSONResponse(folder_json(state, folder), status_code=201)


async def trash_folder(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "delete")
    assert actor.user_id is not None
    folder_id = _id(request, "folder_id")
    await asyncio.to_thread(state.drive.trash_folder, actor.user_id, folder_id)
    return JSONResponse({"success": True, "trashed": {"type": "folder", "id": folder_id}})


async def search(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "read")
    assert actor.user_id is not None
    query = request.query_params.get("q", "")
    limit = parse_limit(request.query_params.get("limit"))
    cursor = Cursor.decode(request.query_params.get("cursor"))
    page = await asyncio.to_thread(state.drive.search, actor.user_id, query, limit, cursor)
    return JSONResponse({"query": query.strip(), **page_json(state, page)})


async def list_trash(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "read")
    assert actor.user_id is not None
    limit = parse_limit(request.query_params.get("limit"))
    cursor = Cursor.decode(request.query_params.get("cursor"))
    page = await asyncio.to_thread(state.drive.trash, actor.user_id, limit, cursor)
    return JSONResponse(page_json(state, page))


async def restore(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "restore")
    assert actor.user_id is not None
    item = await asyncio.to_thread(
        state.drive.restore, actor.user_id, _id(request, "item_id"), _kind(request)
    )
    shown = file_json(state, item) if isinstance(item, StoredFile) else folder_json(state, item)
    return JSONResponse({"success": True, "restored": shown})


async def delete_from_trash(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "delete")
    assert actor.user_id is not None
    deleted = await asyncio.to_thread(
        state.drive.delete_forever, actor.user_id, _id(request, "item_id"), _kind(request)
    )
    return JSONResponse({"success": True, "deleted_files": deleted})


async def empty_trash(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await authenticate(request, "delete")
    assert actor.user_id is not None
    deleted = await asyncio.to_thread(state.drive.empty_trash, actor.user_id)
    return JSONResponse({"success": True, "deleted_files": deleted})


def _id(request: Request, name: str) -> int:
    raw = str(request.path_params[name])
    number = parse_number(raw)
    if number is None:
        raise NotFound(_NOT_FOUND[name])
    return number


_NOT_FOUND = {
    "file_id": FILE_NOT_FOUND,
    "folder_id": FOLDER_NOT_FOUND,
    "item_id": NOT_IN_TRASH,
}


def _kind(request: Request) -> str | None:
    return request.query_params.get("type") or None
