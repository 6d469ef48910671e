"""The one mapping from Satchel's files and folders to the shapes of /api/v2.

Field names and JSON types follow the reference's samples: ids, sizes and counts are strings
where the samples show strings, integers where they show integers; dates are ``Y-m-d H:i:s``
UTC. Every URL points at a page or link of Satchel that answers.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from satchel.core.drive.folders import FolderStats
from satchel.core.packages import Package
from satchel.db.models import Folder, StoredFile, User
from satchel.web.public.views import download_url
from satchel.web.state import AppState

SITE_NAME = "Satchel"


def ymd(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _id(value: int | None) -> str | None:
    return None if value is None else str(value)


def file_url(state: AppState, record: StoredFile) -> str:
    """The file's short link (given a short code the first time it is needed)."""
    return state.url(f"/s/{state.files.ensure_short_code(record)}")


def _extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


LISTING_FIELDS = (
    "id", "filename", "shortUrl", "fileType", "extension", "fileSize", "status",
    "downloads", "folderId", "keywords", "url_file",
)  # fmt: skip


def file_entry(state: AppState, record: StoredFile) -> dict[str, Any]:
    """A file in ``folder/listing``: the fields of the reference's listing sample."""
    info = file_info(state, record)
    return {name: info[name] for name in LISTING_FIELDS}


def file_info(state: AppState, record: StoredFile) -> dict[str, Any]:
    """``file/info`` and the ``data`` of every answer about one file."""
    return {
        "id": str(record.id),
        "filename": record.name,
        "shortUrl": state.files.ensure_short_code(record),
        "fileType": record.content_type,
        "extension": _extension(record.name),
        "fileSize": str(record.size),
        "uploadedIP": record.uploader_ip or "",
        "uploadedDate": ymd(record.created_at),
        "file_status": "trash" if record.trashed_at is not None else "active",
        "status": "trash" if record.trashed_at is not None else "active",
        "downloads": str(state.files.downloads_of(record)),
        "lastAccessed": ymd(record.last_download_at),
        "folderId": _id(record.folder_id),
        "keywords": "",
        "isPublic": "1" if record.is_public else "0",
        "uploadSource": "api",
        "description": "",
        "url_file": file_url(state, record),
        "url_file_info": state.url(f"/drive/file/{record.id}"),
        "url_file_stats": stats_url(state, record),
        "url_file_delete": state.url(f"/drive/file/{record.id}/delete"),
    }


def stats_url(state: AppState, record: StoredFile) -> str:
    return state.url(f"/stats/{record.uuid}")


def uploaded(state: AppState, record: StoredFile, token: str, md5: str | None) -> dict[str, Any]:
    """One entry of ``file/upload``'s ``data``; ``delete_hash`` is the management token, known
    only now."""
    url = file_url(state, record)
    return {
        "name": record.name,
        "size": str(record.size),
        "type": record.content_type,
        "error": None,
        "url": url,
        # A drive file is managed only by its owner: these are the owner's pages.
        "delete_url": state.url(f"/drive/file/{record.id}/delete"),
        "info_url": state.url(f"/drive/file/{record.id}"),
        "delete_type": "DELETE",
        "delete_hash": token,
        "hash": md5 or "",
        "stats_url": stats_url(state, record),
        "short_url": record.short_code or "",
        "file_id": str(record.id),
        "unique_hash": hashlib.sha256(f"{record.uuid}:{record.blob_key}".encode()).hexdigest(),
        "url_html": (
            f'<a href="{html.escape(url)}" target="_blank" title="View {html.escape(record.name)}'
            f' on {SITE_NAME}">view {html.escape(record.name)} on {SITE_NAME}</a>'
        ),
        "url_bbcode": f"[url]{url}[/url]",
    }


def download_link(state: AppState, record: StoredFile, token: str) -> str:
    return f"{download_url(state, record)}?download_token={token}"


def folder_url(state: AppState, folder: Folder) -> str:
    slug = re.sub(r"\s+", "_", folder.name.strip()) or "folder"
    return state.url(f"/folder/{folder.share_code}/{quote(slug, safe='')}")


# A folder's password is kept only as a salted hash: the MD5 that set it can be echoed in the
# answer of that very request, and after that the field only says that there is one.
MASKED_PASSWORD = "*" * 32


def folder_data(
    state: AppState,
    folder: Folder,
    stats: FolderStats,
    with_password: bool = True,
    sent_md5: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(folder.id),
        "parentId": _id(folder.parent_id),
        "folderName": folder.name,
        "totalSize": str(stats.total_size),
        "isPublic": str(folder.is_public),
    }
    if with_password:
        has_password = folder.access_password_hash is not None
        data["accessPassword"] = (sent_md5 or MASKED_PASSWORD) if has_password else None
    data.update(
        {
            "date_added": ymd(folder.created_at),
            "date_updated": ymd(folder.updated_at),
            "url_folder": folder_url(state, folder),
            "total_downloads": stats.total_downloads,
            "child_folder_count": stats.child_folder_count,
            "file_count": stats.file_count,
        }
    )
    return data


def account_info(user: User, package: Package) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "username": user.username,
        "level_id": str(package.id),
        "email": user.email or "",
        "lastlogindate": ymd(user.last_login_at),
        "lastloginip": user.last_login_ip or "",
        "status": "disabled" if user.is_disabled else "active",
        "title": "",
        "firstname": "",
        "lastname": "",
        "languageId": "1",
        "datecreated": ymd(user.created_at),
        "lastPayment": None,
        "paidExpiryDate": None,
        "storageLimitOverride": None,
    }


def package_data(package: Package) -> dict[str, Any]:
    def number(value: int) -> str:
        return str(value)

    return {
        "id": str(package.id),
        "label": package.label,
        "max_upload_size": number(package.max_upload_size),
        "can_upload": "1" if package.can_upload else "0",
        "wait_between_downloads": number(package.wait_between_downloads),
        "download_speed": number(package.download_speed),
        "max_storage_bytes": number(package.max_storage_bytes),
        "show_site_adverts": "0",
        "show_upgrade_screen": "0",
        "days_to_keep_inactive_files": number(package.days_to_keep_inactive_files),
        "concurrent_uploads": number(package.concurrent_uploads),
        "concurrent_downloads": number(package.concurrent_downloads),
        "downloads_per_24_hours": number(package.downloads_per_24_hours),
        "download_size_per_24_hours": number(package.download_size_per_24_hours),
        "max_download_filesize_allowed": number(package.max_download_filesize_allowed),
        "max_remote_download_urls": number(package.max_remote_download_urls),
        "level_type": package.level_type,
        "on_upgrade_page": "0",
    }
