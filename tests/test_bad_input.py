"""Bad input as a user would send it: a clear error, and nothing left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from satchel.config import Settings

BOUNDARY = "----satcheltest"


def leftovers(settings: Settings) -> list[Path]:
    store = settings.data_path / "store"
    return [p for p in store.rglob("*") if p.is_file()] if store.exists() else []


def multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        body += (
            f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    return body + f"--{BOUNDARY}--\r\n".encode()


def post_raw(client: TestClient, body: bytes, content_type: str | None = None, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/upload",
        content=body,
        headers={
            "Content-Type": content_type or f"multipart/form-data; boundary={BOUNDARY}",
            **headers,
        },
    )


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", None, "No files"),
        (b"hello", "text/plain", "No files"),
        (multipart(("note", None, b"just a field")), None, "No files"),
        (multipart(("files", "", b"")), None, "No files"),
        (b"--wrong\r\nnonsense", None, "Malformed multipart"),
        (multipart(("upload_file", "a.txt", b"x")), None, "Unexpected file field"),
    ],
)
def test_rejected_bodies(
    client: TestClient, settings: Settings, body: bytes, content_type: str | None, message: str
) -> None:
    response = post_raw(client, body, content_type)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert leftovers(settings) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"expires": "forever"}, "Invalid expires"),
        ({"expires": "30d"}, "Invalid expires"),
        ({"expires": "never"}, "never"),
        ({"max_downloads": "-1"}, "max_downloads"),
        ({"max_downloads": "lots"}, "max_downloads"),
        ({"e2e": "true"}, "e2e_salt"),
        ({"e2e": "true", "e2e_salt": "AAAA", "e2e_iv": "AAAAAAAAAAAAAAAA"}, "16 bytes"),
        ({"e2e": "true", "e2e_salt": ",".join(["1"] * 16), "e2e_iv": "1,2,3"}, "12 bytes"),
        ({"e2e": "true", "e2e_salt": "!!notbase64!!", "e2e_iv": "x"}, "e2e_salt"),
        ({"e2e": "maybe"}, "e2e"),
        ({"folder_id": "abc"}, "folder_id"),
    ],
)
def test_bad_options_leave_nothing(
    client: TestClient, settings: Settings, fields: dict[str, str], message: str
) -> None:
    response = client.post("/upload", files={"files": ("a.txt", os.urandom(2000))}, data=fields)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert leftovers(settings) == []


def test_oversized_body_rejected_from_content_length(
    client: TestClient, settings: Settings
) -> None:
    declared = str(settings.guest_max_upload_size + 2 * 1024 * 1024)
    response = post_raw(client, multipart(("files", "a.txt", b"x")), **{"Content-Length": declared})
    assert response.status_code == 413
    assert response.json() == {
        "error": f"File too large (limit {settings.guest_max_upload_size} bytes)"
    }


def test_oversized_stream_aborted_midway(settings: Settings) -> None:
    from satchel.web.app import create_app

    small = settings.replace(guest_max_upload_size=3 * 1024 * 1024)
    with TestClient(create_app(small, migrate=False, run_jobs=False)) as client:
        # No Content-Length: the limit must hold while streaming.
        def body():  # type: ignore[no-untyped-def]
            yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="a"\r\n\r\n'.encode()
            for _ in range(8):
                yield os.urandom(1024 * 1024)
            yield f"\r\n--{BOUNDARY}--\r\n".encode()

        response = client.post(
            "/upload",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
    assert response.status_code == 413
    assert response.json()["error"] == "File too large"
    assert leftovers(settings) == []


def test_truncated_body_leaves_nothing(client: TestClient, settings: Settings) -> None:
    body = multipart(("files", "a.txt", os.urandom(3 * 1024 * 1024)))
    response = post_raw(client, body[: len(body) // 2])
    assert response.status_code == 400
    assert "Malformed multipart" in response.json()["error"]
    assert leftovers(settings) == []


def test_second_file_over_limit_removes_the_first(settings: Settings) -> None:
    from satchel.web.app import create_app

    small = settings.replace(guest_max_upload_size=2 * 1024 * 1024)
    with TestClient(create_app(small, migrate=False, run_jobs=False)) as client:
        files = [
            ("files", ("a.bin", os.urandom(1024 * 1024))),
            ("files", ("b.bin", os.urandom(1024 * 1024 + 10))),
        ]
        response = client.post("/upload", files=files)
    assert response.status_code == 413
    assert leftovers(settings) == []


def test_e2e_with_several_files_is_refused(client: TestClient, settings: Settings) -> None:
    files = [("files", ("a", b"1")), ("files", ("b", b"2"))]
    data = {"e2e": "true", "e2e_salt": "A" * 22 + "==", "e2e_iv": "B" * 16}
    response = client.post("/upload", files=files, data=data)
    assert response.status_code == 400
    assert "one file" in response.json()["error"]
    assert leftovers(settings) == []


def test_manage_rejects_bad_values(client: TestClient) -> None:
    from tests.helpers import upload

    result = upload(client)
    for data in ({"max_downloads": "-3"}, {"public": "perhaps"}, {"expires": "1y"}):
        response = client.post(result["redirect"], data=data)
        assert response.status_code == 400, data
        assert "error" in response.json()
    too_big = client.post(
        result["redirect"], content=b"x" * 70_000, headers={"Content-Type": "text/plain"}
    )
    assert too_big.status_code == 413


def test_upload_whose_temp_file_was_swept_gets_a_clear_error(settings: Settings) -> None:
    from datetime import timedelta

    from satchel.errors import RequestTimeout
    from satchel.storage import open_store
    from satchel.web.multipart import UploadIngest

    store = open_store("local", settings.data_path)
    ingest = UploadIngest(store, BOUNDARY, -1, 1 << 30)
    body = multipart(("files", "a.bin", os.urandom(3000)))
    ingest.feed(body[:-100])
    assert store.sweep_temp(timedelta(seconds=-1)) == 1  # as if it had been idle for hours
    ingest.feed(body[-100:])
    with pytest.raises(RequestTimeout):
        ingest.finish()
    ingest.abort()
    assert leftovers(settings) == []
