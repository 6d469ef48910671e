"""Server-rendered pages (Jinja2, autoescaped)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

_env = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def page_csp(nonce: str) -> str:
    """Scripts and styles only with this response's nonce: never an uploaded file, although
    downloads share the origin ('self' alone would admit ``<script src=/f/…>``)."""
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    body = _env.get_template(template).render(request=request, csp_nonce=nonce, **context)
    all_headers = {
        "Content-Security-Policy": page_csp(nonce),
        "Cache-Control": "no-store",
        **(headers or {}),
    }
    return HTMLResponse(body, status_code=status, headers=all_headers)
