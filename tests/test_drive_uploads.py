"""Logged-in uploads through /upload, package limits and quotas, and claiming guest uploads."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from tests.helpers import bearer, log_in, make_folder, token_of, upload, user_key

from satchel.config import Settings, load_settings
from satchel.core.actors import Guest
from satchel.db.models import UploadSlot
from satchel.errors import RateLimited
from satchel.web.app import create_app
from satchel.web.state import AppState


def drive_names(client: TestClient, key: str, folder: int | None = None) -> list[str]:
    path = f"/apiv1/files/{folder}" if folder else "/apiv1/files"
    return [f["name"] for f in client.get(path, headers=bearer(key)).json()["files"]]


def test_guests_cannot_upload_into_a_drive(client: TestClient) -> None:
    response = client.post("/upload", files={"files": ("a.txt", b"a")}, data={"is_temp": "false"})
    assert response.status_code == 401
    assert "Login required" in response.json()["error"]


def test_api_key_upload_into_a_folder_never_expires(client: TestClient) -> None:
    key = user_key(client, "alice")
    folder = make_folder(client, key, "photos")
    response = client.post(
        "/upload",
        files={"files": ("pic.jpg", b"drive bytes", "image/jpeg")},
        data={"is_temp": "false", "folder_id": str(folder)},
        headers=bearer(key),
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["expires_at"] is None
    # A drive file is private unless asked otherwise, and the answer gives its drive id.
    assert client.get(result["download_url"]).status_code == 403
    props = client.get(
        f"/apiv1/files/{result['drive_file_id']}/properties", headers=bearer(key)
    ).json()
    assert props["public"] is False
    assert props["name"] == "pic.jpg"
    assert drive_names(client, key, folder) == ["pic.jpg"]
    # expires=never is allowed on the owner's drive file, refused on guest uploads.
    token = token_of(result)
    managed = client.post(f"/manage/{token}", data={"expires": "never"}, headers=bearer(key))
    assert managed.status_code == 200, managed.text
    # The owner's key (read / delete) also shows and deletes it; no key at all does not.
    assert client.get(f"/manage/{token}").status_code == 403
    assert client.get(f"/manage/{token}", headers=bearer(key)).json()["expires_at"] is None
    assert client.post(f"/delete/{token}", headers=bearer(key)).status_code == 200
    assert drive_names(client, key, folder) == []
    guest = upload(client)
    refused = client.post(f"/manage/{token_of(guest)}", data={"expires": "never"})
    assert refused.status_code == 400


def test_a_key_without_write_cannot_upload(client: TestClient) -> None:
    key = user_key(client, "alice", "read")
    response = client.post(
        "/upload", files={"files": ("a.txt", b"a")}, data={"is_temp": "false"}, headers=bearer(key)
    )
    assert response.status_code == 403
    assert response.json() == {"error": "This API key lacks the 'write' permission"}


def test_session_upload_and_owner_only_management(client: TestClient) -> None:
    key = user_key(client, "alice", "read")
    log_in(client, "alice")
    result = upload(client, b"mine", "mine.txt", is_temp="false")
    assert drive_names(client, key) == ["mine.txt"]
    token = token_of(result)
    assert client.get(f"/manage/{token}").status_code == 200
    # Somebody else holding the token: a drive file is managed only by its owner.
    log_in(client, "mallory")
    assert client.get(f"/manage/{token}").status_code == 403
    assert client.post(f"/delete/{token}").status_code == 403
    client.cookies.clear()
    assert client.get(f"/manage/{token}").status_code == 403


def test_a_session_change_needs_the_pages_csrf_token(client: TestClient) -> None:
    """Another site can make a browser post with its session cookie but cannot read the CSRF
    cookie: uploads, settings and deletion by session need the token; API keys need none."""
    log_in(client, "alice")
    token = token_of(upload(client, b"mine", "mine.txt", is_temp="false"))
    del client.headers["X-CSRF-Token"]
    refused = client.post("/upload", files={"files": ("b.txt", b"b")}, data={"is_temp": "false"})
    assert refused.status_code == 403
    assert refused.json() == {"error": "CSRF token missing or wrong"}
    assert client.post(f"/manage/{token}", data={"max_downloads": "3"}).status_code == 403
    assert client.post(f"/delete/{token}").status_code == 403
    wrong = {"csrf_token": "not-the-cookie"}
    assert client.post(f"/delete/{token}", data=wrong).status_code == 403
    good = {"csrf_token": client.cookies["satchel_csrf"]}
    assert client.post(f"/delete/{token}", data=good).status_code == 200
    key = user_key(client, "alice", "write")
    client.cookies.clear()
    assert upload_with_key(client, key).status_code == 200


def upload_with_key(client: TestClient, key: str) -> httpx.Response:
    return client.post("/upload", files={"files": ("k.txt", b"k")}, headers=bearer(key))


def test_upload_into_a_missing_or_foreign_folder(client: TestClient) -> None:
    alice = user_key(client, "alice")
    bob = user_key(client, "bob")
    folder = make_folder(client, alice, "hers")
    for key, folder_id in ((bob, folder), (alice, 9999)):
        response = client.post(
            "/upload",
            files={"files": ("a.txt", b"a")},
            data={"is_temp": "false", "folder_id": str(folder_id)},
            headers=bearer(key),
        )
        assert response.status_code == 404
        assert response.json() == {"error": "Folder not found"}


@pytest.fixture
def small_package(settings: Settings) -> Iterator[TestClient]:
    limited = load_settings(
        environ={},
        overrides={
            **settings.values,
            "packages": {"free": {"max_upload_size": "4KiB", "max_storage_bytes": "6KiB"}},
        },
    )
    with TestClient(create_app(limited, migrate=False, run_jobs=False)) as test_client:
        yield test_client


def test_package_size_limit_gives_413(small_package: TestClient) -> None:
    key = user_key(small_package, "alice")
    response = small_package.post(
        "/apiv1/upload", files={"file": ("big.bin", b"x" * 5000)}, headers=bearer(key)
    )
    assert response.status_code == 413
    state: AppState = small_package.app.state.satchel  # type: ignore[attr-defined]
    assert list(state.files.store.iter_blobs()) == []
    assert drive_names(small_package, key) == []


def test_storage_quota_gives_507_and_leaves_nothing(small_package: TestClient) -> None:
    state: AppState = small_package.app.state.satchel  # type: ignore[attr-defined]
    key = user_key(small_package, "alice")
    first = small_package.post(
        "/apiv1/upload", files={"file": ("a.bin", b"a" * 4000)}, headers=bearer(key)
    )
    assert first.status_code == 201
    second = small_package.post(
        "/apiv1/upload",
        files=[("files", ("b.bin", b"b" * 1500)), ("files", ("c.bin", b"c" * 1500))],
        headers=bearer(key),
    )
    assert second.status_code == 507
    assert "quota" in second.json()["error"]
    assert drive_names(small_package, key) == ["a.bin"]
    assert len(list(state.files.store.iter_blobs())) == 1
    # The trash still counts; emptying it frees the space.
    small_package.delete(f"/apiv1/files/{first.json()['files'][0]['id']}", headers=bearer(key))
    again = small_package.post(
        "/apiv1/upload", files={"file": ("b.bin", b"b" * 3000)}, headers=bearer(key)
    )
    assert again.status_code == 507
    small_package.delete("/apiv1/trash/empty", headers=bearer(key))
    assert (
        small_package.post(
            "/apiv1/upload", files={"file": ("b.bin", b"b" * 3000)}, headers=bearer(key)
        ).status_code
        == 201
    )
    # Guests are not held to a user quota, only to their own size limit.
    assert small_package.post("/upload", files={"files": ("g.txt", b"g" * 5000)}).status_code == 200


def test_concurrent_upload_slots(settings: Settings) -> None:
    capped = load_settings(
        environ={}, overrides={**settings.values, "packages": {"guest": {"concurrent_uploads": 3}}}
    )
    state = create_app(capped, migrate=False, run_jobs=False).state.satchel
    guest = Guest(ip="192.0.2.1")
    limit = state.uploads.package(guest).concurrent_uploads
    assert limit == 3
    slot = state.uploads.slot
    try:
        with slot(guest), slot(guest), slot(guest):
            with pytest.raises(RateLimited), slot(guest):
                pass
            with slot(Guest(ip="192.0.2.2")):  # someone else is not held up
                pass
        with slot(guest):  # the slots were given back
            pass
        with state.db.read() as session:
            assert session.scalars(select(UploadSlot.id)).all() == []
    finally:
        state.db.dispose()  # no lifespan ran: its connections are closed here


def test_claim_a_guest_upload(client: TestClient) -> None:
    key = user_key(client, "alice", "read")
    guest = upload(client, b"found it", "claim-me.txt")
    token = token_of(guest)
    assert guest["expires_at"] is not None
    anonymous = client.post(f"/manage/{token}", data={"claim": "1"})
    assert anonymous.status_code == 403
    assert anonymous.json() == {"error": "Log in to claim an upload into your drive"}
    log_in(client, "alice")
    page = client.get(f"/manage/{token}", headers={"Accept": "text/html"})
    assert "Keep it in my drive" in page.text
    csrf = client.cookies["satchel_csrf"]
    assert f'name="csrf_token" value="{csrf}"' in page.text
    forged = client.post(f"/manage/{token}", data={"claim": "1"}, headers={"X-CSRF-Token": ""})
    assert forged.status_code == 403
    assert forged.json() == {"error": "CSRF token missing or wrong"}
    claimed = client.post(f"/manage/{token}", data={"claim": "1", "csrf_token": csrf})
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["claimed"] is True
    assert claimed.json()["expires_at"] is None
    assert drive_names(client, key) == ["claim-me.txt"]
    again = client.post(f"/manage/{token}", data={"claim": "1", "csrf_token": csrf})
    assert again.status_code == 409
    # Now it is a drive file: only Alice manages it.
    log_in(client, "bob")
    assert client.get(f"/manage/{token}").status_code == 403
    stolen = client.post(f"/manage/{token}", data={"claim": "1", "csrf_token": csrf})
    assert stolen.status_code == 403


def test_claim_renames_on_clash_and_by_api_key(client: TestClient) -> None:
    key = user_key(client, "alice")
    client.post("/apiv1/upload", files={"file": ("same.txt", b"1")}, headers=bearer(key))
    token = token_of(upload(client, b"2", "same.txt"))
    claimed = client.post(f"/manage/{token}", data={"claim": "true"}, headers=bearer(key))
    assert claimed.status_code == 200
    assert drive_names(client, key) == ["same (2).txt", "same.txt"]
