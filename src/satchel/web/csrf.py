"""Double-submit CSRF tokens for the browser forms: a random value in a cookie that another
site can neither read nor set, echoed in the form (or a header) of every state-changing post."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from satchel.core.actors import Actor, Member
from satchel.errors import Forbidden

CSRF_COOKIE = "satchel_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_TOKEN_LENGTH = 128


def csrf_token(request: Request) -> str:
    """The browser's token, or a new one when it has none (the page then sets the cookie)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if 0 < len(token) <= MAX_TOKEN_LENGTH:
        return token
    return new_csrf_token()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def set_csrf_cookie(
    response: Response, token: str, secure: bool, max_age: int | None = None
) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def check_session_csrf(
    request: Request, actor: Actor, fields: Mapping[str, str] | None = None
) -> None:
    """A change made with a browser's session cookie carries the page's CSRF token (a form
    field or the X-CSRF-Token header); API keys and guests need none."""
    if isinstance(actor, Member) and actor.by_session:
        check_csrf(request, fields or {})


def check_csrf(request: Request, fields: Mapping[str, str]) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise Forbidden("CSRF token missing or wrong")
