"""The share page of a file (``/d/{uuid}``), its password form and its previews.

What a request may see is core.downloads' and core.access's to say, exactly as for ``/f/``.
A right password on the share page gives a signed, short-lived file pass (core.access), kept
in a cookie scoped to the file's page and preview paths, so the password never goes into a
URL. A preview (``/preview/{uuid}``) is served inline only for types that cannot run script,
sandboxed, never for an end-to-end encrypted file nor for one with a download limit (a preview
would be bytes the limit does not count).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from satchel.core.access import FILE_PASS_LIFETIME
from satchel.core.ids import is_uuid4
from satchel.db.models import StoredFile
from satchel.errors import NotFound, PasswordRequired, RateLimited, WrongPassword
from satchel.web.account.forms import form_failure, form_page, secure_cookies, see_other
from satchel.web.csrf import check_csrf
from satchel.web.errors import Handler
from satchel.web.http import content_disposition, read_small_form, wants_html
from satchel.web.public.downloads import download_request, respond
from satchel.web.public.views import download_url, iso
from satchel.web.state import AppState
from satchel.web.templates import render

PASS_COOKIE = "satchel_file"  # noqa: S105 - a cookie name, not a secret
# Framed by the share page only (its own origin); inside, nothing runs.
PREVIEW_CSP = (
    "default-src 'none'; img-src 'self'; media-src 'self'; frame-ancestors 'self'; sandbox"
)

# Served as themselves: formats a browser shows without running anything of the file. Never
# HTML, SVG or XML (they carry script), nor anything else a browser could take for a page.
SHOWN_AS_IS = {
    "image": {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"},
    "audio": {
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "audio/x-wav",
        "audio/webm",
        "audio/flac",
        "audio/mp4",
        "audio/aac",
    },
    "video": {"video/mp4", "video/webm", "video/ogg"},
    "pdf": {"application/pdf"},
}
# Shown as text/plain; charset=utf-8, whatever they were sent as.
SHOWN_AS_TEXT = {
    "text/plain",
    "text/csv",
    "text/markdown",
    "text/x-markdown",
    "text/x-log",
    "text/x-python",
    "application/json",
}
TEXT_TYPE = "text/plain; charset=utf-8"


def preview_kind(record: StoredFile) -> str | None:
    """image, audio, video, pdf or text; None when the file gets no preview."""
    if record.is_e2e or record.max_downloads is not None:
        return None
    media_type = record.content_type.split(";", 1)[0].strip().lower()
    for kind, types in SHOWN_AS_IS.items():
        if media_type in types:
            return kind
    return "text" if media_type in SHOWN_AS_TEXT else None


def _preview_type(record: StoredFile, kind: str) -> str:
    return TEXT_TYPE if kind == "text" else record.content_type.split(";", 1)[0].strip().lower()


def _public_id(request: Request) -> str:
    public_id: str = request.path_params["uuid"]
    if not is_uuid4(public_id):
        raise NotFound()
    return public_id


def _protected(record: StoredFile, state: AppState) -> bool:
    return not state.access.open_to_anyone(record)


# -- the page ------------------------------------------------------------------------------


async def show(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    public_id = _public_id(request)
    actor = await state.actor(request)
    await state.limiter.hit("download", actor)
    file_pass = request.cookies.get(PASS_COOKIE)
    try:
        record = await asyncio.to_thread(state.downloads.shared, public_id, actor, file_pass)
    except PasswordRequired:
        if not wants_html(request):
            raise
        return _password_form(request, public_id)
    facts = await asyncio.to_thread(_facts, state, record)
    if not wants_html(request):
        return JSONResponse(facts)
    template = "share_e2e.html" if record.is_e2e else "share.html"
    return render(request, template, {"file": facts})


def _facts(state: AppState, record: StoredFile) -> dict[str, Any]:
    downloads = state.files.downloads_of(record)
    kind = preview_kind(record)
    # A protected file's /f/ link would ask for the password again, in its URL: the page's
    # own download link goes by the file pass instead.
    protected = _protected(record, state)
    link = state.url(f"/d/{record.uuid}/download") if protected else download_url(state, record)
    return {
        "id": record.uuid,
        "name": record.name,
        "size": record.size,
        "content_type": record.content_type,
        "expires_at": iso(record.expires_at),
        "max_downloads": record.max_downloads,
        "downloads": downloads,
        "downloads_left": None
        if record.max_downloads is None
        else max(0, record.max_downloads - downloads),
        "e2e": record.is_e2e,
        "download_url": link,
        "encrypted_url": state.url(f"/f/{record.uuid}/encrypted") if record.is_e2e else None,
        "preview": kind,
        "preview_url": state.url(f"/preview/{record.uuid}") if kind else None,
        "share_url": state.url(f"/d/{record.uuid}"),
    }


def _password_form(
    request: Request, public_id: str, error: str | None = None, status: int = 401
) -> Response:
    context = {"action": f"/d/{public_id}", "error": error}
    return form_page(request, "share_password.html", context, status)


async def unlock(request: Request) -> Response:
    """The password form: a right password sets the file pass cookie, then shows the page."""
    state: AppState = request.app.state.satchel
    public_id = _public_id(request)
    actor = await state.actor(request)
    await state.limiter.hit("download", actor)  # as a ``?pw=`` guess is
    fields = await read_small_form(request)
    check_csrf(request, fields)
    password = fields.get("password", "")
    try:
        _, file_pass = await asyncio.to_thread(state.downloads.unlock, public_id, actor, password)
    except (WrongPassword, PasswordRequired, RateLimited) as exc:
        context = {"action": f"/d/{public_id}", "next": fields.get("next") == "stats"}
        if isinstance(exc, PasswordRequired):
            exc = WrongPassword()
        return form_failure(request, "share_password.html", context, exc)
    # The stats page's form comes back to it (a fixed path: never a redirect elsewhere).
    back = f"/stats/{public_id}" if fields.get("next") == "stats" else f"/d/{public_id}"
    response: Response = see_other(back) if wants_html(request) else JSONResponse({"success": True})
    if file_pass is not None:
        _set_pass(response, state, public_id, file_pass)
    return response


def _set_pass(response: Response, state: AppState, public_id: str, file_pass: str) -> None:
    """One cookie per path the pass opens: the page (and its download), the preview and
    the stats page."""
    for path in (f"/d/{public_id}", f"/preview/{public_id}", f"/stats/{public_id}"):
        response.set_cookie(
            PASS_COOKIE,
            file_pass,
            max_age=FILE_PASS_LIFETIME,
            path=path,
            secure=secure_cookies(state.settings),
            httponly=True,
            samesite="lax",
        )


# -- bytes ---------------------------------------------------------------------------------


async def download(request: Request) -> Response:
    """The page's download link for a protected file: as ``/f/``, with the file pass."""
    state: AppState = request.app.state.satchel
    public_id = _public_id(request)
    actor = await state.actor(request)
    await state.limiter.hit("download", actor)
    asked = replace(download_request(request, actor), file_pass=request.cookies.get(PASS_COOKIE))
    try:
        plan = await asyncio.to_thread(state.downloads.plan, public_id, asked)
    except PasswordRequired:
        if wants_html(request):
            return see_other(f"/d/{public_id}")
        raise
    return await respond(request, state, plan)


