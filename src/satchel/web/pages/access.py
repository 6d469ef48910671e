"""Addresses of shared folders, their access cookie's name, and ids in page paths. Who may
open a folder is core.access's to say."""

from __future__ import annotations

import re
from urllib.parse import quote

from satchel.core.ids import parse_number
from satchel.db.models import Folder
from satchel.errors import NotFound

ACCESS_COOKIE = "satchel_folder"


def folder_path(folder: Folder) -> str:
    """``/folder/{code}/{Name_With_Underscores}``: the slug is for people; only the code counts."""
    slug = re.sub(r"\s+", "_", folder.name.strip()) or "folder"
    return f"/folder/{folder.share_code}/{quote(slug, safe='')}"


def cookie_path(folder: Folder) -> str:
    return f"/folder/{folder.share_code}"


def parse_id(text: str, error: type[NotFound]) -> int:
    number = parse_number(text)
    if number is None:
        raise error()
    return number
