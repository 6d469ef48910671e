"""``/login``, ``/logout`` and ``/register``: browser sessions for user accounts."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.accounts import NewUser
from satchel.core.actors import Guest
from satchel.db.models import User
from satchel.errors import BadRequest, Forbidden, SatchelError, Unauthorized
from satchel.web.account.forms import (
    app_state,
    check_repeated,
    end_session_cookie,
    form_failure,
    form_page,
    local_path,
    see_other,
    start_session,
    token_json,
    user_json,
)
from satchel.web.csrf import check_csrf
from satchel.web.http import client_ip, read_small_form, wants_html
from satchel.web.state import SESSION_COOKIE, AppState

WRONG_LOGIN = "Wrong username or password"


async def login_form(request: Request) -> Response:
    state = app_state(request)
    next_path = local_path(request.query_params.get("next"))
    if not wants_html(request):
        return token_json(request)
    if (await state.actor(request)).user is not None:
        return see_other(next_path)
    return form_page(request, "login.html", _login_context(state, {"next": next_path}))


async def login(request: Request) -> Response:
    state = app_state(request)
    fields: dict[str, str] = {}
    try:
        ip = await _count_attempt(request, state)
        fields = await read_small_form(request)
        check_csrf(request, fields)
        user = await asyncio.to_thread(
            state.accounts.authenticate, fields.get("username", ""), fields.get("password", ""), ip
        )
        if user is None:
            raise Unauthorized(WRONG_LOGIN)
    except SatchelError as error:
        return form_failure(request, "login.html", _login_context(state, fields), error)
    return await _logged_in(request, state, user, local_path(fields.get("next")), 200)


async def logout(request: Request) -> Response:
    state = app_state(request)
    check_csrf(request, await read_small_form(request))
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await asyncio.to_thread(state.sessions.end, token)
    response = see_other("/") if wants_html(request) else JSONResponse({"success": True})
    end_session_cookie(response, state.settings)
    return response


async def register_form(request: Request) -> Response:
    state = app_state(request)
    _check_registration_open(state)
    if not wants_html(request):
        return token_json(request)
    invite = {"invite": request.query_params.get("invite", "")}
    return form_page(request, "register.html", _register_context(state, invite))


async def register(request: Request) -> Response:
    state = app_state(request)
    fields: dict[str, str] = {}
    try:
        _check_registration_open(state)
        await _count_attempt(request, state)
        fields = await read_small_form(request)
        check_csrf(request, fields)
        user = await asyncio.to_thread(_create_account, state, fields)
    except SatchelError as error:
        return form_failure(request, "register.html", _register_context(state, fields), error)
    return await _logged_in(request, state, user, "/account", 201)


async def _count_attempt(request: Request, state: AppState) -> str:
    """Every login or registration attempt counts against the address's "login" limit."""
    ip = client_ip(request, state.trusted)
    await state.limiter.hit("login", Guest(ip=ip))
    return ip


async def _logged_in(
    request: Request, state: AppState, user: User, next_path: str, json_status: int
) -> Response:
    ip = client_ip(request, state.trusted)
    token = await asyncio.to_thread(state.sessions.create, user, ip)
    if wants_html(request):
        response: Response = see_other(next_path)
    else:
        response = JSONResponse(user_json(user), status_code=json_status)
    start_session(response, state.settings, token)
    return response


def _check_registration_open(state: AppState) -> None:
    if state.settings.registration == "closed":
        raise Forbidden("Registration is closed")


def _create_account(state: AppState, fields: dict[str, str]) -> User:
    check_repeated(fields, "password", "confirm_password")
    new = NewUser(
        username=fields.get("username", "").strip(),
        password=fields.get("password", ""),
        email=fields.get("email", "").strip() or None,
    )
    if state.settings.registration != "invite":
        return state.accounts.register(new)
    code = fields.get("invite", "").strip()
    if not code:
        raise BadRequest("An invite code is required to register")
    return state.invites.redeem(code, lambda: state.accounts.register(new))


def _login_context(state: AppState, fields: dict[str, str]) -> dict[str, Any]:
    return {
        "username": fields.get("username", ""),
        "next": local_path(fields.get("next")),
        "registration": state.settings.registration,
    }


def _register_context(state: AppState, fields: dict[str, str]) -> dict[str, Any]:
    return {
        "username": fields.get("username", ""),
        "email": fields.get("email", ""),
        "invite": fields.get("invite", ""),
        "registration": state.settings.registration,
    }
