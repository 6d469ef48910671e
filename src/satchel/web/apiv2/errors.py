"""The envelope of ``/api/v2``, errors included, and the one table that gives domain errors
their reference messages.

Errors are HTTP 200 with ``_status`` and ``status`` "error" (real clients test one or the
other), except a rate limit (429) and an outage (503), which carry ``Retry-After``; an unknown
endpoint is the same envelope with 404.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.errors import (
    FileNotFound,
    FolderNotFound,
    NoFiles,
    RateLimited,
    SatchelError,
    ServiceUnavailable,
    TooLarge,
)

NO_TOKEN = "Please provide the access_token param."  # noqa: S105 - a message
NO_ACCOUNT = "Please provide the account_id param."
BAD_TOKEN = "Could not validate access_token and account_id, please reauthenticate or try again."  # noqa: S105
BAD_LOGIN = (
    "Could not authenticate user. The username and password may be invalid or your account "
    "may be locked from too many failed logins."
)
NO_FILE = "Could not find file based on file_id."
NO_FILE_ID = "Please provide the file_id param."
NO_FOLDER = "Could not find folder based on folder_id."
DEST_FOLDER = "Could not find the destination folder id defined by folder_id."
NO_PARENT = "Could not find the parent folder id defined by parent_id."
NO_UPLOAD = "Did not receive uploaded file."
NO_ITEM = "Could not find scheduled item."


class V2Error(SatchelError):
    """An answer of the reference, by its message (a parameter missing or not found)."""


def _too_large(error: SatchelError) -> str:
    limit = getattr(error, "limit", None)
    return f"The file is too large: the limit is {limit} bytes." if limit else error.detail


MESSAGES: dict[type[SatchelError], Callable[[SatchelError], str]] = {
    FileNotFound: lambda _error: NO_FILE,
    FolderNotFound: lambda _error: NO_FOLDER,
    NoFiles: lambda _error: NO_UPLOAD,
    TooLarge: _too_large,
}
STATUSES: dict[type[SatchelError], int] = {RateLimited: 429, ServiceUnavailable: 503}


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def success(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse({**body, "_status": "success", "_datetime": now_text()})


def failure(message: str, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        {"response": message, "_status": "error", "status": "error", "_datetime": now_text()},
        status_code=status_code,
    )


def apiv2(request: Request, error: SatchelError) -> Response:
    """Every domain error in the envelope: the table's message, or the error's own (limits,
    quotas and bad input keep their meaning)."""
    message, status = error.detail, 200
    for kind in type(error).__mro__:
        if kind in MESSAGES:
            message = MESSAGES[kind](error)
            break
    for kind in type(error).__mro__:
        if kind in STATUSES:
            status = STATUSES[kind]
            break
    response = failure(message, status)
    if isinstance(error, RateLimited | ServiceUnavailable):
        response.headers["Retry-After"] = str(error.retry_after)
    return response
