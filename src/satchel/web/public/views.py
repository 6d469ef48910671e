"""How a stored file is shown to clients of the public API."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from satchel.db.models import StoredFile
from satchel.web.state import AppState


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def download_url(state: AppState, record: StoredFile) -> str:
    return state.url(f"/f/{record.uuid}/{quote(record.name, safe='')}")


def short_url(state: AppState, record: StoredFile) -> str | None:
    return state.url(f"/s/{record.short_code}") if record.short_code else None


def upload_result(
    state: AppState, record: StoredFile, token: str, file_count: int
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "redirect": f"/manage/{token}",
        "download_url": download_url(state, record),
        "share_url": state.url(f"/d/{record.uuid}"),
    }
    if record.short_code:
        result["short_url"] = short_url(state, record)
    result.update(
        {
            "manage_url": state.url(f"/manage/{token}"),
            "delete_url": state.url(f"/delete/{token}"),
            "file_id": record.uuid,
            "name": record.name,
            "size": record.size,
            "files": file_count,
            "expires_at": iso(record.expires_at),
            "e2e": record.is_e2e,
        }
    )
    if record.is_e2e:
        result["encrypted_url"] = state.url(f"/f/{record.uuid}/encrypted")
    if not record.is_temp:
        result["drive_file_id"] = record.id  # the id /apiv1 knows it by
    return result


def manage_info(state: AppState, record: StoredFile, token: str) -> dict[str, Any]:
    return {
        "name": record.name,
        "size": record.size,
        "content_type": record.content_type,
        "download_url": download_url(state, record),
        "short_url": short_url(state, record),
        "share_url": state.url(f"/d/{record.uuid}"),
        "public": record.is_public,
        "has_password": record.password_hash is not None,
        "expires_at": iso(record.expires_at),
        "max_downloads": record.max_downloads,
        "downloads": state.files.downloads_of(record),
        "e2e": record.is_e2e,
        "created_at": iso(record.created_at),
        "manage_url": state.url(f"/manage/{token}"),
        "delete_url": state.url(f"/delete/{token}"),
    }


def decimal_bytes(data: bytes | None) -> str:
    return ",".join(str(b) for b in data or b"")
