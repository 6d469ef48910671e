"""File names from clients, reduced to a safe base name."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 200
_MIME_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)
DEFAULT_TYPE = "application/octet-stream"


def _printable(text: str) -> str:
    # Control (Cc) and format (Cf) characters: NUL, C1 controls, bidirectional overrides
    # that make "a\u202etxt.exe" look like "aexe.txt", zero-width characters.
    return "".join(c for c in text if unicodedata.category(c) not in {"Cc", "Cf"})


def safe_content_type(raw: str | None) -> str:
    """A client's type only when it is a plain ``type/subtype`` token (it is sent back as a header)."""
    return raw.lower() if raw and _MIME_TYPE.fullmatch(raw) else DEFAULT_TYPE


def safe_filename(raw: str, fallback: str = "file") -> str:
    name = _printable(unicodedata.normalize("NFC", raw))
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = name.lstrip(".").strip() if set(name) <= {"."} else name
    if not name or name in {".", ".."}:
        return fallback
    return _cap_length(name)


MAX_FOLDER_DEPTH = 16


def safe_member_path(raw: str) -> str:
    """A path inside the ZIP of several files (a folder picked in a browser sends
    ``photos/2024/a.jpg``): every part a safe name; no root, no ``..``, at most 16 parts."""
    parts = raw.replace("\\", "/").split("/")
    kept = [safe_filename(part, "") for part in parts if part.strip() not in {"", ".", ".."}]
    return "/".join([part for part in kept if part][-MAX_FOLDER_DEPTH:]) or "file"


def _cap_length(name: str) -> str:
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode()) > 20:
        stem, ext = name, ""
    budget = MAX_NAME_BYTES - len(ext.encode()) - (1 if ext else 0)
    stem = stem.encode()[:budget].decode(errors="ignore")
    return f"{stem}.{ext}" if ext else stem


def numbered(name: str, number: int) -> str:
    """``a.txt`` → ``a (2).txt``: how a name clash is resolved everywhere."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return f"{name} ({number})"
    return f"{stem} ({number}).{ext}"


def make_unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate.lower() in taken:
        number += 1
        candidate = numbered(name, number)
    taken.add(candidate.lower())
    return candidate
