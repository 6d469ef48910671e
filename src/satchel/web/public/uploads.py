"""``POST /upload``: the body streams through the parser and cipher into storage; the upload
policy (core.uploads) decides what may be kept. The streaming helpers here serve every
multipart surface (``/apiv1``, ``/api/v2``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from satchel.core.actors import Actor, Member
from satchel.core.bundles import IngestedBlob
from satchel.core.files import CreatedUpload
from satchel.core.ids import parse_number
from satchel.core.options import UploadOptions, options_so_far
from satchel.errors import BadRequest, NoFiles
from satchel.web.account.forms import form_page
from satchel.web.csrf import check_session_csrf
from satchel.web.http import wants_html
from satchel.web.multipart import FILE_FIELDS, UploadIngest
from satchel.web.public.views import upload_result
from satchel.web.state import AppState

T = TypeVar("T")
BATCH_BYTES = 1 << 20


async def index(request: Request) -> Response:
    """The uploader: a plain form that works without scripts, which upload.js enhances."""
    state: AppState = request.app.state.satchel
    actor = await state.actor(request)
    settings = state.settings
    context = {
        "max_size": state.uploads.max_bytes(actor),
        "max_days": settings.max_expiry // 86400,
        "signed_in": isinstance(actor, Member),
    }
    return form_page(request, "index.html", context)


async def upload(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request, key_permission="write")
    await state.limiter.hit("upload", actor)
    ingest = await start_ingest(request, state, actor)
    policy = state.uploads

    def check_early(fields: dict[str, str]) -> None:
        check_session_csrf(request, actor, fields)  # the form's field, before any file
        policy.check_options(actor, options_so_far(fields, state.settings.max_expiry))

    ingest.before_first_file = check_early
    with policy.slot(actor):
        blob, created = await ingest_body(
            request,
            ingest,
            lambda last_batch: _complete(state, ingest, last_batch, actor),
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
    [created] = state.uploads.register(actor, [blob], options)
    return blob, created


async def start_ingest(
    request: Request,
    state: AppState,
    actor: Actor | None,
    separate: bool = False,
    file_fields: frozenset[str] | None = None,
    digest: bool = False,
) -> UploadIngest:
    """A multipart body's ingest, after the checks that need none of the body: its type, its
    declared length (413, 507) against the upload policy (``actor`` None: not known yet)."""
    boundary = boundary_of(request)
    content_length = declared_length(request)
    await asyncio.to_thread(state.uploads.admit_body, actor, content_length)
    return UploadIngest(
        state.store,
        boundary,
        -1 if content_length is None else content_length,
        state.uploads.max_bytes(actor),
        separate=separate,
        file_fields=file_fields or FILE_FIELDS,
        digest=digest,
    )


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
        raise NoFiles("No files: send multipart/form-data with a 'files' field")
    boundary = str(options.get("boundary", ""))
    if not boundary or len(boundary) > 200:
        raise BadRequest("Malformed multipart body: bad boundary")
    return boundary


def declared_length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    length = parse_number(declared)
    if length is None:
        raise BadRequest("Invalid Content-Length")
    return length
