"""Small helpers shared by the API tests."""

from __future__ import annotations

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
