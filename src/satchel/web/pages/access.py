"""Who may open a shared folder: anyone for one shared by link, its owner for a private one,
and, when it has a password, only a browser holding that folder's access cookie."""

from __future__ import annotations

import re
from urllib.parse import quote

from sqlalchemy import select

from satchel.core.drive import FOLDER_NOT_FOUND
from satchel.core.files import Actor
from satchel.core.ids import parse_number
from satchel.core.keyring import MasterKeys
from satchel.db.models import Folder
from satchel.errors import NotFound
from satchel.web.state import AppState

ACCESS_COOKIE = "satchel_folder"
MAX_CODE_LENGTH = 32


def open_folder(state: AppState, code: str, actor: Actor) -> Folder:
    """The folder of ``code`` when it is shared, or private but ``actor`` owns it; else 404."""
    if not code.isalnum() or len(code) > MAX_CODE_LENGTH:
        raise NotFound(FOLDER_NOT_FOUND)
    try:
        return state.drive.shared_folder(code)
    except NotFound:
        if actor.user_id is None:
            raise
    with state.db.read() as session:
        folder_id = session.scalar(select(Folder.id).where(Folder.share_code == code))
    found = state.drive.folder(actor.user_id, folder_id)  # 404 unless a live folder of theirs
    if found is None:
        raise NotFound(FOLDER_NOT_FOUND)
    return found


FOLDER_ACCESS = b"folder-access"


def _claim(folder: Folder) -> bytes:
    return f"{folder.share_code}:{folder.access_password_hash}".encode()


def access_key(keys: MasterKeys, folder: Folder) -> str:
    """The access cookie's value: a MAC under the master keys of the folder and its password's
    hash, so neither a visitor nor a copy of the database can make one up; it changes with
    the password."""
    return keys.sign(FOLDER_ACCESS, _claim(folder))


def may_open(keys: MasterKeys, folder: Folder, actor: Actor, cookie: str | None) -> bool:
    if folder.access_password_hash is None or actor.user_id == folder.owner_id:
        return True
    return (
        cookie is not None
        and len(cookie) == 64
        and keys.verify(FOLDER_ACCESS, _claim(folder), cookie)
    )


def folder_path(folder: Folder) -> str:
    """``/folder/{code}/{Name_With_Underscores}``: the slug is for people; only the code counts."""
    slug = re.sub(r"\s+", "_", folder.name.strip()) or "folder"
    return f"/folder/{folder.share_code}/{quote(slug, safe='')}"


def cookie_path(folder: Folder) -> str:
    return f"/folder/{folder.share_code}"


def parse_id(text: str, message: str) -> int:
    number = parse_number(text)
    if number is None:
        raise NotFound(message)
    return number