async def preview(request: Request) -> Response:
    """The file inline, sandboxed, for the types of ``preview_kind``; 404 for any other."""
    state: AppState = request.app.state.satchel
    public_id = _public_id(request)
    actor = await state.actor(request)
    await state.limiter.hit("download", actor)
    asked = replace(
        download_request(request, actor),
        password=None,  # the pass or nothing: a preview URL carries no secret
        counts=False,  # files with a download limit get no preview at all
        file_pass=request.cookies.get(PASS_COOKIE),
    )
    plan = await asyncio.to_thread(state.downloads.plan, public_id, asked)
    kind = preview_kind(plan.file)  # asked only once the download's rules let the request in
    if kind is None:
        raise NotFound("This file has no preview")
    response = await respond(request, state, plan)
    response.headers["Content-Type"] = _preview_type(plan.file, kind)
    response.headers["Content-Disposition"] = content_disposition(plan.file.name, "inline")
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


async def save_fallback(request: Request) -> Response:
    """Reached only when the page's service worker did not answer: back to the page."""
    return RedirectResponse(f"/d/{_public_id(request)}", status_code=303)


PAGES: list[tuple[str, Handler, list[str]]] = [
    ("/d/{uuid}", show, ["GET"]),
    ("/d/{uuid}", unlock, ["POST"]),
    ("/d/{uuid}/download", download, ["GET", "HEAD"]),
    ("/d/{uuid}/save", save_fallback, ["GET"]),
    ("/preview/{uuid}", preview, ["GET", "HEAD"]),
]
