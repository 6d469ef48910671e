"""``/apiv1``: the cloud-drive REST API for scoped API keys (SPEC §5)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from satchel.core.apikeys import KeyChanges, check_grant
from satchel.core.ids import parse_number
from satchel.db.models import ApiKey, User
from satchel.errors import BadRequest, NotFound
from satchel.web.apiv1 import drive
from satchel.web.apiv1.auth import authenticate, json_body
from satchel.web.apiv1.errors import apiv1
from satchel.web.apiv1.openapi import openapi
from satchel.web.apiv1.views import key_json
from satchel.web.errors import Handler, guard
from satchel.web.state import AppState


async def list_keys(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    user = await _key_manager(request)
    keys = await asyncio.to_thread(state.apikeys.list, user)
    return JSONResponse({"keys": [key_json(key) for key in keys]})


async def create_key(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    user = await _key_manager(request)
    body = _key_fields(await json_body(request))
    permissions, allowed_ips = _object(body, "permissions"), _list(body, "allowed_ips")
    check_grant(request.state.api_key, permissions, allowed_ips)
    created = await asyncio.to_thread(
        state.apikeys.create, user, _text(body, "label"), permissions, allowed_ips
    )
    # The secret is in this answer only: Satchel keeps nothing but its hash.
    return JSONResponse({**key_json(created.key), "key": created.secret}, status_code=201)


async def update_key(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    user = await _key_manager(request)
    body = _key_fields(await json_body(request))
    changes = KeyChanges(
        label=_text(body, "label") if "label" in body else None,
        permissions=_object(body, "permissions") if "permissions" in body else None,
        allowed_ips=_list(body, "allowed_ips") if "allowed_ips" in body else None,
    )
    caller: ApiKey = request.state.api_key
    check_grant(
        caller,
        changes.permissions if changes.permissions is not None else {},
        changes.allowed_ips,
    )
    key = await asyncio.to_thread(state.apikeys.update, user, _key_id(request), changes)
    return JSONResponse(key_json(key))


async def revoke_key(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    user = await _key_manager(request)
    await asyncio.to_thread(state.apikeys.revoke, user, _key_id(request))
    return JSONResponse({"success": True})


async def _key_manager(request: Request) -> User:
    return (await authenticate(request, "manage_keys")).user


def _key_id(request: Request) -> int:
    key_id = parse_number(request.path_params["key_id"])
    if key_id is None:
        raise NotFound("API key not found")
    return key_id


_KEY_FIELDS = frozenset({"label", "permissions", "allowed_ips"})


def _key_fields(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - _KEY_FIELDS)
    if unknown:
        raise BadRequest(
            f"Unknown field(s): {', '.join(unknown)} (use label, permissions, allowed_ips)"
        )
    return body


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


ENDPOINTS: list[tuple[str, Handler, list[str]]] = [
    ("/apiv1/keys", list_keys, ["GET"]),
    ("/apiv1/keys", create_key, ["POST"]),
    ("/apiv1/keys/{key_id}", update_key, ["PATCH"]),
    ("/apiv1/keys/{key_id}", revoke_key, ["DELETE"]),
    ("/apiv1/upload", drive.upload, ["POST"]),
    ("/apiv1/download/{file_id}", drive.download, ["GET", "HEAD"]),
    ("/apiv1/files", drive.list_folder, ["GET"]),
    ("/apiv1/files/{folder_id}", drive.list_folder, ["GET"]),
    ("/apiv1/files/{file_id}/properties", drive.properties, ["GET"]),
    ("/apiv1/files/{file_id}", drive.trash_file, ["DELETE"]),
    ("/apiv1/folders", drive.create_folder, ["POST"]),
    ("/apiv1/folders/{folder_id}", drive.trash_folder, ["DELETE"]),
    ("/apiv1/search", drive.search, ["GET"]),
    ("/apiv1/trash", drive.list_trash, ["GET"]),
    ("/apiv1/trash/empty", drive.empty_trash, ["DELETE"]),
    ("/apiv1/trash/{item_id}/restore", drive.restore, ["POST"]),
    ("/apiv1/trash/{item_id}", drive.delete_from_trash, ["DELETE"]),
]


def routes() -> list[Route]:
    shaped = guard(apiv1)
    return [
        *(Route(path, shaped(handler), methods=methods) for path, handler, methods in ENDPOINTS),
        Route("/apiv1/openapi.json", openapi, methods=["GET"]),
    ]
