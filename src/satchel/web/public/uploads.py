"""``POST /upload``: the body streams through the parser and cipher into storage."""

from __future__ import annotations

import asyncio

from multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from satchel.core.files import Actor, CreatedUpload
from satchel.core.ingest import IngestedBlob, UploadIngest
from satchel.core.options import UploadOptions, options_so_far
from satchel.errors import BadRequest, InsufficientStorage, TooLarge
from satchel.web.http import wants_html
from satchel.web.public.views import upload_result
from satchel.web.state import AppState
from satchel.web.templates import render

BATCH_BYTES = 1 << 20
# Multipart framing around the files: the Content-Length check leaves room for it.
FRAMING_ALLOWANCE = 1 << 20


async def index(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    settings = state.settings
    return render(
        request,
        "index.html",
        {"max_size": settings.guest_max_upload_size, "max_days": settings.max_expiry // 86400},
    )


async def upload(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request, key_permission="write")
    await state.limiter.hit("upload", actor)
    boundary = _boundary(request)
    max_bytes = _max_upload(state, actor)
    content_length = _checked_length(request, max_bytes)
    _check_free_space(state, content_length)

    def check_early(fields: dict[str, str]) -> None:
        options = options_so_far(fields, state.settings.max_expiry)
        state.files.check_upload_options(options, actor)

    ingest = UploadIngest(state.files.store, boundary, content_length or -1, max_bytes, check_early)
    try:
        last_batch = await _stream_into(request, ingest)
        blob, created = await asyncio.to_thread(_complete, state, ingest, last_batch, actor)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(ingest.abort))
        raise
    result = upload_result(state, created.file, created.manage_token, blob.file_count)
    if wants_html(request):
        return RedirectResponse(result["redirect"], status_code=303)
    return JSONResponse(result)


def _complete(
    state: AppState, ingest: UploadIngest, last_batch: list[bytes], actor: Actor
) -> tuple[IngestedBlob, CreatedUpload]:
    """The end of an upload in one worker-thread hop (a small upload is only this)."""
    ingest.feed_many(last_batch)
    blob = ingest.finish()
    options = UploadOptions.from_fields(ingest.fields, state.settings.max_expiry)
    return blob, state.files.register_upload(blob, options, actor)


async def _stream_into(request: Request, ingest: UploadIngest) -> list[bytes]:
    """Receives the next batch while a worker thread parses, encrypts and writes the last one;
    returns the final batch, not yet fed."""
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] | None = None
    batch: list[bytes] = []
    batch_bytes = 0
    try:
        async for chunk in request.stream():
            batch.append(chunk)
            batch_bytes += len(chunk)
            if batch_bytes >= BATCH_BYTES:
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, ingest.feed_many, batch)
                batch, batch_bytes = [], 0
    except ClientDisconnect:
        raise BadRequest("Upload interrupted: the body ended early") from None
    finally:
        if pending is not None:
            await _settle(pending)
    return batch


async def _settle(pending: asyncio.Future[None]) -> None:
    # Never leave a worker writing into a blob that is about to be aborted.
    await asyncio.shield(pending)


def _boundary(request: Request) -> str:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != "multipart/form-data":
        raise BadRequest("No files: send multipart/form-data with a 'files' field")
    boundary = str(options.get("boundary", ""))
    if not boundary or len(boundary) > 200:
        raise BadRequest("Malformed multipart body: bad boundary")
    return boundary


def _max_upload(state: AppState, actor: Actor) -> int:
    settings = state.settings
    if actor.user_id is None:
        return int(settings.guest_max_upload_size)
    return int(settings.user_max_upload_size)


def _checked_length(request: Request, max_bytes: int) -> int | None:
    """Rejects an oversized body from its Content-Length, before reading any of it."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.isdigit():
        raise BadRequest("Invalid Content-Length")
    length = int(declared)
    if length > max_bytes + FRAMING_ALLOWANCE:
        raise TooLarge(f"File too large (limit {max_bytes} bytes)")
    return length


def _check_free_space(state: AppState, content_length: int | None) -> None:
    free = state.files.store.free_bytes()
    if free is None:
        return
    if free - (content_length or 0) < state.settings.min_free_space:
        raise InsufficientStorage("Server storage is full")
