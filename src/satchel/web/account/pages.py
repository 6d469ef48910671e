"""``/account``: the signed-in user's package, storage and API keys, and password change."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.actors import Member
from satchel.core.apikeys import MAX_ACTIVE_KEYS, PERMISSIONS
from satchel.core.ids import parse_number
from satchel.core.packages import Package
from satchel.db.models import User
from satchel.errors import NotFound, SatchelError, Unauthorized
from satchel.web.account import views
from satchel.web.account.forms import (
    app_state,
    check_repeated,
    form_failure,
    form_page,
    login_redirect,
    see_other,
)
from satchel.web.apiv1.views import key_json
from satchel.web.csrf import check_csrf
from satchel.web.http import read_small_form, wants_html
from satchel.web.state import SESSION_COOKIE, AppState

NOTICES = {
    "password": "Password changed. Every other session of this account was logged out.",
    "revoked": "API key revoked.",
}
TICKED = frozenset({"on", "true", "1", "yes"})


@dataclass(frozen=True)
class SignedIn:
    state: AppState
    actor: Member
    user: User


Action = Callable[[Request, SignedIn, dict[str, str]], Awaitable[Response]]


async def show(request: Request) -> Response:
    who = await _signed_in(request)
    if who is None:
        return _login_required(request)
    context = await asyncio.to_thread(_account_context, who)
    if not wants_html(request):
        return JSONResponse(_account_json(context))
    notice = NOTICES.get(request.query_params.get("done", ""))
    return form_page(request, "account.html", {**context, "notice": notice})


def account_form(action: Action) -> Callable[[Request], Awaitable[Response]]:
    """A form post of the account page: signed in, CSRF-checked, errors shown on the page."""

    async def endpoint(request: Request) -> Response:
        who = await _signed_in(request)
        if who is None:
            return _login_required(request)
        fields: dict[str, str] = {}
        try:
            fields = await read_small_form(request)
            check_csrf(request, fields)
            return await action(request, who, fields)
        except SatchelError as error:
            if not wants_html(request):
                raise
            context = await asyncio.to_thread(_account_context, who)
            # The error goes beside the form that failed, which keeps what was typed in it.
            kept = {name: value for name, value in fields.items() if "password" not in name}
            context.update(failed=action.__name__, fields=kept)
            return form_failure(request, "account.html", context, error)

    return endpoint


@account_form
async def change_password(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    # The current password is checked: as many guesses as at the login form, no more.
    await who.state.limiter.hit("login", who.actor)
    check_repeated(fields, "new_password", "confirm_password")
    current, new = fields.get("current_password", ""), fields.get("new_password", "")
    keep = request.cookies.get(SESSION_COOKIE)
    await asyncio.to_thread(
        who.state.accounts.change_password, who.user.username, current, new, keep
    )
    if wants_html(request):
        return see_other("/account?done=password")
    return JSONResponse({"success": True})


@account_form
async def create_key(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    permissions = {name: fields.get(name, "").lower() in TICKED for name in PERMISSIONS}
    allowed_ips = fields.get("allowed_ips", "").replace(",", "\n").split()
    created = await asyncio.to_thread(
        who.state.apikeys.create, who.user, fields.get("label", ""), permissions, allowed_ips
    )
    new_key = {**key_json(created.key), "key": created.secret}
    if not wants_html(request):
        return JSONResponse(new_key, status_code=201)
    # The secret is on this page only (never in a URL): Satchel keeps nothing but its hash.
    context = await asyncio.to_thread(_account_context, who)
    shown = {**new_key, **_integrations(who.state.settings.public_url, created.secret, new_key)}
    return form_page(request, "account.html", {**context, "new_key": shown})


def _integrations(public_url: str, secret: str, key: dict[str, Any]) -> dict[str, Any]:
    """The created key ready to use: curl lines and a ShareX uploader, built from the secret
    while this one page has it."""
    return {
        "can_write": bool(key["permissions"].get("write")),
        "can_read": bool(key["permissions"].get("read")),
        "curl_upload": views.curl_upload(public_url, secret),
        "curl_list": views.curl_list(public_url, secret),
        "sharex": views.sharex_uploader(public_url, secret, key["label"]),
        "sharex_name": views.sharex_filename(public_url),
    }


@account_form
async def create_v2_keys(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    key1, key2 = await asyncio.to_thread(who.state.v2auth.generate_keys, who.user.id)
    if not wants_html(request):
        return JSONResponse({"key1": key1, "key2": key2}, status_code=201)
    # key2 is on this page only: Satchel keeps nothing but its hash.
    context = await asyncio.to_thread(_account_context, who)
    new_pair = {"key1": key1, "key2": key2}
    return form_page(request, "account.html", {**context, "v2_key1": key1, "new_v2_keys": new_pair})


@account_form
async def revoke_key(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    raw = request.path_params["key_id"]
    key_id = parse_number(raw)
    if key_id is None:
        raise NotFound("API key not found")
    await asyncio.to_thread(who.state.apikeys.revoke, who.user, key_id)
    if wants_html(request):
        return see_other("/account?done=revoked")
    return JSONResponse({"success": True})


async def _signed_in(request: Request) -> SignedIn | None:
    state = app_state(request)
    actor = await state.actor(request)
    return SignedIn(state, actor, actor.user) if isinstance(actor, Member) else None


def _login_required(request: Request) -> Response:
    if wants_html(request):
        return login_redirect("/account")
    raise Unauthorized("Login required")


def _account_context(who: SignedIn) -> dict[str, Any]:
    package = who.state.uploads.package(who.actor)
    used = who.state.uploads.used_bytes(who.user.id)
    keys = who.state.apikeys.list(who.user)
    public_url = who.state.settings.public_url
    return {
        "user": who.user,
        "package": package,
        "limits": views.package_limits(package),
        "used_bytes": used,
        "usage": views.Usage(used, package.max_storage_bytes),
        "keys": [key_json(key) for key in keys],
        "key_rows": [views.key_row(key) for key in keys],
        "curl_upload": views.curl_upload(public_url),
        "max_keys": MAX_ACTIVE_KEYS,
        "permissions": views.permission_choices(PERMISSIONS),
        "v2_key1": who.user.v2_key1,
        "signed_in": True,
    }


def _account_json(context: dict[str, Any]) -> dict[str, Any]:
    user: User = context["user"]
    package: Package = context["package"]
    return {
        "username": user.username,
        "email": user.email,
        "package": asdict(package),
        "storage": {"used_bytes": context["used_bytes"], "quota_bytes": package.max_storage_bytes},
        "keys": context["keys"],
        "api_v2_key1": context["v2_key1"],
    }
