"""Random identifiers: nothing public is sequential or guessable."""

from __future__ import annotations

import hashlib
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
