"""Server-rendered pages (Jinja2, autoescaped)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

_env = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_size(count: int) -> str:
    """Bytes as every page and script shows them (upload.js formatBytes alike): binary
    multiples, as the limits are set (1 GB = 1024³ bytes, so a 1 GiB limit reads "1 GB", not
    more than it allows), one decimal below 10 and none for a whole number: 87 B, 1.5 KB,
    15 KB, 5 GB."""
    value, unit = float(count), 0
    while value >= 1024 and unit < len(UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{count} B"
    shown = f"{value:.1f}".removesuffix(".0") if value < 10 else f"{value:.0f}"
    return f"{shown} {UNITS[unit]}"


_env.filters["size"] = human_size


STATIC = "/static/"


def page_csp(nonce: str, origin: str) -> str:
    """Scripts and styles only from Satchel's own static folder (a path no upload can take:
    downloads share the origin, and 'self' alone would admit ``<script src=/f/…>``), and those
    the page names with this response's nonce. Previews are framed or shown from the same
    origin, where their answers are sandboxed themselves. The service worker's own imports
    (e2e.js) are checked against worker-src by Chromium, so that one file is named too."""
    static = f"{origin}{STATIC}"
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}' {static}js/; "
        f"style-src 'nonce-{nonce}' {static}; img-src 'self' data: blob:; media-src 'self'; "
        f"frame-src 'self'; worker-src {origin}/sw.js {static}js/e2e.js; "
        "connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; "
        "manifest-src 'self'"
    )


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    body = _env.get_template(template).render(request=request, csp_nonce=nonce, **context)
    origin = origin_of(request.app.state.satchel.settings.public_url)
    all_headers = {
        "Content-Security-Policy": page_csp(nonce, origin),
        "Cache-Control": "no-store",
        **(headers or {}),
    }
    return HTMLResponse(body, status_code=status, headers=all_headers)
