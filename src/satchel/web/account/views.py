"""What the account page shows: sizes people read, the usage meter, the key list, and the
ready-made integrations of a key (a ShareX uploader, curl lines)."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from satchel.core.packages import Package
from satchel.db.models import ApiKey
from satchel.web.templates import human_size

# What each permission of core.apikeys.PERMISSIONS opens, as the key form says it.
PERMISSION_HELP = {
    "read": "list, search, file details",
    "download": "download files",
    "write": "upload, new folders",
    "delete": "to the trash, for good",
    "restore": "out of the trash",
    "manage_keys": "make and revoke keys",
}
# What the curl lines show when the secret is not known (not a key: too short to be one).
SECRET_PLACEHOLDER = "sat_YOUR_KEY"  # noqa: S105


@dataclass(frozen=True)
class Usage:
    used: int
    quota: int  # 0: unlimited

    @property
    def label(self) -> str:
        if not self.quota:
            return f"{human_size(self.used)} used (no limit)"
        return f"{human_size(self.used)} of {human_size(self.quota)}"

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.used / self.quota)) if self.quota else 0


def package_limits(package: Package) -> list[tuple[str, str]]:
    """The package's limits as the account page lists them (0 in the settings: unlimited)."""
    return [
        ("Largest upload", _size(package.max_upload_size)),
        ("Storage", _size(package.max_storage_bytes)),
        ("Uploads at once", _count(package.concurrent_uploads)),
        ("Downloads at once", _count(package.concurrent_downloads)),
        ("Downloads per 24 hours", _count(package.downloads_per_24_hours)),
        ("Download volume per 24 hours", _size(package.download_size_per_24_hours)),
        (
            "Download speed",
            f"{human_size(package.download_speed)}/s" if package.download_speed else "unlimited",
        ),
        ("Remote download URLs", _count(package.max_remote_download_urls)),
        ("Inactive files kept for", _days(package.days_to_keep_inactive_files)),
    ]


def _size(value: int) -> str:
    return human_size(value) if value else "unlimited"


def _count(value: int) -> str:
    return str(value) if value else "unlimited"


def _days(value: int) -> str:
    if not value:
        return "forever"
    return f"{value} day{'s' if value != 1 else ''}"


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def key_row(key: ApiKey) -> dict[str, Any]:
    """A key as the list shows it: never its secret (Satchel does not have it)."""
    return {
        "id": key.id,
        "label": key.label,
        "hint": key.hint,
        "granted": [name for name, on in key.permissions.items() if on],
        "allowed_ips": key.allowed_ips,
        "created": when(key.created_at),
        "created_iso": key.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "last_used": when(key.last_used_at),
        "last_used_ip": key.last_used_ip,
    }


def sharex_uploader(public_url: str, secret: str, label: str) -> str:
    """A ShareX custom uploader (.sxcu): files go to the drive through ``/upload`` with the key,
    made public, and ShareX copies the answer's download link."""
    host = public_url.split("://", 1)[-1].rstrip("/")
    config = {
        "Version": "16.1.0",
        "Name": f"Satchel {host}" + (f" ({label})" if label else ""),
        "DestinationType": "ImageUploader, TextUploader, FileUploader",
        "RequestMethod": "POST",
        "RequestURL": f"{public_url}/upload",
        "Headers": {"Authorization": f"Bearer {secret}"},
        "Body": "MultipartFormData",
        "Arguments": {"is_temp": "false", "public": "true"},
        "FileFormName": "files",
        "URL": "{json:download_url}",
        "DeletionURL": "{json:delete_url}",
        "ErrorMessage": "{json:error}",
    }
    return json.dumps(config, indent=2)


def sharex_filename(public_url: str) -> str:
    host = public_url.split("://", 1)[-1].split("/", 1)[0].replace(":", "-")
    return f"satchel-{host}.sxcu"


def curl_upload(public_url: str, secret: str = SECRET_PLACEHOLDER) -> str:
    bearer = shlex.quote(f"Authorization: Bearer {secret}")
    return (
        f"curl -H {bearer} -F is_temp=false -F public=true -F files=@photo.png {public_url}/upload"
    )


def curl_list(public_url: str, secret: str = SECRET_PLACEHOLDER) -> str:
    bearer = shlex.quote(f"Authorization: Bearer {secret}")
    return f"curl -H {bearer} {public_url}/apiv1/files"


def permission_choices(names: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(name, PERMISSION_HELP.get(name, "")) for name in names]
