"""Small helpers shared by the API tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient


def upload(
    client: TestClient, content: bytes = b"hello satchel", name: str = "hello.txt", **fields: Any
) -> Any:
    response = client.post("/upload", files={"files": (name, content, "text/plain")}, data=fields)
    assert response.status_code == 200, response.text
    return response.json()


def token_of(result: dict[str, Any]) -> str:
    return str(result["redirect"]).rsplit("/", 1)[1]


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


ALL_PERMISSIONS = ("read", "download", "write", "delete", "restore", "manage_keys")


def user_key(client: TestClient, name: str, *permissions: str) -> str:
    """A user called ``name`` (created when missing) and a new key with ``permissions``
    (all six when none are named)."""
    from satchel.core.accounts import NewUser

    state = client.app.state.satchel  # type: ignore[attr-defined]
    user = state.accounts.find(name) or state.accounts.create_user(NewUser(name, "password1"))
    granted = dict.fromkeys(permissions or ALL_PERMISSIONS, True)
    secret: str = state.apikeys.create(user, "tests", granted, []).secret
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def api_upload(
    client: TestClient, key: str, *files: tuple[str, bytes], folder_id: int | None = None
) -> list[dict[str, Any]]:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    data = {"folder_id": str(folder_id)} if folder_id is not None else {}
    response = client.post("/apiv1/upload", files=parts, data=data, headers=bearer(key))
    assert response.status_code == 201, response.text
    uploaded: list[dict[str, Any]] = response.json()["files"]
    return uploaded


def make_folder(client: TestClient, key: str, name: str, parent_id: int | None = None) -> int:
    body: dict[str, Any] = {"name": name}
    if parent_id is not None:
        body["parent_id"] = parent_id
    response = client.post("/apiv1/folders", json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    folder_id: int = response.json()["id"]
    return folder_id


def log_in(client: TestClient, name: str) -> str:
    """Gives ``client`` what a browser showing one of our pages has for user ``name`` (created
    when missing): the session cookie, the CSRF cookie, and that token sent as X-CSRF-Token
    with every request (as the page's scripts do). Returns the token."""
    from satchel.core.accounts import NewUser
    from satchel.web.csrf import CSRF_COOKIE, new_csrf_token
    from satchel.web.state import SESSION_COOKIE

    state = client.app.state.satchel  # type: ignore[attr-defined]
    user = state.accounts.find(name) or state.accounts.create_user(NewUser(name, "password1"))
    # The domain a response's cookie gets for http://testserver, so that one replaces the other.
    client.cookies.set(
        SESSION_COOKIE, state.sessions.create(user, "127.0.0.1"), domain="testserver.local"
    )
    token = new_csrf_token()
    client.cookies.set(CSRF_COOKIE, token, domain="testserver.local")
    client.headers["X-CSRF-Token"] = token
    return token


def open_fds(path: Path) -> int:
    """How many of this process's descriptors are open on `path` (other threads' files don't count)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:  # closed between the listing and the look
            continue
    return count
