"""Expiry choices (``30m``, ``6h``, ``1d``, ``never`` …)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from satchel.errors import BadRequest

NEVER = "never"
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_expiry(value: str, max_seconds: int) -> timedelta | None:
    """A duration, or None for ``never``; anything else is a 400."""
    text = value.strip().lower()
    if text == NEVER:
        return None
    match = re.fullmatch(r"(\d{1,6})([mhd])", text)
    if not match:
        raise BadRequest("Invalid expires value: use 30m, 6h, 1d, 3d, 7d or never")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise BadRequest("Invalid expires value: must be positive")
    if seconds > max_seconds:
        raise BadRequest(
            f"Invalid expires value: at most {max_seconds // 86400}d for temporary uploads"
        )
    return timedelta(seconds=seconds)


def expiry_time(now: datetime, duration: timedelta | None) -> datetime | None:
    return None if duration is None else now + duration
