"""``/tus/``: the tus 1.0.0 protocol (core, creation, creation-with-upload, expiration,
checksum, termination) for guests and users, with the limits of ``/upload``.

docs/tus.md describes it; ``GET /tus/{id}/result`` gives the finished upload's links.
"""

from __future__ import annotations

import asyncio
from email.utils import format_datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from satchel.core.actors import Actor
from satchel.core.files import CreatedUpload
from satchel.core.ids import parse_number
from satchel.core.tus import CHECKSUMS, Checksum, TusAppend
from satchel.db.models import TusUpload
from satchel.errors import BadRequest, ChecksumMismatch, PreconditionFailed, SatchelError
from satchel.web.csrf import check_session_csrf
from satchel.web.errors import error_headers, guard, status_of
from satchel.web.public.uploads import feed_body
from satchel.web.public.views import upload_result
from satchel.web.state import AppState

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
        "Tus-Max-Size": str(state.uploads.max_bytes(actor)),
    }
    return Response(status_code=204, headers=headers)


async def create(request: Request) -> Response:
    state = _state(request)
    _check_version(request)
    actor = await state.actor(request, key_permission="write")
    check_session_csrf(request, actor)
    await state.limiter.hit("upload", actor)
    if request.headers.get("upload-defer-length"):
        raise BadRequest("Upload-Defer-Length is not supported: send Upload-Length")
    length = parse_number(request.headers.get("upload-length", ""))
    if length is None:
        raise BadRequest("Upload-Length is required: the size of the file in bytes")
    metadata_header = request.headers.get("upload-metadata", "")
    if len(metadata_header) > MAX_METADATA:
        raise BadRequest("Upload-Metadata too long")
    upload = await asyncio.to_thread(state.tus.create, length, metadata_header, actor)
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
    check_session_csrf(request, actor)
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
    with state.uploads.slot(actor):
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
    check_session_csrf(request, actor)
    await asyncio.to_thread(state.tus.terminate, request.path_params["upload_id"], actor)
    return Response(status_code=204, headers=_base_headers())


async def result(request: Request) -> Response:
    """The finished upload's answer, as ``/upload`` gives it (links and management token)."""
    state = _state(request)
    actor = await state.actor(request, key_permission="write")
    upload_id = request.path_params["upload_id"]
    created = await asyncio.to_thread(state.tus.result, upload_id, actor)
    return JSONResponse(upload_result(state, created.file, created.manage_token, 1))


def tus_error(request: Request, error: SatchelError) -> Response:
    """The public shape, with Tus-Resumable as every tus answer must carry (and a 412 the
    version spoken); never a page."""
    headers = {**error_headers(error), **_base_headers()}
    if isinstance(error, PreconditionFailed):
        headers["Tus-Version"] = VERSION
    return JSONResponse({"error": error.detail}, status_code=status_of(error), headers=headers)


def routes() -> list[Route]:
    shaped = guard(tus_error)
    return [
        Route("/tus/", shaped(options), methods=["OPTIONS"]),
        Route("/tus/", shaped(create), methods=["POST"]),
        Route("/tus", shaped(options), methods=["OPTIONS"]),
        Route("/tus", shaped(create), methods=["POST"]),
        Route("/tus/{upload_id}", shaped(options), methods=["OPTIONS"]),
        Route("/tus/{upload_id}", shaped(head), methods=["HEAD"]),
        Route("/tus/{upload_id}", shaped(patch), methods=["PATCH"]),
        Route("/tus/{upload_id}", shaped(terminate), methods=["DELETE"]),
        Route("/tus/{upload_id}/result", shaped(result), methods=["GET"]),
    ]
