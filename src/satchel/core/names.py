"""File names from clients, reduced to a safe base name."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_filename(raw: str, fallback: str = "file") -> str:
    name = _CONTROL.sub("", unicodedata.normalize("NFC", raw))
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = name.lstrip(".").strip() if set(name) <= {"."} else name
    if not name or name in {".", ".."}:
        return fallback
    return _cap_length(name)


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
