"""``/api/v2``: the YetiShare-compatible API (SPEC §6).

Parameters come from the query string or the body (urlencoded, multipart or JSON) on GET and
POST alike. Every answer is the YetiShare envelope (web.apiv2.errors).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from satchel.core.actors import Guest
from satchel.db.models import User
from satchel.web.apiv2 import files, folders, openapi, shapes
from satchel.web.apiv2.errors import (
    BAD_LOGIN,
    BAD_TOKEN,
    V2Error,
    apiv2,
    failure,
    success,
)
from satchel.web.apiv2.params import Params, authenticate, member, params_of, token_of
from satchel.web.errors import guard
from satchel.web.state import AppState

Handler = Callable[[Request, AppState, Params, User], Awaitable[dict[str, Any]]]


async def authorize(request: Request, state: AppState, params: Params) -> Response:
    await state.limiter.hit("login", Guest(ip=state.client_ip(request)))
    methods = set(state.settings.api_v2_auth)
    user: User | None = None
    if params.get("key1") and params.get("key2") and "keys" in methods:
        user = await asyncio.to_thread(state.v2auth.user_for_keys, params["key1"], params["key2"])
    elif params.get("username") and params.get("password") and "password" in methods:
        user = await asyncio.to_thread(
            state.accounts.authenticate,
            params["username"],
            params["password"],
            state.client_ip(request),
        )
        if user is not None and not user.api_enabled:
            user = None
    elif not any(params.get(name) for name in ("key1", "key2", "username", "password")):
        wanted = " or ".join(
            {"keys": "key1 and key2", "password": "username and password"}[m]
            for m in ("keys", "password")
            if m in methods
        )
        raise V2Error(f"Please provide the {wanted} params.")
    if user is None:
        raise V2Error(BAD_LOGIN)
    token = await asyncio.to_thread(state.v2auth.issue_token, user)
    return success({"data": {"access_token": token, "account_id": str(user.id)}})


async def disable_access_token(request: Request, state: AppState, params: Params) -> Response:
    token, account = token_of(params)
    if not await asyncio.to_thread(state.v2auth.disable_token, token, account):
        raise V2Error(BAD_TOKEN)
    return success({"response": "Token removed or no longer available."})


async def account_info(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    return {"data": shapes.account_info(user, state.accounts.package_of(user))}


async def account_package(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    return {"data": shapes.package_data(state.accounts.package_of(user))}


AUTHENTICATED: dict[str, Handler] = {
    "account/info": account_info,
    "account/package": account_package,
    "file/download": files.file_download,
    "file/url_upload_add": files.url_upload_add,
    "file/url_upload_status": files.url_upload_status,
    "file/info": files.file_info,
    "file/edit": files.file_edit,
    "file/delete": files.file_delete,
    "file/move": files.file_move,
    "file/copy": files.file_copy,
    "folder/create": folders.folder_create,
    "folder/listing": folders.folder_listing,
    "folder/info": folders.folder_info,
    "folder/edit": folders.folder_edit,
    "folder/delete": folders.folder_delete,
    "folder/move": folders.folder_move,
}
OPEN = {"authorize": authorize, "disable_access_token": disable_access_token}


async def dispatch(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    endpoint = request.path_params["endpoint"].strip("/")
    if request.method not in ("GET", "HEAD", "POST"):
        refused = failure(f"Method {request.method} is not allowed: use GET or POST", 405)
        refused.headers["Allow"] = "GET, HEAD, POST"
        return refused
    if endpoint == "file/upload":
        return await files.file_upload(request, state, dict(request.query_params))
    params = await params_of(request)
    if endpoint in OPEN:
        return await OPEN[endpoint](request, state, params)
    handler = AUTHENTICATED.get(endpoint)
    if handler is None:
        return failure(f"Unknown endpoint: {endpoint}", 404)
    user = await authenticate(state, params)
    await state.limiter.hit("apiv1", member(request, state, user))
    return success(await handler(request, state, params, user))


def routes() -> list[Route]:
    return [
        # Before the catch-all, which would take it for an unknown endpoint.
        Route("/api/v2/openapi.json", openapi.openapi, methods=["GET"]),
        # Every method, so that the others get their 405 in the envelope clients read.
        Route(
            "/api/v2/{endpoint:path}",
            guard(apiv2)(dispatch),
            methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        ),
    ]
