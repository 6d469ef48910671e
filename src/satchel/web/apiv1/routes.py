"""``/apiv1``: the cloud-drive REST API for scoped API keys (SPEC §5)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from satchel.core.apikeys import KeyChanges, parse_allowed_ips, parse_permissions
from satchel.core.ids import parse_number
from satchel.db.models import ApiKey, User
from satchel.errors import BadRequest, Forbidden, NotFound
from satchel.web.apiv1 import drive
from satchel.web.apiv1.auth import authenticate, json_body
from satchel.web.apiv1.openapi import openapi
from satchel.web.apiv1.views import key_json
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
    within_caller(request.state.api_key, permissions, allowed_ips)
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
    within_caller(
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
    actor = await authenticate(request, "manage_keys")
    assert actor.user is not None
    return actor.user


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


def within_caller(
    caller: ApiKey, permissions: Mapping[str, Any], allowed_ips: Sequence[Any] | None
) -> None:
    """A key can hand out no more than it holds: no permission it lacks, and, when it is
    itself bound to addresses, no key usable from outside them."""
    permissions = parse_permissions(permissions)  # unknown names and non-booleans: 400
    extra = sorted(
        name
        for name, value in permissions.items()
        if value is True and not caller.permissions.get(name)
    )
    if extra:
        raise Forbidden(f"A key can only grant permissions it has itself (not {', '.join(extra)})")
    if not caller.allowed_ips or allowed_ips is None:
        return
    mine = [ipaddress.ip_network(entry) for entry in caller.allowed_ips]
    if not allowed_ips:
        raise Forbidden("This key is bound to addresses: a key it creates needs an allow-list too")
    for entry in parse_allowed_ips(allowed_ips):
        network = ipaddress.ip_network(entry)
        if not any(network.subnet_of(own) for own in mine if own.version == network.version):  # type: ignore[arg-type]
            raise Forbidden(f"{entry} is outside this key's own allow-list")


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
        Route("/apiv1/upload", drive.upload, methods=["POST"]),
        Route("/apiv1/download/{file_id}", drive.download, methods=["GET", "HEAD"]),
        Route("/apiv1/files", drive.list_folder, methods=["GET"]),
        Route("/apiv1/files/{folder_id}", drive.list_folder, methods=["GET"]),
        Route("/apiv1/files/{file_id}/properties", drive.properties, methods=["GET"]),
        Route("/apiv1/files/{file_id}", drive.trash_file, methods=["DELETE"]),
        Route("/apiv1/folders", drive.create_folder, methods=["POST"]),
        Route("/apiv1/folders/{folder_id}", drive.trash_folder, methods=["DELETE"]),
        Route("/apiv1/search", drive.search, methods=["GET"]),
        Route("/apiv1/trash", drive.list_trash, methods=["GET"]),
        Route("/apiv1/trash/empty", drive.empty_trash, methods=["DELETE"]),
        Route("/apiv1/trash/{item_id}/restore", drive.restore, methods=["POST"]),
        Route("/apiv1/trash/{item_id}", drive.delete_from_trash, methods=["DELETE"]),
        Route("/apiv1/openapi.json", openapi, methods=["GET"]),
    ]
