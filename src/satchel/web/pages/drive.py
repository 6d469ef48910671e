"""``/drive``: the cloud drive in the browser."""

from __future__ import annotations

from satchel.web.errors import Handler

PAGES: list[tuple[str, Handler, list[str]]] = []
