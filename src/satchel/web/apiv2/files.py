"""``/api/v2`` file endpoints: upload, download link, URL import, info, edit, delete, move,
copy."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from multipart import parse_options_header
from starlette.requests import Request
from starlette.responses import Response

from satchel.core.actors import Actor, Guest
from satchel.core.drive.files import FileChanges
from satchel.core.files import CreatedUpload
from satchel.core.options import UploadOptions
from satchel.db.models import User
from satchel.errors import FileNotFound, FolderNotFound, Gone, NotFound
from satchel.web.apiv2 import shapes
from satchel.web.apiv2.errors import (
    DEST_FOLDER,
    NO_FILE,
    NO_FILE_ID,
    NO_ITEM,
    NO_UPLOAD,
    V2Error,
    success,
)
from satchel.web.apiv2.params import (
    Params,
    authenticate,
    destination,
    existing_folder,
    folder_param,
    id_param,
    member,
    own_file,
    params_of,
    user_for_token,
)
from satchel.web.multipart import UploadIngest
from satchel.web.public.uploads import ingest_body, start_ingest
from satchel.web.state import AppState

UPLOAD_FIELD = frozenset({"upload_file", "upload_file[]"})  # [] as PHP-style clients send it


async def file_upload(request: Request, state: AppState, params: Params) -> Response:
    """Streams ``upload_file`` into the drive; the token may come before the file in the
    body or in the query string (checked before any of the file is stored)."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != "multipart/form-data" or not options.get("boundary"):
        await authenticate(state, {**params, **(await params_of(request))})
        raise V2Error(NO_UPLOAD)
    user = await authenticate(state, params) if params.get("access_token") else None
    actor: Actor = member(request, state, user) if user else Guest(ip=state.client_ip(request))
    await state.limiter.hit("upload", actor)
    checked: dict[str, User] = {"user": user} if user else {}
    ingest = await start_ingest(
        request,
        state,
        actor if user else None,
        separate=True,
        file_fields=UPLOAD_FIELD,
        digest=True,
    )
    ingest.before_first_file = lambda fields: _authorize_upload(state, params, fields, checked)
    with state.uploads.slot(actor):
        created = await ingest_body(
            request,
            ingest,
            lambda last: _finish_upload(request, state, ingest, last, params, checked),
        )
    data = [shapes.uploaded(state, c.file, c.manage_token, md5) for c, md5 in created]
    return success({"response": "File uploaded", "data": data})


def _authorize_upload(
    state: AppState, params: Params, fields: dict[str, str], checked: dict[str, User]
) -> None:
    """Before the first file part: the token (when it came in the body) and the folder."""
    if "user" not in checked:
        checked["user"] = user_for_token(state, fields)
    folder = folder_param({**params, **fields}, "folder_id", DEST_FOLDER)
    try:
        state.folders.live(checked["user"].id, folder)
    except FolderNotFound:
        raise V2Error(DEST_FOLDER) from None


def _finish_upload(
    request: Request,
    state: AppState,
    ingest: UploadIngest,
    last_batch: list[bytes],
    params: Params,
    checked: dict[str, User],
) -> list[tuple[CreatedUpload, str | None]]:
    ingest.feed_many(last_batch)
    blobs = ingest.finish_separate()
    user = checked.get("user")
    if user is None:
        raise V2Error("Please provide the access_token param.")
    if any(blob.size == 0 for blob in blobs):
        raise V2Error("Filesize received was zero.")
    folder_id = folder_param({**params, **ingest.fields}, "folder_id", DEST_FOLDER)
    options = UploadOptions(is_temp=False, folder_id=folder_id, public=True, short_url=True)
    created = state.uploads.register(member(request, state, user), blobs, options)
    return [(c, blob.md5) for c, blob in zip(created, blobs, strict=True)]


