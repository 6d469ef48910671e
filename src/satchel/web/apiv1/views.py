"""The JSON shapes of ``/apiv1``: one for files, folders and keys wherever they appear."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from satchel.core.drive.listing import Page
from satchel.db.models import ApiKey, Folder, StoredFile
from satchel.web.public.views import download_url, iso, short_url
from satchel.web.state import AppState


def file_json(state: AppState, record: StoredFile) -> dict[str, Any]:
    return {
        "id": record.id,
        "type": "file",
        "name": record.name,
        "size": record.size,
        "content_type": record.content_type,
        "folder_id": record.folder_id,
        "public": record.is_public,
        "has_password": record.password_hash is not None,
        "e2e": record.is_e2e,
        "downloads": state.files.downloads_of(record),
        "max_downloads": record.max_downloads,
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at),
        "download_url": download_url(state, record),
        "short_url": short_url(state, record),
        **_trash_fields(state, record.trashed_at, record.trashed_with),
    }


def folder_json(state: AppState, folder: Folder) -> dict[str, Any]:
    return {
        "id": folder.id,
        "type": "folder",
        "name": folder.name,
        "parent_id": folder.parent_id,
        "created_at": iso(folder.created_at),
        **_trash_fields(state, folder.trashed_at, folder.trashed_with),
    }


def _trash_fields(
    state: AppState, trashed_at: datetime | None, trashed_with: int | None
) -> dict[str, Any]:
    if trashed_at is None:
        return {}
    retention = timedelta(seconds=state.settings.trash_retention)
    return {
        "trashed_at": iso(trashed_at),
        "purge_at": iso(trashed_at + retention),
        "trashed_with_folder_id": trashed_with,
    }


def page_json(state: AppState, page: Page) -> dict[str, Any]:
    return {
        "folders": [folder_json(state, folder) for folder in page.folders],
        "files": [file_json(state, record) for record in page.files],
        "next_cursor": page.next_cursor,
    }


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "label": key.label,
        "hint": key.hint,
        "permissions": key.permissions,
        "allowed_ips": key.allowed_ips,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "last_used_ip": key.last_used_ip,
    }
