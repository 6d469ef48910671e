"""The client's errors, each with the exit code the CLI gives it (docs/cli.md)."""

from __future__ import annotations

from typing import Any

import httpx

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_REFUSED = 2
EXIT_SERVER = 3
EXIT_INTEGRITY = 4
EXIT_INTERRUPTED = 130


class ClientError(Exception):
    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(ClientError):
    """Bad options or configuration, a missing local file."""


class ServerRefused(ClientError):
    """The server answered 4xx; ``status`` is that code, the message the server's own."""

    exit_code = EXIT_REFUSED

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status
        self.detail = message


class PasswordNeeded(ServerRefused):
    """The file needs a password (from the server, or to decrypt it) and none was given."""

    def __init__(self, message: str = "This file needs a password: pass --password") -> None:
        super().__init__(401, message)


class ServerFailed(ClientError):
    """The server answered 5xx, or could not be reached."""

    exit_code = EXIT_SERVER


class IntegrityFailed(ClientError):
    """Bytes that do not check out: a short transfer, a wrong key, an altered E2E file."""

    exit_code = EXIT_INTEGRITY


def error_message(response: httpx.Response) -> str:
    """The server's ``{"error": …}`` (or /api/v2's ``response``), else the reason phrase."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.reason_phrase or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        for field in ("error", "response"):
            if isinstance(body.get(field), str):
                return str(body[field])
    return response.reason_phrase or f"HTTP {response.status_code}"


def raise_for_status(response: httpx.Response) -> None:
    """Reads the body of a streamed error answer, then raises the matching client error."""
    if response.status_code < 400:
        return
    response.read()
    message = error_message(response)
    if response.status_code >= 500:
        raise ServerFailed(f"{message} (HTTP {response.status_code})")
    raise ServerRefused(response.status_code, message)


def network_error(exc: httpx.HTTPError, url: str) -> ServerFailed:
    return ServerFailed(f"cannot reach {strip_secret(url)}: {exc.__class__.__name__}: {exc}")


def strip_secret(url: str) -> str:
    """A URL fit to print: no fragment (an E2E key), no query (a ``?pw=``)."""
    return url.split("#", 1)[0].split("?", 1)[0]
