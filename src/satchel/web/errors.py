"""The public surface's error shape: ``{"error": "…"}`` with the reference's status codes."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    Forbidden,
    Gone,
    InsufficientStorage,
    NotFound,
    PreconditionFailed,
    RangeNotSatisfiable,
    RateLimited,
    RequestTimeout,
    SatchelError,
    ServiceUnavailable,
    TooLarge,
    Unauthorized,
    UploadLocked,
)
from satchel.web.http import wants_html
from satchel.web.templates import render

log = logging.getLogger("satchel.web")

STATUS: dict[type[SatchelError], int] = {
    PreconditionFailed: 412,
    ChecksumMismatch: 460,
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    RequestTimeout: 408,
    TooLarge: 413,
    RangeNotSatisfiable: 416,
    RateLimited: 429,
    InsufficientStorage: 507,
    ServiceUnavailable: 503,
}


def status_of(error: SatchelError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def error_response(request: Request, error: SatchelError) -> Response:
    status = status_of(error)
    headers = {}
    if isinstance(error, RateLimited | ServiceUnavailable | UploadLocked):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, Unauthorized) and request.url.path.startswith("/apiv1/"):
        headers["WWW-Authenticate"] = 'Bearer realm="satchel"'
    if isinstance(error, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{error.size}"
    if wants_html(request) and request.method in {"GET", "HEAD"}:
        return render(
            request, "error.html", {"status": status, "message": error.detail}, status, headers
        )
    return JSONResponse({"error": error.detail}, status_code=status, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SatchelError)
    return error_response(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: "Not found", 405: "Method not allowed"}
    return JSONResponse(
        {"error": messages.get(exc.status_code, exc.detail)},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The route's template, never the path: paths carry management tokens.
    route = getattr(request.scope.get("route"), "path", "(no route)")
    log.exception("unhandled error on %s %s", request.method, route)
    return JSONResponse({"error": "Internal server error"}, status_code=500)


def install_error_handlers(app: Starlette) -> None:
    app.add_exception_handler(SatchelError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
