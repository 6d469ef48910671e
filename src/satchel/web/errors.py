"""Domain errors become answers here: the status table of the reference, and ``guard``, which
gives every route of a surface that surface's error shape. Each surface has one renderer:
``public`` below (JSON ``{"error": …}``, an error page for a browser), the others in their
packages (``/apiv1``, ``/api/v2``, tus); the account and shared-folder pages use ``public``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel import observability
from satchel.core.audit import client_address
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

Handler = Callable[[Request], Awaitable[Response]]
Renderer = Callable[[Request, SatchelError], Response]

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


def error_headers(error: SatchelError) -> dict[str, str]:
    """What an error's answer says besides its message, on every surface."""
    headers = {}
    if isinstance(error, RateLimited | ServiceUnavailable | UploadLocked):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{error.size}"
    return headers


def public(request: Request, error: SatchelError) -> Response:
    """The public API's shape: ``{"error": "…"}``; a browser navigating gets a page."""
    status, headers = status_of(error), error_headers(error)
    if wants_html(request) and request.method in {"GET", "HEAD"}:
        context = {"status": status, "message": error.detail}
        return render(request, "error.html", context, status, headers)
    return JSONResponse({"error": error.detail}, status_code=status, headers=headers)


def guard(renderer: Renderer) -> Callable[[Handler], Handler]:
    """Routes of a surface answer its domain errors in its shape."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: Request) -> Response:
            try:
                # Audit events recorded while handling the request carry its client address.
                with client_address(_client_ip(request)):
                    return await handler(request)
            except SatchelError as exc:
                observability.count_failure(exc, status_of(exc))
                return renderer(request, exc)

        return guarded

    return wrap


def _client_ip(request: Request) -> str | None:
    state = getattr(request.app.state, "satchel", None)
    return None if state is None else str(state.client_ip(request))


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SatchelError)
    observability.count_failure(exc, status_of(exc))
    return public(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: "Not found", 405: "Method not allowed"}
    message = messages.get(exc.status_code, exc.detail)
    if wants_html(request) and request.method in {"GET", "HEAD"}:  # a mistyped address
        context = {"status": exc.status_code, "message": message}
        return render(request, "error.html", context, exc.status_code, dict(exc.headers or {}))
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The route's template, never the path: paths carry management tokens.
    route = getattr(request.scope.get("route"), "path", "(no route)")
    log.exception("unhandled error on %s %s", request.method, route)
    observability.count_failure(exc, 500)
    return JSONResponse({"error": "Internal server error"}, status_code=500)


def install_error_handlers(app: Starlette) -> None:
    """What no surface caught: unknown routes, and errors outside any route."""
    app.add_exception_handler(SatchelError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
