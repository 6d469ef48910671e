"""Random identifiers: nothing public is sequential or guessable."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_public_id() -> str:
    return str(uuid.uuid4())


def new_short_code(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def new_manage_token() -> str:
    """192 bits, never starting with "-": a token is typed after commands (``satchel manage
    TOKEN``), where a leading dash would read as an option."""
    while True:
        token = secrets.token_urlsafe(24)
        if not token.startswith("-"):
            return token


def new_blob_key() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """Tokens are stored hashed: a stolen database does not hand out management rights."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4 and len(value) == 36
    except ValueError:
        return False


# Every number a client sends is range-checked before it reaches the database: the largest
# id PostgreSQL's bigint (and SQLite's integer) holds.
MAX_ID = 2**63 - 1
_DECIMAL = re.compile(r"[0-9]{1,19}")


def parse_number(text: str | None, maximum: int = MAX_ID) -> int | None:
    """A decimal number of ASCII digits from 0 to ``maximum``, else None ("²" and "٣" are
    digits to ``str.isdigit`` but not numbers here)."""
    if text is None or not _DECIMAL.fullmatch(text):
        return None
    number = int(text)
    return number if number <= maximum else None


def is_id(value: object) -> bool:
    """An id a client may name: a JSON integer (not a boolean) from 1 to MAX_ID."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID
