"""``POST /upload``: the body streams through the parser and cipher into storage."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from satchel.core.files import Actor, CreatedUpload
from satchel.core.ids import parse_number
from satchel.core.ingest import IngestedBlob, UploadIngest
from satchel.core.options import UploadOptions, options_so_far
from satchel.errors import BadRequest, InsufficientStorage, RateLimited, TooLarge
from satchel.web.http import wants_html
from satchel.web.public.views import upload_result
from satchel.web.state import AppState
from satchel.web.templates import render

T = TypeVar("T")
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
    boundary = boundary_of(request)
    max_bytes = max_upload(state, actor)
    content_length = checked_length(request, max_bytes)
    await check_space(state, actor, content_length)

    def check_early(fields: dict[str, str]) -> None:
        options = options_so_far(fields, state.settings.max_expiry)
        state.files.check_upload_options(options, actor)
        if actor.user_id is not None:
            state.drive.folder(actor.user_id, options.folder_id)

    ingest = UploadIngest(state.files.store, boundary, content_length or -1, max_bytes, check_early)
    with upload_slot(state, actor):
        blob, created = await ingest_body(
            request, ingest, lambda last_batch: _complete(state, ingest, last_batch, actor)
        )
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
    check_quota(state, actor, blob.size)
    if actor.user_id is not None:
        state.drive.folder(actor.user_id, options.folder_id)
    return blob, state.files.register_upload(blob, options, actor)


async def ingest_body(
    request: Request, ingest: UploadIngest, complete: Callable[[list[bytes]], T]
) -> T:
    """Streams the body into ``ingest``, then ``complete(last_batch)`` in a worker thread; on
    any failure, whatever was written goes."""
    try:
        last_batch, whole = await feed_body(request, ingest.feed_many)
        if not whole:
            raise BadRequest("Upload interrupted: the body ended early")
        return await asyncio.to_thread(complete, last_batch)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(ingest.abort))
        raise


async def feed_body(
    request: Request, feed_many: Callable[[list[bytes]], None]
) -> tuple[list[bytes], bool]:
    """Receives the next batch while a worker thread feeds the last one (parsing, encrypting,
    writing); returns the final batch, not yet fed, and whether the body came whole (False
    when the client went away)."""
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] | None = None
    batch: list[bytes] = []
    batch_bytes = 0
    whole = True
    try:
        async for chunk in request.stream():
            batch.append(chunk)
            batch_bytes += len(chunk)
            if batch_bytes >= BATCH_BYTES:
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, feed_many, batch)
                batch, batch_bytes = [], 0
    except ClientDisconnect:
        whole = False
    finally:
        if pending is not None:
            # Never leave a worker writing into a blob that is about to be aborted.
            await asyncio.shield(pending)
    return batch, whole


def boundary_of(request: Request) -> str:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != "multipart/form-data":
        raise BadRequest("No files: send multipart/form-data with a 'files' field")
    boundary = str(options.get("boundary", ""))
    if not boundary or len(boundary) > 200:
        raise BadRequest("Malformed multipart body: bad boundary")
    return boundary


def max_upload(state: AppState, actor: Actor) -> int:
    """The package's limit (0 = none), never above the server-wide cap for users."""
    settings = state.settings
    if actor.user_id is None:
        return int(settings.guest_max_upload_size)
    return state.package_of(actor).upload_limit(int(settings.user_max_upload_size))


def check_quota(state: AppState, actor: Actor, incoming: int) -> None:
    """507 when ``incoming`` more bytes would take a user past their package's storage quota."""
    if actor.user_id is not None:
        quota = state.package_of(actor).max_storage_bytes
        state.drive.check_quota(actor.user_id, quota, incoming)


async def check_space(state: AppState, actor: Actor, content_length: int | None) -> None:
    _check_free_space(state, content_length)
    if actor.user_id is not None and content_length:
        # The multipart framing is counted too: a body that only just fits is checked again
        # on the file's real size once it is in.
        await asyncio.to_thread(
            check_quota, state, actor, max(0, content_length - FRAMING_ALLOWANCE)
        )


@contextmanager
def upload_slot(state: AppState, actor: Actor) -> Iterator[None]:
    """The package's ``concurrent_uploads`` (0 = no limit), counted in this process."""
    limit = state.package_of(actor).concurrent_uploads
    who = f"user:{actor.user_id}" if actor.user_id is not None else f"ip:{actor.ip}"
    running = state.uploads_running
    if limit and running.get(who, 0) >= limit:
        raise RateLimited(5, f"Too many uploads at once (at most {limit})")
    running[who] = running.get(who, 0) + 1
    try:
        yield
    finally:
        running[who] -= 1
        if not running[who]:
            del running[who]


def checked_length(request: Request, max_bytes: int) -> int | None:
    """Rejects an oversized body from its Content-Length, before reading any of it."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    length = parse_number(declared)
    if length is None:
        raise BadRequest("Invalid Content-Length")
    if length > max_bytes + FRAMING_ALLOWANCE:
        raise TooLarge(f"File too large (limit {max_bytes} bytes)")
    return length


def _check_free_space(state: AppState, content_length: int | None) -> None:
    free = state.files.store.free_bytes()
    if free is None:
        return
    if free - (content_length or 0) < state.settings.min_free_space:
        raise InsufficientStorage("Server storage is full")
