"""``/tus/``: the tus 1.0.0 protocol (core, creation, creation-with-upload, expiration,
checksum, termination) for guests and users, with the limits of ``/upload``.

docs/tus.md describes it; ``GET /tus/{id}/result`` gives the finished upload's links.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from satchel.core.files import Actor, CreatedUpload
from satchel.core.ids import parse_number
from satchel.core.options import UploadOptions
from satchel.core.tus import CHECKSUMS, Checksum, TusAppend, parse_metadata, upload_fields
from satchel.db.models import StoredFile, TusUpload
from satchel.errors import (
    BadRequest,
    ChecksumMismatch,
    PreconditionFailed,
    SatchelError,
    TooLarge,
)
from satchel.web.errors import error_response
from satchel.web.public.uploads import (
    check_quota,
    check_space,
    feed_body,
    max_upload,
    upload_slot,
)
from satchel.web.public.views import upload_result
from satchel.web.state import AppState

Handler = Callable[[Request], Awaitable[Response]]
VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,expiration,checksum,termination"
OCTETS = "application/offset+octet-stream"
# What a client may send: a long file name is reduced, as /upload does, not refused.
MAX_METADATA = 64 * 1024


def _base_headers() -> dict[str, str]:
    return {"Tus-Resumable": VERSION, "Cache-Control": "no-store"}


def _expires(upload: TusUpload) -> str:
    return format_datetime(upload.expires_at, usegmt=True)


def _check_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != VERSION:
        raise PreconditionFailed("Unsupported tus version: send Tus-Resumable: 1.0.0")


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.satchel
    return state


async def options(request: Request) -> Response:
    state = _state(request)
    actor = await state.actor(request)
    headers = {
        **_base_headers(),
        "Tus-Version": VERSION,
        "Tus-Extension": EXTENSIONS,
        "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
        "Tus-Max-Size": str(max_upload(state, actor)),
    }
    return Response(status_code=204, headers=headers)


async def create(request: Request) -> Response:
    state = _state(request)
    _check_version(request)
    actor = await state.actor(request, key_permission="write")
    await state.limiter.hit("upload", actor)
    if request.headers.get("upload-defer-length"):
        raise BadRequest("Upload-Defer-Length is not supported: send Upload-Length")
    length_text = request.headers.get("upload-length", "")
    length = parse_number(length_text)
    if length is None:
        raise BadRequest("Upload-Length is required: the size of the file in bytes")
    limit = max_upload(state, actor)
    if length > limit:
        raise TooLarge(f"File too large (limit {limit} bytes)")
    metadata_header = request.headers.get("upload-metadata", "")
    if len(metadata_header) > MAX_METADATA:
        raise BadRequest("Upload-Metadata too long")
    fields = upload_fields(parse_metadata(metadata_header))
    options_ = UploadOptions.from_fields(fields, state.settings.max_expiry)
    state.files.check_upload_options(options_, actor)
    if actor.user_id is not None:
        await asyncio.to_thread(state.drive.folder, actor.user_id, options_.folder_id)
    await check_space(state, actor, length)
    await asyncio.to_thread(check_quota, state, actor, length)
    upload = await asyncio.to_thread(state.tus.create, length, metadata_header, fields, actor)
    headers = {
        **_base_headers(),
        "Location": state.url(f"/tus/{upload.id}"),
        "Upload-Expires": _expires(upload),
        "Upload-Offset": "0",
    }
    if request.headers.get("content-type", "").split(";")[0].strip() == OCTETS:
        created, offset = await _append(request, state, upload.id, 0, actor)
        headers["Upload-Offset"] = str(offset)
        if created is not None:
            headers.update(_result_headers(state, created))
    return Response(status_code=201, headers=headers)


async def head(request: Request) -> Response:
    state = _state(request)
    _check_version(request)
    actor = await state.actor(request, key_permission="write")
    upload = await asyncio.to_thread(state.tus.get, request.path_params["upload_id"], actor)
    headers = {
        **_base_headers(),
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Upload-Expires": _expires(upload),
    }
    if upload.metadata_header:
        headers["Upload-Metadata"] = upload.metadata_header
    return Response(status_code=200, headers=headers)


async def patch(request: Request) -> Response:
    state = _state(request)
    _check_version(request)
    actor = await state.actor(request, key_permission="write")
    if request.headers.get("content-type", "").split(";")[0].strip() != OCTETS:
        return JSONResponse(
            {"error": f"Content-Type must be {OCTETS}"}, status_code=415, headers=_base_headers()
        )
    offset_text = request.headers.get("upload-offset", "")
    offset = parse_number(offset_text)
    if offset is None:
        raise BadRequest("Upload-Offset is required")
    created, offset = await _append(
        request, state, request.path_params["upload_id"], int(offset_text), actor
    )
    upload = await asyncio.to_thread(state.tus.get, request.path_params["upload_id"], actor)
    headers = {**_base_headers(), "Upload-Offset": str(offset), "Upload-Expires": _expires(upload)}
    if created is not None:
        headers.update(_result_headers(state, created))
    return Response(status_code=204, headers=headers)


async def _append(
    request: Request, state: AppState, upload_id: str, offset: int, actor: Actor
) -> tuple[CreatedUpload | None, int]:
    checksum = Checksum.parse(request.headers.get("upload-checksum"))
    declared = request.headers.get("content-length")
    with upload_slot(state, actor):
        append = await asyncio.to_thread(state.tus.begin, upload_id, offset, actor)
        append.expect_checksum(checksum)
        body = parse_number(declared)
        if body is not None and offset + body > append.upload.length:
            await asyncio.to_thread(append.rollback)
            raise BadRequest("The body goes past Upload-Length")
        try:
            complete = await _stream(request, append)
            created = await asyncio.to_thread(append.finish, complete)
        except ChecksumMismatch:
            raise
        except BaseException:
            await asyncio.shield(asyncio.to_thread(append.rollback))
            raise
    return created, append.offset if created is None else append.upload.length


async def _stream(request: Request, append: TusAppend) -> bool:
    """Feeds the whole body; False when the client went away before the end (what came is
    kept, unless a checksum was promised)."""
    last_batch, whole = await feed_body(request, append.feed_many)
    await asyncio.to_thread(append.feed_many, last_batch)
    return whole


def _result_headers(state: AppState, created: CreatedUpload) -> dict[str, str]:
    result = upload_result(state, created.file, created.manage_token, 1)
    headers = {
        "Satchel-Download-Url": result["download_url"],
        "Satchel-Manage-Url": result["manage_url"],
    }
    if result.get("short_url"):
        headers["Satchel-Short-Url"] = result["short_url"]
    return headers


async def terminate(request: Request) -> Response:
    state = _state(request)
    _check_version(request)
    actor = await state.actor(request, key_permission="write")
    await asyncio.to_thread(state.tus.terminate, request.path_params["upload_id"], actor)
    return Response(status_code=204, headers=_base_headers())


async def result(request: Request) -> Response:
    """The finished upload's answer, as ``/upload`` gives it (links and management token)."""
    state = _state(request)
    actor = await state.actor(request, key_permission="write")
    upload_id = request.path_params["upload_id"]
    stored: dict[str, Any] = await asyncio.to_thread(state.tus.result, upload_id, actor)
    upload = await asyncio.to_thread(state.tus.get, upload_id, actor)
    with state.db.read() as session:
        record = session.get(StoredFile, upload.file_id) if upload.file_id else None
    if record is None:
        return JSONResponse({"error": "The file of this upload is gone"}, status_code=410)
    return JSONResponse(upload_result(state, record, stored["manage_token"], 1))


def _tus_errors(handler: Handler) -> Handler:
    """Errors carry Tus-Resumable as every tus answer must (and a 412 the version spoken)."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except SatchelError as exc:
            response = error_response(request, exc)
            response.headers.update(_base_headers())
            if isinstance(exc, PreconditionFailed):
                response.headers["Tus-Version"] = VERSION
            return response

    return wrapped


def routes() -> list[Route]:
    return [
        Route("/tus/", _tus_errors(options), methods=["OPTIONS"]),
        Route("/tus/", _tus_errors(create), methods=["POST"]),
        Route("/tus", _tus_errors(options), methods=["OPTIONS"]),
        Route("/tus", _tus_errors(create), methods=["POST"]),
        Route("/tus/{upload_id}", _tus_errors(options), methods=["OPTIONS"]),
        Route("/tus/{upload_id}", _tus_errors(head), methods=["HEAD"]),
        Route("/tus/{upload_id}", _tus_errors(patch), methods=["PATCH"]),
        Route("/tus/{upload_id}", _tus_errors(terminate), methods=["DELETE"]),
        Route("/tus/{upload_id}/result", _tus_errors(result), methods=["GET"]),
    ]
