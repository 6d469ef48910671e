"""``/api/v2`` folder endpoints: create, listing, info, edit, delete, move."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

from satchel.core.drive.folders import FolderChanges, FolderSharing
from satchel.db.models import Folder, User
from satchel.web.apiv2 import shapes
from satchel.web.apiv2.errors import NO_FOLDER, NO_PARENT, V2Error
from satchel.web.apiv2.params import (
    Params,
    destination,
    existing_folder,
    folder_param,
    own_folder,
    password_md5,
    sharing_of,
    visibility,
)
from satchel.web.state import AppState


async def folder_json(
    state: AppState, folder: Folder, with_password: bool = True, sent_md5: str | None = None
) -> dict[str, Any]:
    stats = await asyncio.to_thread(state.folders.stats, folder)
    return shapes.folder_data(state, folder, stats, with_password, sent_md5)


async def folder_create(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    name = params.get("folder_name", "").strip()
    if not name:
        raise V2Error("Please provide the folder_name param.")
    parent = folder_param(params, "parent_id", NO_PARENT)
    await existing_folder(state, user, parent, NO_PARENT)
    sharing = sharing_of(params)
    folder = await asyncio.to_thread(state.folders.create, user.id, name, parent, sharing)
    data = await folder_json(state, folder, sent_md5=sharing.access_password_md5)
    return {"response": "Folder successfully created.", "data": data}


async def folder_listing(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    parent = folder_param(params, "parent_folder_id", NO_FOLDER)
    await existing_folder(state, user, parent, NO_FOLDER)
    page = await asyncio.to_thread(state.listings.everything_in, user.id, parent)
    return {
        "data": {
            "folders": [await folder_json(state, f, with_password=False) for f in page.folders],
            "files": [
                await asyncio.to_thread(shapes.file_entry, state, record) for record in page.files
            ],
        }
    }


async def folder_info(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    return {"data": await folder_json(state, await own_folder(state, user, params))}


async def folder_edit(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    folder = await own_folder(state, user, params)
    parent_given = "parent_id" in params
    parent = folder_param(params, "parent_id", NO_PARENT) if parent_given else None
    if parent_given:
        await existing_folder(state, user, parent, NO_PARENT)
    sharing = _new_sharing(folder, params)
    changes = FolderChanges(
        name=params.get("folder_name", "").strip() or None,
        parent_id=parent,
        parent_given=parent_given,
        visibility=visibility(params["is_public"]) if "is_public" in params else None,
        sharing=sharing,
    )
    edited = await asyncio.to_thread(state.folders.edit, user.id, folder.id, changes)
    sent = sharing.access_password_md5 if sharing is not None else None
    data = await folder_json(state, edited, sent_md5=sent)
    return {"response": "Folder successfully updated.", "data": data}


def _new_sharing(folder: Folder, params: Params) -> FolderSharing | None:
    """Empty removes the password, an MD5 sets it; anything else leaves it as it was."""
    sent = params.get("access_password")
    if sent is None or (sent.strip() and not password_md5(sent)):
        return None
    shown = params.get("is_public")
    return FolderSharing(
        visibility(shown) if shown is not None else visibility(str(folder.is_public)),
        password_md5(sent),
    )


async def folder_delete(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    folder = await own_folder(state, user, params)
    await asyncio.to_thread(state.trash.trash_folder, user.id, folder.id)
    return {"response": "Folder successfully set as deleted."}


async def folder_move(
    request: Request, state: AppState, params: Params, user: User
) -> dict[str, Any]:
    if not params.get("folder_id", "").strip():
        raise V2Error("Please provide the folder_id param.")
    folder = await own_folder(state, user, params)
    target = await destination(state, user, params, "new_parent_folder_id")
    changes = FolderChanges(parent_id=target, parent_given=True)
    moved = await asyncio.to_thread(state.folders.edit, user.id, folder.id, changes)
    return {"response": "Folder successfully moved.", "data": await folder_json(state, moved)}
