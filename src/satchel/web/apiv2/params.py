"""Parameters of ``/api/v2`` calls: from the query string or the body (urlencoded, multipart
or JSON) on GET and POST alike; the access token; ids, folders and sharing options."""

from __future__ import annotations

import asyncio
import re

from multipart import parse_options_header
from starlette.requests import Request

from satchel.core.actors import Member
from satchel.core.drive.folders import FolderSharing
from satchel.core.ids import parse_number
from satchel.db.models import Folder, FolderVisibility, StoredFile, User
from satchel.errors import FolderNotFound
from satchel.web.apiv2.errors import (
    BAD_TOKEN,
    NO_ACCOUNT,
    NO_FILE,
    NO_FILE_ID,
    NO_FOLDER,
    NO_TOKEN,
    V2Error,
)
from satchel.web.http import read_small_form
from satchel.web.state import AppState

MD5 = re.compile(r"[0-9a-fA-F]{32}")
ROOT_VALUES = {"", "0", "null"}
Params = dict[str, str]


async def params_of(request: Request) -> Params:
    """The query string and the form body, on either method (a GET with a body too)."""
    params = dict(request.query_params)
    kind, _ = parse_options_header(request.headers.get("content-type", ""))
    if kind or request.headers.get("content-length", "0") != "0":
        params.update(await read_small_form(request))
    return params


def token_of(params: Params) -> tuple[str, str]:
    """``access_token`` and ``account_id``, both required."""
    token = params.get("access_token", "")
    if not token:
        raise V2Error(NO_TOKEN)
    account = params.get("account_id", "")
    if not account:
        raise V2Error(NO_ACCOUNT)
    return token, account


def user_for_token(state: AppState, params: Params) -> User:
    """The user of ``access_token`` and ``account_id``, or the reference's messages."""
    user = state.v2auth.user_for_token(*token_of(params))
    if user is None:
        raise V2Error(BAD_TOKEN)
    return user


async def authenticate(state: AppState, params: Params) -> User:
    return await asyncio.to_thread(user_for_token, state, params)


def member(request: Request, state: AppState, user: User) -> Member:
    return Member(ip=state.client_ip(request), user=user)


def id_param(params: Params, name: str, missing: str) -> int:
    text = params.get(name, "").strip()
    if not text:
        raise V2Error(missing)
    number = parse_number(text)
    if number is None:
        raise V2Error(NO_FILE if name == "file_id" else NO_FOLDER)
    return number


def folder_param(params: Params, name: str, not_found: str) -> int | None:
    """Empty, 0 or "null" is the root."""
    text = params.get(name, "").strip()
    if text.lower() in ROOT_VALUES:
        return None
    number = parse_number(text)
    if number is None:
        raise V2Error(not_found)
    return number


def visibility(text: str) -> FolderVisibility:
    """0, 1 or 2; anything else is 0 (private), as the reference has it."""
    value = text.strip()
    return FolderVisibility(int(value)) if value in ("0", "1", "2") else FolderVisibility.PRIVATE


def password_md5(text: str) -> str | None:
    """An MD5 (32 hex digits) is a folder password; anything else is none."""
    value = text.strip()
    return value.lower() if MD5.fullmatch(value) else None


def sharing_of(params: Params) -> FolderSharing:
    return FolderSharing(
        visibility(params.get("is_public", "0")), password_md5(params.get("access_password", ""))
    )


async def own_file(state: AppState, user: User, params: Params) -> StoredFile:
    """The live drive file ``file_id`` names, or the reference's messages."""
    file_id = id_param(params, "file_id", NO_FILE_ID)
    return await asyncio.to_thread(state.drive_files.get, user.id, file_id)


async def own_folder(state: AppState, user: User, params: Params) -> Folder:
    """``folder_id`` (``parent_folder_id`` too: the reference names it so in folder/info)."""
    name = "folder_id" if params.get("folder_id", "").strip() else "parent_folder_id"
    folder_id = id_param(params, name, "Please provide the folder_id param.")
    found = await asyncio.to_thread(state.folders.live, user.id, folder_id)
    assert found is not None
    return found


async def existing_folder(
    state: AppState, user: User, folder_id: int | None, not_found: str
) -> None:
    """``folder_id`` is the root or a live folder of the user; else ``not_found``, the
    message that names the parameter it came from."""
    try:
        await asyncio.to_thread(state.folders.live, user.id, folder_id)
    except FolderNotFound:
        raise V2Error(not_found) from None


async def destination(state: AppState, user: User, params: Params, name: str) -> int | None:
    """The folder a move or copy goes to: ``name`` must be sent; empty, 0 or "null" is the
    root."""
    if name not in params:
        raise V2Error(f"Please provide the {name} param.")
    missing = f"Could not find the destination folder id defined by {name}."
    target = folder_param(params, name, missing)
    await existing_folder(state, user, target, missing)
    return target
