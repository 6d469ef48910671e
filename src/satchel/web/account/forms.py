"""What the account pages share: pages carrying a CSRF token, the session cookie, local
redirects, and form errors shown on the form for browsers."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from satchel.config import Settings
from satchel.db.models import User
from satchel.errors import BadRequest, RateLimited, SatchelError
from satchel.web.csrf import csrf_token, new_csrf_token, set_csrf_cookie
from satchel.web.errors import status_of
from satchel.web.http import wants_html
from satchel.web.state import SESSION_COOKIE, AppState
from satchel.web.templates import render


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.satchel
    return state


def secure_cookies(settings: Settings) -> bool:
    """Cookies only over HTTPS when the site is served over HTTPS."""
    return settings.public_url.startswith("https://")


def form_page(
    request: Request,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A page with forms: its CSRF token in the context and in the cookie."""
    token = csrf_token(request)
    page = render(request, template, {**context, "csrf_token": token}, status, headers)
    return _with_csrf_cookie(request, page, token)


def token_json(request: Request) -> Response:
    """For scripts: the CSRF token to echo in ``X-CSRF-Token``, and its cookie."""
    token = csrf_token(request)
    return _with_csrf_cookie(request, JSONResponse({"csrf_token": token}), token)


def _with_csrf_cookie(request: Request, response: Response, token: str) -> Response:
    settings = app_state(request).settings
    set_csrf_cookie(response, token, secure_cookies(settings), settings.session_lifetime)
    return response


def form_failure(
    request: Request, template: str, context: dict[str, Any], error: SatchelError
) -> Response:
    """The form again with the error for a browser; the JSON error for anything else."""
    if not wants_html(request):
        raise error
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None
    return form_page(
        request, template, {**context, "error": error.detail}, status_of(error), headers
    )


def start_session(response: Response, settings: Settings, token: str) -> None:
    secure = secure_cookies(settings)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_lifetime,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    # A fresh CSRF token with each login, lasting as long as the session it protects.
    set_csrf_cookie(response, new_csrf_token(), secure, settings.session_lifetime)


def end_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=secure_cookies(settings), httponly=True, samesite="lax"
    )


def local_path(value: str | None, default: str = "/account") -> str:
    """``value`` when it is a path on this site; never a redirect to another one."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        return default
    return value


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def login_redirect(next_path: str) -> RedirectResponse:
    return see_other(f"/login?next={quote(next_path, safe='/')}")


def user_json(user: User) -> dict[str, Any]:
    return {"username": user.username}


def check_repeated(fields: dict[str, str], name: str, repeat: str) -> None:
    """A form that asks for a new password twice: both must match. Clients that send the
    password once (scripts) skip the check."""
    if repeat in fields and fields[repeat] != fields.get(name, ""):
        raise BadRequest("The two passwords do not match")
