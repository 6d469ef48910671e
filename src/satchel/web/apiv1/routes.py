"""``/apiv1``: the cloud-drive REST API for scoped API keys (keys management so far)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from satchel.core.apikeys import KeyChanges
from satchel.db.models import ApiKey, User
from satchel.errors import BadRequest, NotFound
from satchel.web.http import json_object, read_body
from satchel.web.public.views import iso
from satchel.web.state import AppState

MAX_JSON_BYTES = 64 * 1024


async def authenticate(request: Request, permission: str) -> User:
    state: AppState = request.app.state.satchel
    ip = (await state.actor(request)).ip
    header = request.headers.get("authorization")
    user, _key = await asyncio.to_thread(state.apikeys.authenticate, header, ip, permission)
    return user


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "label": key.label,
        "hint": key.hint,
        "permissions": key.permissions,
        "allowed_ips": key.allowed_ips,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "last_used_ip": key.last_used_ip,
    }


async def list_keys(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    user = await authenticate(request, "manage_keys")
    keys = await asyncio.to_thread(state.apikeys.list, user)
    return JSONResponse({"keys": [key_json(key) for key in keys]})


async def create_key(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    user = await authenticate(request, "manage_keys")
    body = await json_body(request)
    created = await asyncio.to_thread(
        state.apikeys.create,
        user,
        _text(body, "label"),
        _object(body, "permissions"),
        _list(body, "allowed_ips"),
    )
    # The secret is in this answer only: Satchel keeps nothing but its hash.
    return JSONResponse({**key_json(created.key), "key": created.secret}, status_code=201)


async def update_key(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    user = await authenticate(request, "manage_keys")
    body = await json_body(request)
    changes = KeyChanges(
        label=_text(body, "label") if "label" in body else None,
        permissions=_object(body, "permissions") if "permissions" in body else None,
        allowed_ips=_list(body, "allowed_ips") if "allowed_ips" in body else None,
    )
    key = await asyncio.to_thread(state.apikeys.update, user, _key_id(request), changes)
    return JSONResponse(key_json(key))


async def revoke_key(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    user = await authenticate(request, "manage_keys")
    await asyncio.to_thread(state.apikeys.revoke, user, _key_id(request))
    return JSONResponse({"success": True})


async def json_body(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_JSON_BYTES, "Request body too large")
    return json_object(body or b"{}")


def _key_id(request: Request) -> int:
    raw = request.path_params["key_id"]
    if not raw.isdigit():
        raise NotFound("API key not found")
    return int(raw)


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name, {})
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be an object of true/false values")
    return value


def _list(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name, [])
    if not isinstance(value, list):
        raise BadRequest(f"{name} must be a list")
    return value


def routes() -> list[Route]:
    return [
        Route("/apiv1/keys", list_keys, methods=["GET"]),
        Route("/apiv1/keys", create_key, methods=["POST"]),
        Route("/apiv1/keys/{key_id}", update_key, methods=["PATCH"]),
        Route("/apiv1/keys/{key_id}", revoke_key, methods=["DELETE"]),
    ]
