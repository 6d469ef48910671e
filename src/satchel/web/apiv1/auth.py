"""API-key authentication, rate limiting and JSON bodies for every ``/apiv1`` endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

from satchel.core.actors import Member
from satchel.web.http import json_object, read_body
from satchel.web.state import AppState

MAX_JSON_BYTES = 64 * 1024


async def authenticate(request: Request, permission: str) -> Member:
    """The key's user, or the 401/403 that says why not; then the per-user rate limit."""
    state: AppState = request.app.state.satchel
    ip = state.client_ip(request)
    header = request.headers.get("authorization")
    user, key = await asyncio.to_thread(state.apikeys.authenticate, header, ip, permission)
    request.state.api_key = key
    actor = Member(ip=ip, user=user)
    await state.limiter.hit("apiv1", actor)
    return actor


async def json_body(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_JSON_BYTES, "Request body too large")
    return json_object(body or b"{}")
