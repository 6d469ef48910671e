"""The error shape of ``/apiv1``: ``{"error": "…"}`` with the reference's statuses, a
``WWW-Authenticate`` challenge on 401, and never an HTML page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.errors import SatchelError, Unauthorized
from satchel.web.errors import error_headers, status_of

CHALLENGE = 'Bearer realm="satchel"'


def apiv1(request: Request, error: SatchelError) -> Response:
    headers = error_headers(error)
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = CHALLENGE
    return JSONResponse({"error": error.detail}, status_code=status_of(error), headers=headers)
