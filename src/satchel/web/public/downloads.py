"""``GET|HEAD /f/{uuid}[/{name}]``, ``/f/{uuid}/encrypted``, ``/s/{code}``: decrypting streams.
Whether a request may have the bytes, and which, is core.downloads' to say."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from satchel.core.actors import Actor
from satchel.core.downloads import DownloadPlan, DownloadRequest
from satchel.core.ids import is_uuid4
from satchel.crypto.atrest import DEFAULT_CHUNK_SIZE
from satchel.db.models import StoredFile
from satchel.errors import NotFound, PasswordRequired, WrongPassword
from satchel.web.account.forms import form_page
from satchel.web.http import content_disposition, is_cli_client, parse_range, wants_html
from satchel.web.public.views import decimal_bytes, download_url
from satchel.web.state import AppState

# Bodies up to this size are read in the same worker-thread hop as the lookup.
INLINE_BYTES = 1 << 20
# Read and decrypt a few chunks per worker-thread hop; each is still sent on its own.
PIECES_PER_HOP = 2
SMALL_FILE = DEFAULT_CHUNK_SIZE
INLINE_ON_LOOP = 64 * 1024  # one chunk: read and decrypted in one go
DOWNLOAD_CSP = "default-src 'none'; sandbox"


async def download(request: Request) -> Response:
    return await _serve(request, request.path_params["public_id"])


async def short_link(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    code = request.path_params["code"]
    if not is_cli_client(request):  # the other way counts in _serve
        await state.limiter.hit("download", await state.actor(request))
    if not code.isalnum() or len(code) > 32:
        raise NotFound()
    record, named = await asyncio.to_thread(state.downloads.short_link, code)
    if not is_cli_client(request):
        # The name only in a link anyone may open: a private or protected file's stays hidden.
        target = download_url(state, record) if named else state.url(f"/f/{record.uuid}")
        return RedirectResponse(target, status_code=302)
    return await _serve(request, record.uuid)


async def owner_download(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request)
    await state.limiter.hit("download", actor)
    plan = await asyncio.to_thread(
        state.downloads.plan_managed, request.path_params["token"], actor
    )
    return await respond(request, state, plan)


def download_request(request: Request, actor: Actor) -> DownloadRequest:
    """What a download request asks for, from its headers and query."""
    return DownloadRequest(
        actor=actor,
        password=request.query_params.get("pw"),
        byte_range=parse_range(request.headers.get("range")),
        counts=request.method == "GET",
        if_range=request.headers.get("if-range"),
        download_token=request.query_params.get("download_token"),
    )


async def _serve(request: Request, public_id: str) -> Response:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request)
    await state.limiter.hit("download", actor)
    if not is_uuid4(public_id):
        raise NotFound()
    asked = download_request(request, actor)
    try:
        target: str | StoredFile = public_id
        if state.db.is_sqlite and asked.download_token is None:
            # A local SQLite read takes tenths of a millisecond, less than a thread hop; a
            # small public file without limit is then served without leaving the event loop.
            target = state.files.lookup(public_id)
        if isinstance(target, StoredFile) and _cheap(target):
            plan, body = _plan_and_read(state, target, asked)
        else:
            plan, body = await asyncio.to_thread(_plan_and_read, state, target, asked)
    except (PasswordRequired, WrongPassword) as exc:
        return _password_prompt(request, public_id, exc)
    if body is not None:
        return Response(body, status_code=206 if plan.partial else 200, headers=_headers(plan))
    return await respond(request, state, plan)


def _cheap(record: StoredFile) -> bool:
    """No password hash to check, no write to wait for, little to read and decrypt."""
    return (
        record.password_hash is None
        and record.max_downloads is None
        and record.size <= INLINE_ON_LOOP
    )


def _plan_and_read(
    state: AppState, target: str | StoredFile, asked: DownloadRequest
) -> tuple[DownloadPlan, bytes | None]:
    """One worker-thread hop for the common case of a small file: look up, count, read."""
    plan = state.downloads.plan(target, asked)
    if asked.counts and plan.end - plan.start <= INLINE_BYTES:
        return plan, _read_all(state, plan)
    return plan, None


def _password_prompt(
    request: Request, public_id: str, exc: PasswordRequired | WrongPassword
) -> Response:
    """A browser gets the share page's password form: it posts the password, which a form
    sent as ``?pw=`` would put in the address bar, the history and proxies' logs."""
    if not wants_html(request):
        raise exc
    wrong = isinstance(exc, WrongPassword)
    context = {"action": f"/d/{public_id}", "error": exc.detail if wrong else None}
    return form_page(request, "share_password.html", context, 403 if wrong else 401)


async def respond(request: Request, state: AppState, plan: DownloadPlan) -> Response:
    headers = _headers(plan)
    status = 206 if plan.partial else 200
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    length = plan.end - plan.start
    if length <= INLINE_BYTES:
        body = await asyncio.to_thread(_read_all, state, plan)
        return Response(body, status_code=status, headers=headers)
    pieces = await asyncio.to_thread(state.files.read, plan.file, plan.start, plan.end)
    return StreamingResponse(_stream(state, plan, pieces), status_code=status, headers=headers)


def _read_all(state: AppState, plan: DownloadPlan) -> bytes:
    try:
        if plan.file.size <= SMALL_FILE:
            return state.files.read_small(plan.file, plan.start, plan.end)
        return b"".join(state.files.read(plan.file, plan.start, plan.end))
    finally:
        if plan.final:
            state.downloads.mark_gone(plan.file.id)


async def _stream(
    state: AppState, plan: DownloadPlan, pieces: Iterator[bytes]
) -> AsyncIterator[bytes]:
    try:
        while batch := await asyncio.to_thread(_take, pieces, PIECES_PER_HOP):
            for piece in batch:
                yield piece
    finally:
        if plan.final:
            await asyncio.shield(asyncio.to_thread(state.downloads.mark_gone, plan.file.id))


def _take(pieces: Iterator[bytes], count: int) -> list[bytes]:
    return list(itertools.islice(pieces, count))


def _headers(plan: DownloadPlan) -> dict[str, str]:
    record = plan.file
    headers = {
        "Content-Type": record.content_type if not record.is_e2e else "application/octet-stream",
        "Content-Length": str(plan.end - plan.start),
        "Content-Disposition": content_disposition(record.name),
        "ETag": plan.tag,
        "Last-Modified": record.created_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
        "Content-Security-Policy": DOWNLOAD_CSP,
        "X-Content-Type-Options": "nosniff",
    }
    if plan.partial:
        headers["Content-Range"] = f"bytes {plan.start}-{plan.end - 1}/{record.size}"
    if record.is_e2e and record.e2e_format:
        headers["X-E2E-Format"] = record.e2e_format
        headers["Access-Control-Expose-Headers"] = "X-E2E-Format"
    elif record.is_e2e:
        headers["X-E2E-Salt"] = decimal_bytes(record.e2e_salt)
        headers["X-E2E-IV"] = decimal_bytes(record.e2e_iv)
        headers["Access-Control-Expose-Headers"] = "X-E2E-Salt, X-E2E-IV"
    return headers
