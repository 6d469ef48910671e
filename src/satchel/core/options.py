"""Upload and management options, parsed from form fields into plain values."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from satchel.core.expiry import parse_expiry
from satchel.core.ids import parse_number
from satchel.errors import BadRequest

_TRUE = {"true", "1", "on", "yes"}
_FALSE = {"false", "0", "off", "no", ""}
MAX_PASSWORD_LENGTH = 1024
E2E_FORMAT = "v1"  # e2e=v1: the modern format of docs/e2e-format.md


def parse_flag(value: str, field: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadRequest(f"Invalid {field} value: use true or false")


def parse_max_downloads(value: str) -> int | None:
    """0 or empty removes the limit."""
    text = value.strip()
    if not text:
        return None
    try:
        number = int(text)
    except ValueError:
        raise BadRequest("Invalid max_downloads: must be a whole number") from None
    if number < 0 or number > 1_000_000_000:
        raise BadRequest("Invalid max_downloads: must be 0 (no limit) or a positive number")
    return number or None


def parse_e2e_bytes(value: str, field: str, length: int) -> bytes:
    """Comma-separated decimal bytes or base64, of exactly ``length`` bytes."""
    text = value.strip()
    if not text:
        raise BadRequest(f"{field} is required when e2e=true")
    raw = _decimal_bytes(text) if "," in text or text.isdigit() else _base64_bytes(text)
    if raw is None:
        raise BadRequest(f"Invalid {field}: use base64 or comma-separated decimal bytes")
    if len(raw) != length:
        raise BadRequest(f"Invalid {field}: must be {length} bytes, got {len(raw)}")
    return raw


def _decimal_bytes(text: str) -> bytes | None:
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        return None
    if any(n < 0 or n > 255 for n in numbers):
        return None
    return bytes(numbers)


def _base64_bytes(text: str) -> bytes | None:
    try:
        return base64.b64decode(
            text + "=" * (-len(text) % 4), altchars=_altchars(text), validate=True
        )
    except (binascii.Error, ValueError):
        return None


def _altchars(text: str) -> bytes | None:
    return b"-_" if ("-" in text or "_" in text) else None


def parse_password(value: str) -> str | None:
    if len(value) > MAX_PASSWORD_LENGTH:
        raise BadRequest(f"Password too long (at most {MAX_PASSWORD_LENGTH} characters)")
    return value or None


@dataclass(frozen=True)
class UploadOptions:
    is_temp: bool = True
    folder_id: int | None = None
    short_url: bool = False
    public: bool = True
    password: str | None = None
    max_downloads: int | None = None
    expires: timedelta | None = None
    expires_given: bool = False
    e2e: bool = False
    e2e_salt: bytes | None = None
    e2e_iv: bytes | None = None
    e2e_format: str | None = None  # "v1": docs/e2e-format.md, its parameters in the body

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], max_expiry: int) -> UploadOptions:
        e2e_text = fields.get("e2e", "false").strip().lower()
        modern = e2e_text == E2E_FORMAT
        e2e = modern or parse_flag(e2e_text, "e2e")
        legacy = e2e and not modern
        expires_text = fields.get("expires", "").strip()
        is_temp = parse_flag(fields.get("is_temp", "true"), "is_temp")
        # Shared uploads are public unless asked otherwise; drive files private.
        public_default = "true" if is_temp else "false"
        return cls(
            is_temp=is_temp,
            folder_id=_parse_folder_id(fields.get("folder_id", "")),
            short_url=parse_flag(fields.get("short_url", "false"), "short_url"),
            public=parse_flag(fields.get("public", public_default), "public"),
            password=parse_password(fields.get("password", "")),
            max_downloads=parse_max_downloads(fields.get("max_downloads", "")),
            expires=parse_expiry(expires_text, max_expiry) if expires_text else None,
            expires_given=bool(expires_text),
            e2e=e2e,
            e2e_salt=parse_e2e_bytes(fields.get("e2e_salt", ""), "e2e_salt", 16)
            if legacy
            else None,
            e2e_iv=parse_e2e_bytes(fields.get("e2e_iv", ""), "e2e_iv", 12) if legacy else None,
            e2e_format=E2E_FORMAT if modern else None,
        )


def options_so_far(fields: Mapping[str, str], max_expiry: int) -> UploadOptions:
    """The options sent before the first file: every one present is checked now, so that a bad
    value is refused before a large body is read. E2E is checked once salt and IV are both in."""
    present = dict(fields)
    modern = present.get("e2e", "").strip().lower() == E2E_FORMAT
    if not modern and not (present.get("e2e_salt") and present.get("e2e_iv")):
        present["e2e"] = "false"
    return UploadOptions.from_fields(present, max_expiry)


def _parse_folder_id(value: str) -> int | None:
    text = value.strip()
    if not text or text in {"0", "null"}:
        return None
    number = parse_number(text)
    if number is None:
        raise BadRequest("Invalid folder_id: must be a number")
    return number


@dataclass(frozen=True)
class ManageChanges:
    """Only the fields that were sent; absent fields stay unchanged."""

    public: bool | None = None
    password: str | None = None
    password_given: bool = False
    expires: timedelta | None = None
    expires_given: bool = False
    max_downloads: int | None = None
    max_downloads_given: bool = False

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], max_expiry: int) -> ManageChanges:
        public = fields.get("public")
        if public is None and fields.get("_form"):
            public = "off"  # the HTML form sends no field for an unticked checkbox
        expires = fields.get("expires")
        max_downloads = fields.get("max_downloads")
        password = fields.get("password")
        if fields.get("_form") and not password:
            # In the HTML form an empty password box means "leave it"; removal is a checkbox.
            password = "" if fields.get("remove_password") else None
        return cls(
            public=None if public is None else parse_flag(public, "public"),
            password=None if password is None else parse_password(password),
            password_given=password is not None,
            expires=parse_expiry(expires, max_expiry) if expires else None,
            expires_given=bool(expires),
            max_downloads=parse_max_downloads(max_downloads) if max_downloads is not None else None,
            max_downloads_given=max_downloads is not None,
        )
