"""Packages (account levels) and their limits, as `account/package` shows them; 0 = unlimited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from satchel.units import parse_size

GIB = 1 << 30


@dataclass(frozen=True)
class Package:
    name: str
    id: int
    label: str
    level_type: str
    max_upload_size: int
    max_storage_bytes: int = 0
    downloads_per_24_hours: int = 0
    download_size_per_24_hours: int = 0
    concurrent_uploads: int = 0
    concurrent_downloads: int = 0
    wait_between_downloads: int = 0
    download_speed: int = 0
    max_download_filesize_allowed: int = 0
    max_remote_download_urls: int = 0
    days_to_keep_inactive_files: int = 0
    can_upload: bool = True

    def upload_limit(self, cap: int) -> int:
        """Largest upload: the package's limit (0 = none), never above the server's ``cap``."""
        return min(self.max_upload_size, cap) if self.max_upload_size else cap


DEFAULT_PACKAGES: dict[str, Package] = {
    # Guests: max_upload_size always follows SATCHEL_GUEST_MAX_UPLOAD_SIZE.
    # Guests are held back by the per-address rate limits; concurrent_uploads can cap them too.
    "guest": Package("guest", 0, "Guest", "non-user", 1 * GIB),
    "free": Package(
        "free", 1, "Free Account", "free user", 5 * GIB,
        max_storage_bytes=50 * GIB, concurrent_uploads=10, max_remote_download_urls=5,
    ),
    "premium": Package(
        "premium", 2, "Premium Account", "paid user", 5 * GIB,
        max_storage_bytes=0, concurrent_uploads=100, max_remote_download_urls=50,
    ),
    "admin": Package("admin", 3, "Admin Account", "admin", 0, max_remote_download_urls=0),
}  # fmt: skip
DEFAULT_PACKAGE = "free"
_LIMIT_FIELDS = {f.name for f in fields(Package)} - {"name"}


def parse_packages(value: Any) -> dict[str, Package]:
    """The defaults, changed or extended by a TOML table ``[satchel.packages.<name>]``."""
    packages = dict(DEFAULT_PACKAGES)
    if isinstance(value, Mapping):
        for name, changes in value.items():
            packages[str(name)] = _package(str(name), changes, packages.get(str(name)))
    elif value not in (None, "", {}):
        raise ValueError("packages are set in the TOML file, as [satchel.packages.<name>] tables")
    return packages


def _package(name: str, changes: Any, base: Package | None) -> Package:
    if isinstance(changes, Package):
        return changes
    if not isinstance(changes, Mapping):
        raise ValueError(f"package {name!r}: expected a table of limits")
    unknown = sorted(set(changes) - _LIMIT_FIELDS)
    if unknown:
        raise ValueError(f"package {name!r}: unknown field(s) {', '.join(unknown)}")
    if base is None:
        base = Package(name, 100 + len(name), name.title(), "paid user", 5 * GIB)
    values = {key: _limit(name, key, raw, getattr(base, key)) for key, raw in changes.items()}
    return replace(base, name=name, **values)


def _limit(package: str, key: str, raw: Any, current: Any) -> Any:
    if isinstance(current, bool):
        if not isinstance(raw, bool):
            raise ValueError(f"package {package!r}: {key} must be true or false")
        return raw
    if isinstance(current, str):
        return str(raw)
    number = parse_size(raw) if key.endswith(("size", "bytes", "allowed")) else int(raw)
    if number < 0:
        raise ValueError(f"package {package!r}: {key} must not be negative")
    return number
