"""``/admin``: users, packages, invites, uploads and figures, for admins."""

from __future__ import annotations

from satchel.web.errors import Handler

PAGES: list[tuple[str, Handler, list[str]]] = []
