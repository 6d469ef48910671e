"""HTTP helpers shared by every surface: client address, content negotiation, headers."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, quote

from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header
from starlette.requests import Request

from satchel.core.downloads import ByteRange
from satchel.core.ids import parse_number
from satchel.errors import BadRequest, TooLarge

_CLI_AGENTS = re.compile(
    r"^(curl|wget|python-requests|python-httpx|python-urllib|httpie|aria2|axel|libwww-perl|"
    r"go-http-client|okhttp|powershell|satchel|fetch|lwp|java)",
    re.IGNORECASE,
)
MAX_FORM_BYTES = 64 * 1024


def client_ip(
    request: Request, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str:
    """The peer address; X-Forwarded-For only when the peer is a configured proxy."""
    peer = request.client.host if request.client else "0.0.0.0"  # noqa: S104 - a label, not a bind
    if not trusted or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _valid_ip(hop):
            return peer
        if not _in(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _in(address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def wants_html(request: Request) -> bool:
    """A browser navigating (not a script, not an XHR)."""
    if request.headers.get("x-requested-with", "").lower() == "xmlhttprequest":
        return False
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return False
    return "text/html" in accept and not is_cli_client(request)


def is_cli_client(request: Request) -> bool:
    agent = request.headers.get("user-agent", "")
    return (
        not agent
        or bool(_CLI_AGENTS.match(agent))
        or "text/html" not in request.headers.get("accept", "")
    )


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """RFC 6266 with an ASCII fallback and the exact name in RFC 5987 ``filename*``."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in filename)
    encoded = quote(filename, safe="!#$&+-.^_`|~")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def parse_range(header: str | None) -> ByteRange | None:
    """A single ``bytes=`` range; several ranges or bad syntax are ignored (full body)."""
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*", header)
    if not match or not (match.group(1) or match.group(2)):
        return None
    first = int(match.group(1)) if match.group(1) else None
    last = int(match.group(2)) if match.group(2) else None
    if first is not None and last is not None and last < first:
        return None
    return ByteRange(first, last)


async def read_small_form(request: Request, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """Fields of a small urlencoded, multipart (no files) or JSON body."""
    body = await read_body(request, max_bytes, "Form too large")
    return _decode_form(request.headers.get("content-type", ""), body)


async def read_body(request: Request, max_bytes: int, too_large: str) -> bytes:
    """A small request body, refused (413) from its Content-Length or once it passes the limit."""
    declared = request.headers.get("content-length")
    length = parse_number(declared)
    if length is not None and length > max_bytes:
        raise TooLarge(too_large)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise TooLarge(too_large)
    return bytes(body)


def json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        raise BadRequest("Invalid JSON body") from None
    if not isinstance(data, dict):
        raise BadRequest("Expected a JSON object")
    return data


def _decode_form(content_type: str, body: bytes) -> dict[str, str]:
    kind, options = parse_options_header(content_type)
    if not body:
        return {}
    if kind == "application/json":
        return _json_fields(body)
    if kind == "multipart/form-data":
        return _multipart_fields(body, options.get("boundary", ""))
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("Invalid form body") from None


def _json_fields(body: bytes) -> dict[str, str]:
    return {str(k): _json_scalar(v) for k, v in json_object(body).items()}


def _json_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _multipart_fields(body: bytes, boundary: str) -> dict[str, str]:
    if not boundary:
        raise BadRequest("Malformed multipart body: no boundary")
    fields: dict[str, str] = {}
    name, buffer = "", bytearray()
    try:
        with PushMultipartParser(boundary, len(body), max_segment_count=64) as parser:
            for event in parser.parse(body):
                if isinstance(event, MultipartSegment):
                    if event.filename is not None:
                        raise BadRequest("This form takes no files")
                    name, buffer = event.name or "", bytearray()
                elif event is None:
                    fields[name] = buffer.decode("utf-8", errors="replace")
                else:
                    buffer += event
    except MultipartError as exc:
        raise BadRequest(f"Malformed multipart body: {exc}") from None
    return fields