async def file_download(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    if params.get("short_url") and not params.get("file_id"):
        code = params["short_url"].strip().rsplit("/", 1)[-1]
        try:
            found = await asyncio.to_thread(state.files.by_short_code, code)
        except NotFound:
            raise V2Error(NO_FILE) from None
        file_id = found.id
    else:
        file_id = id_param(params, "file_id", NO_FILE_ID)
    record = await asyncio.to_thread(state.drive_files.get, user.id, file_id)
    token = await asyncio.to_thread(state.v2auth.download_token, record.id)
    return {
        "data": {
            "file_id": str(record.id),
            "filename": record.name,
            "download_url": shapes.download_link(state, record, token),
        }
    }


async def url_upload_add(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    encoded = params.get("file_url_base64", "").strip()
    if not encoded:
        raise V2Error("Please provide the file_url_base64 param.")
    try:
        url = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=False).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise V2Error(
            "Could not parse the file_url_base64 parameter. Ensure it's base64 encoded."
        ) from None
    folder_id = folder_param(params, "folder_id", DEST_FOLDER)
    await existing_folder(state, user, folder_id, DEST_FOLDER)
    item = await asyncio.to_thread(state.imports.add, user, url, folder_id)
    state.import_workers.wake()  # this instance starts it now; others find it when they poll
    return {
        "response": "File download from URL scheduled",
        "data": {"scheduled_item_id": item.id, "url": item.url},
    }


async def url_upload_status(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    if not params.get("scheduled_item_id", "").strip():
        raise V2Error("Please provide the scheduled_item_id param.")
    try:
        item_id = id_param(params, "scheduled_item_id", NO_ITEM)
        item = await asyncio.to_thread(state.imports.get, user.id, item_id)
    except (V2Error, NotFound):
        raise V2Error(NO_ITEM) from None
    downloaded = None
    if item.file_id is not None:
        downloaded = await asyncio.to_thread(_downloaded_file, state, user, item.file_id)
    return {
        "response": "Scheduled URL file download found",
        "data": {
            "scheduled_item_id": item.id,
            "status": item.status,
            "created": shapes.ymd(item.created_at),
            "started": shapes.ymd(item.started_at),
            "finished": shapes.ymd(item.finished_at),
            "total_size": item.total_size or 0,
            "downloaded_size": item.downloaded,
            "downloaded_file": downloaded,
            "error": item.error,
        },
    }


def _downloaded_file(state: AppState, user: User, file_id: int) -> dict[str, Any] | None:
    try:
        record = state.drive_files.get(user.id, file_id)
    except (FileNotFound, Gone):
        return None  # deleted or trashed since
    return {
        "file_id": record.id,
        "name": record.name,
        "size": record.size,
        "url": shapes.file_url(state, record),
    }


async def file_info(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    return {"data": await file_json(state, await own_file(state, user, params))}


async def file_edit(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    record = await own_file(state, user, params)
    folder_given = bool(params.get("folder_id", "").strip())
    folder_id = folder_param(params, "folder_id", DEST_FOLDER) if folder_given else None
    if folder_given:
        await existing_folder(state, user, folder_id, DEST_FOLDER)
    changes = FileChanges(
        name=params.get("filename", "").strip() or None,
        content_type=params.get("fileType", "").strip() or None,
        folder_id=folder_id,
        folder_given=folder_given,
    )
    edited = await asyncio.to_thread(state.drive_files.edit, user.id, record.id, changes)
    return {"response": "File successfully updated.", "data": await file_json(state, edited)}


async def file_delete(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    record = await own_file(state, user, params)
    await asyncio.to_thread(state.trash.trash_file, user.id, record.id)
    trashed = await asyncio.to_thread(state.files.get, record.id)
    assert trashed is not None
    return {
        "response": "File successfully set as deleted.",
        "data": await file_json(state, trashed),
    }


async def file_move(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    record = await own_file(state, user, params)
    target = await destination(state, user, params, "new_parent_folder_id")
    changes = FileChanges(folder_id=target, folder_given=True)
    moved = await asyncio.to_thread(state.drive_files.edit, user.id, record.id, changes)
    return {"response": "File successfully moved.", "data": await file_json(state, moved)}


async def file_copy(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    original = await own_file(state, user, params)
    target = await destination(state, user, params, "copy_to_folder_id")
    owner = member(request, state, user)
    copied = await asyncio.to_thread(state.drive_files.copy, owner, original.id, target)
    return {
        # The reference's spelling: clients may compare the message.
        "response": "File successfully copyied.",
        "original_file": {"data": await file_json(state, original)},
        "new_file": {"data": await file_json(state, copied)},
    }


async def file_json(state: AppState, record: Any) -> dict[str, Any]:
    return await asyncio.to_thread(shapes.file_info, state, record)
