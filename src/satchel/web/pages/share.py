"""The share page of a file (``/d/{uuid}``) and its previews."""

from __future__ import annotations

from satchel.web.errors import Handler

PAGES: list[tuple[str, Handler, list[str]]] = []
