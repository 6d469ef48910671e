"""What the client hands back: plain frozen values, easy to print or turn into JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class UploadResult:
    """One link the server made. ``link`` is the download URL, with ``#k=…`` (the key, never
    sent to the server) or ``#p`` (ask for the password) for an E2E file; ``share_link`` is the
    file's share page (``/d/{uuid}``, which decrypts in the browser), with the same fragment."""

    name: str
    size: int
    link: str
    download_url: str
    manage_url: str
    delete_url: str
    short_url: str | None = None
    short_link: str | None = None
    expires_at: str | None = None
    e2e: bool = False
    files: int = 1
    drive_file_id: int | None = None
    share_url: str | None = None
    share_link: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["raw"]
        return data


@dataclass(frozen=True)
class Listing:
    """A folder's (or a search's, or the trash's) folders and files, every page of them."""

    folder: dict[str, Any] | None
    folders: list[dict[str, Any]]
    files: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"folder": self.folder, "folders": self.folders, "files": self.files}
