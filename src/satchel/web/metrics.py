"""Every request observed: its id (X-Request-ID), its metrics under its route template, its
access line; and /metrics, for the addresses and the token the settings name."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel import observability as obs
from satchel.config import Settings
from satchel.web.state import AppState

log = logging.getLogger("satchel.web")
access_log = logging.getLogger("satchel.access")

UNMATCHED = "(unmatched)"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def route_label(scope: Scope) -> str:
    """The template of the route that took the request, never its path (paths carry file
    ids and management tokens); one label for every request no route took."""
    route = scope.get("route")
    if isinstance(route, Mount):
        return route.path + "/{path}"
    if isinstance(route, BaseRoute):
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
    return UNMATCHED


def method_label(method: str) -> str:
    return method if method in METHODS else "OTHER"


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-ID when it is short and plain, else a new one."""
    for name, value in scope["headers"]:
        if name.lower() == b"x-request-id":
            given: str = value.decode("latin-1").strip()
            if REQUEST_ID.fullmatch(given):
                return given
            break
    return secrets.token_hex(8)


@dataclass
class Exchange:
    """What one request brought and got."""

    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    download: bool = False
    complete: bool = False


class Observe:
    """Plain ASGI wrapper, outermost: every answer gets the request's id, and is counted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        token = obs.request_id.set(rid)
        seen = Exchange()
        started = time.perf_counter()

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen.bytes_in += len(message.get("body", b""))
            return message

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = _started(scope, message, rid, seen)
            elif message["type"] == "http.response.body":
                seen.bytes_out += len(message.get("body", b""))
                seen.complete = not message.get("more_body", False)
            await send(message)

        try:
            await self.app(scope, counted_receive, tagged_send)
        except BaseException:
            seen.status = seen.status or 500
            raise
        finally:
            record(scope, seen, time.perf_counter() - started)
            obs.request_id.reset(token)


def _started(scope: Scope, message: Message, rid: str, seen: Exchange) -> Message:
    seen.status = message["status"]
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
    # A download: a file's body, named for saving (every download surface names it so).
    named = any(k.lower() == b"content-disposition" for k, _ in headers)
    seen.download = scope["method"] == "GET" and seen.status in (200, 206) and named
    return {**message, "headers": [*headers, (b"x-request-id", rid.encode())]}


def record(scope: Scope, seen: Exchange, seconds: float) -> None:
    route, method = route_label(scope), method_label(scope["method"])
    obs.HTTP_REQUESTS.labels(route, method, str(seen.status)).inc()
    obs.HTTP_DURATION.labels(route, method).observe(seconds)
    if seen.bytes_in:
        obs.HTTP_BYTES_IN.labels(route).inc(seen.bytes_in)
    if seen.bytes_out:
        obs.HTTP_BYTES_OUT.labels(route).inc(seen.bytes_out)
    if seen.download and seen.complete:
        obs.download_completed(seen.bytes_out)
    if access_log.isEnabledFor(logging.INFO):
        fields = {
            "method": method,
            "route": route,
            "status": seen.status,
            "duration_ms": round(seconds * 1000, 3),
            "bytes": seen.bytes_out,
            "bytes_in": seen.bytes_in,
        }
        access_log.info("%s %s %s", method, route, seen.status, extra=fields)


# -- /metrics ----------------------------------------------------------------------------


def routes(settings: Settings) -> list[BaseRoute]:
    if not settings.metrics:
        return []
    if not settings.metrics_allow and not settings.metrics_token:
        log.warning("/metrics is open to all: set SATCHEL_METRICS_TOKEN or SATCHEL_METRICS_ALLOW")
    allowed = [ipaddress.ip_network(n) for n in settings.metrics_allow]
    expected = settings.metrics_token.encode()

    async def metrics(request: Request) -> Response:
        state: AppState = request.app.state.satchel
        refused = refusal(request, state, allowed, expected)
        if refused is not None:
            return refused
        body = await asyncio.to_thread(obs.exposition)
        return Response(body, media_type=obs.CONTENT_TYPE)

    return [Route("/metrics", metrics, methods=["GET"])]


def refusal(
    request: Request, state: AppState, allowed: Sequence[Network], expected: bytes
) -> Response | None:
    """403 for an address the allow-list leaves out, 401 without the token; None: go on."""
    if allowed and not _admitted(request, state, allowed):
        return JSONResponse({"error": "Forbidden"}, status_code=403)
    if expected:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            return JSONResponse(
                {"error": "Metrics token required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    return None


def _admitted(request: Request, state: AppState, allowed: Sequence[Network]) -> bool:
    peer = request.client.host if request.client else ""
    forwarded = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    if forwarded and not _within(peer, state.trusted):
        # A proxy that is not trusted: the loopback peer speaks for someone else.
        return False
    return _within(state.client_ip(request), allowed)


def _within(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
