"""Shared folder pages, the public folder search, stats pages, delete confirmations, the
owner's page of a drive file and /api/v2 key pairs from the account page and the CLI."""

from __future__ import annotations

import hashlib
import re
import time

import pytest
from starlette.testclient import TestClient
from tests.helpers import api_upload, bearer, log_in, path_of, token_of, upload, user_key

from satchel.cli import main
from satchel.config import Settings
from satchel.core.access import FOLDER_ACCESS_LIFETIME
from satchel.core.accounts import NewUser
from satchel.core.drive.folders import FolderSharing
from satchel.db.models import Folder, FolderVisibility
from satchel.web.state import SESSION_COOKIE, AppState

BROWSER = {"Accept": "text/html,application/xhtml+xml", "User-Agent": "Mozilla/5.0"}
NO_TOKEN = {"X-CSRF-Token": ""}  # log_in() sends the token with every request; not these
PRIVATE, UNLISTED, PUBLIC = 0, 1, 2


def state_of(client: TestClient) -> AppState:
    state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
    return state


def log_out(client: TestClient) -> None:
    client.cookies.delete(SESSION_COOKIE)


def user_id(client: TestClient, name: str) -> int:
    user = state_of(client).accounts.find(name)
    assert user is not None
    return user.id


def shared(
    client: TestClient,
    owner: str,
    name: str,
    is_public: int,
    password: str | None = None,
    parent: Folder | None = None,
) -> Folder:
    md5 = hashlib.md5(password.encode(), usedforsecurity=False).hexdigest() if password else None
    return state_of(client).folders.create(
        user_id(client, owner),
        name,
        parent.id if parent else None,
        FolderSharing(FolderVisibility(is_public), md5),
    )


def page_url(folder: Folder) -> str:
    return f"/folder/{folder.share_code}/{folder.name.replace(' ', '_')}"


def csrf_from(client: TestClient, path: str) -> str:
    """Opens a page with a form (which sets the CSRF cookie) and returns its token."""
    page = client.get(path, headers=BROWSER)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


# -- shared folders ---------------------------------------------------------------------


def test_public_folder_page_lists_files_and_links_shared_subfolders(client: TestClient) -> None:
    key = user_key(client, "alice")
    folder = shared(client, "alice", "Holiday photos", PUBLIC)
    shared(client, "alice", "Shared child", UNLISTED, parent=folder)
    shared(client, "alice", "Secret child", PRIVATE, parent=folder)
    [uploaded] = api_upload(client, key, ("beach.jpg", b"sand" * 100), folder_id=folder.id)

    page = client.get(page_url(folder), headers=BROWSER)
    assert page.status_code == 200
    assert "beach.jpg" in page.text
    assert "400 B" in page.text
    assert re.search(
        r'<a href="http://testserver/folder/\w+/Shared_child"><svg[^>]*>.*?</svg>Shared child</a>',
        page.text,
    )
    assert "Secret child" in page.text
    assert "Secret_child" not in page.text  # named, not linked

    listing = client.get(f"/folder/{folder.share_code}").json()
    assert listing["name"] == "Holiday photos"
    assert [f["name"] for f in listing["files"]] == ["beach.jpg"]
    assert [(f["name"], f["url"] is not None) for f in listing["folders"]] == [
        ("Secret child", False),
        ("Shared child", True),
    ]
    download = client.get(path_of(listing["files"][0]["url"]))
    assert download.status_code == 200
    assert download.content == b"sand" * 100
    assert client.get(f"/folder/{folder.share_code}").json()["files"][0]["downloads"] == 1
    assert uploaded["name"] == "beach.jpg"


def test_unlisted_folder_opens_by_link_but_is_not_in_the_search(client: TestClient) -> None:
    user_key(client, "alice")
    unlisted = shared(client, "alice", "reports unlisted", UNLISTED)
    listed = shared(client, "alice", "reports public", PUBLIC)
    shared(client, "alice", "reports private", PRIVATE)
    assert client.get(page_url(unlisted), headers=BROWSER).status_code == 200

    found = client.get("/folders", params={"q": "reports"}).json()["folders"]
    assert [f["name"] for f in found] == ["reports public"]
    assert found[0]["url"] == f"http://testserver{page_url(listed)}"
    everything = client.get("/folders").json()["folders"]
    assert [f["name"] for f in everything] == ["reports public"]
    html = client.get("/folders?q=REPORTS", headers=BROWSER).text
    assert "reports public" in html
    assert "unlisted" not in html
    assert "reports private" not in html


def test_private_folder_is_not_found_except_for_its_owner(client: TestClient) -> None:
    user_key(client, "alice")
    folder = shared(client, "alice", "mine", PRIVATE)
    assert client.get(page_url(folder), headers=BROWSER).status_code == 404
    log_in(client, "bob")
    assert client.get(page_url(folder)).status_code == 404
    log_in(client, "alice")
    assert client.get(page_url(folder), headers=BROWSER).status_code == 200


def test_trashed_folder_and_unknown_code_are_not_found(client: TestClient) -> None:
    user_key(client, "alice")
    folder = shared(client, "alice", "old", PUBLIC)
    state_of(client).trash.trash_folder(user_id(client, "alice"), folder.id)
    assert client.get(page_url(folder)).status_code == 404
    assert client.get("/folder/nosuchcode").status_code == 404
    assert client.get("/folder/bad-code!/x").status_code == 404


def test_password_protected_folder(client: TestClient) -> None:
    key = user_key(client, "alice")
    folder = shared(client, "alice", "vault", PUBLIC, password="open sesame")
    content = bytes(range(256)) * 5000  # over 1 MiB: streamed
    [uploaded] = api_upload(client, key, ("data.bin", content), folder_id=folder.id)
    file_path = f"/folder/{folder.share_code}/file/{uploaded['id']}"

    form = client.get(page_url(folder), headers=BROWSER)
    assert form.status_code == 401
    assert 'name="password"' in form.text
    assert "data.bin" not in form.text
    assert client.get(page_url(folder)).status_code == 401
    assert client.get(file_path).status_code == 401
    assert client.get(file_path, headers=BROWSER, follow_redirects=False).status_code == 303

    token = csrf_from(client, page_url(folder))
    wrong = client.post(
        page_url(folder), data={"password": "nope", "csrf_token": token}, headers=BROWSER
    )
    assert wrong.status_code == 403
    assert "Wrong password" in wrong.text
    assert 'name="password"' in wrong.text
    no_csrf = client.post(page_url(folder), data={"password": "open sesame"}, headers=BROWSER)
    assert no_csrf.status_code == 403
    assert "satchel_folder" not in client.cookies

    right = client.post(
        page_url(folder),
        data={"password": "open sesame", "csrf_token": token},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert right.status_code == 303
    assert right.headers["location"] == page_url(folder)
    cookie = right.headers["set-cookie"]
    assert f"Path=/folder/{folder.share_code}" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert f"Max-Age={FOLDER_ACCESS_LIFETIME}" in cookie
    keys = state_of(client).files.keys
    until, _, mac = client.cookies["satchel_folder"].partition(".")
    assert abs(int(until) - time.time() - FOLDER_ACCESS_LIFETIME) < 60
    claim = f"{folder.share_code}:{folder.access_password_hash}:{until}".encode()
    assert keys.verify(b"folder-access", claim, mac)
    # Not computable from what the database holds alone.
    naive = hashlib.sha256(b"folder:" + claim).hexdigest()
    assert mac != naive

    page = client.get(page_url(folder), headers=BROWSER)
    assert page.status_code == 200
    assert "data.bin" in page.text
    download = client.get(file_path)
    assert download.status_code == 200
    assert download.content == content


def test_access_cookie_of_another_folder_does_not_open_it(client: TestClient) -> None:
    user_key(client, "alice")
    first = shared(client, "alice", "first", UNLISTED, password="same")
    second = shared(client, "alice", "second", UNLISTED, password="same")
    token = csrf_from(client, page_url(first))
    client.post(page_url(first), data={"password": "same", "csrf_token": token})
    assert client.get(page_url(first)).status_code == 200
    first_key = client.cookies["satchel_folder"]
    client.cookies.clear()
    assert (
        client.get(page_url(second), headers={"Cookie": f"satchel_folder={first_key}"}).status_code
        == 401
    )
    assert (
        client.get(page_url(first), headers={"Cookie": f"satchel_folder={first_key}"}).status_code
        == 200
    )
    assert (
        client.get(page_url(first), headers={"Cookie": "satchel_folder=" + "0" * 64}).status_code
        == 401
    )


def test_folder_access_cookie_ends_after_its_lifetime(client: TestClient) -> None:
    user_key(client, "alice")
    folder = shared(client, "alice", "dated", UNLISTED, password="pw")
    token = csrf_from(client, page_url(folder))
    client.post(page_url(folder), data={"password": "pw", "csrf_token": token})
    value = client.cookies["satchel_folder"]
    client.cookies.clear()

    def opens(cookie: str) -> int:
        return client.get(
            page_url(folder), headers={"Cookie": f"satchel_folder={cookie}"}
        ).status_code

    assert opens(value) == 200
    until, _, mac = value.partition(".")
    # Signed with its end: a later end, or none, is not accepted.
    assert opens(f"{int(until) + 86400}.{mac}") == 401
    assert opens(mac) == 401
    keys = state_of(client).files.keys
    past = int(time.time()) - 1
    claim = f"{folder.share_code}:{folder.access_password_hash}:{past}".encode()
    assert opens(f"{past}.{keys.sign(b'folder-access', claim)}") == 401
    later = int(time.time()) + 60
    claim = f"{folder.share_code}:{folder.access_password_hash}:{later}".encode()
    assert opens(f"{later}.{keys.sign(b'folder-access', claim)}") == 200


def test_folder_download_only_serves_live_files_directly_in_that_folder(
    client: TestClient,
) -> None:
    key = user_key(client, "alice")
    folder = shared(client, "alice", "open", PUBLIC)
    other = shared(client, "alice", "other", PUBLIC)
    inner = shared(client, "alice", "inner", PUBLIC, parent=folder)
    [outside] = api_upload(client, key, ("outside.txt", b"x"), folder_id=other.id)
    [at_root] = api_upload(client, key, ("root.txt", b"x"))
    [nested] = api_upload(client, key, ("nested.txt", b"x"), folder_id=inner.id)
    [inside] = api_upload(client, key, ("inside.txt", b"in"), folder_id=folder.id)
    base = f"/folder/{folder.share_code}/file"
    for record in (outside, at_root, nested):
        assert client.get(f"{base}/{record['id']}").status_code == 404
    assert client.get(f"{base}/99999999999999999999").status_code == 404
    assert client.get(f"{base}/{inside['id']}").content == b"in"
    assert client.delete(f"/apiv1/files/{inside['id']}", headers=bearer(key)).status_code == 200
    assert client.get(f"{base}/{inside['id']}").status_code == 404


def test_folder_pages_come_in_pages_of_one_hundred(client: TestClient) -> None:
    key = user_key(client, "alice")
    folder = shared(client, "alice", "many", PUBLIC)
    api_upload(client, key, *[(f"f{n:03}.txt", b"x") for n in range(101)], folder_id=folder.id)
    first = client.get(page_url(folder)).json()
    assert len(first["files"]) == 100
    assert first["next_cursor"]
    html = client.get(page_url(folder), headers=BROWSER).text
    assert "?cursor=" in html
    rest = client.get(page_url(folder), params={"cursor": first["next_cursor"]}).json()
    assert [f["name"] for f in rest["files"]] == ["f100.txt"]
    assert rest["next_cursor"] is None


# -- stats and delete confirmation ------------------------------------------------------


def test_stats_page(client: TestClient) -> None:
    result = upload(client, b"twelve bytes", "notes.txt")
    stats_path = f"/stats/{result['file_id']}"
    stats = client.get(stats_path).json()
    assert set(stats) == {"name", "size", "downloads", "created_at", "last_download_at"}
    assert (stats["name"], stats["size"], stats["downloads"]) == ("notes.txt", 12, 0)
    client.get(path_of(result["download_url"]))
    assert client.get(stats_path).json()["downloads"] == 1
    page = client.get(stats_path, headers=BROWSER)
    assert page.status_code == 200
    assert "notes.txt" in page.text
    assert client.get("/stats/3f1d8f5e-7c3b-4d2a-9b6e-0a1b2c3d4e5f").status_code == 404
    assert client.get("/stats/not-a-uuid").status_code == 404


def test_stats_of_a_used_up_file_is_not_found(client: TestClient) -> None:
    result = upload(client, b"once", "once.txt", max_downloads="1")
    assert client.get(f"/stats/{result['file_id']}").status_code == 200
    assert client.get(path_of(result["download_url"])).content == b"once"
    assert client.get(f"/stats/{result['file_id']}").status_code == 404


def test_stats_of_a_trashed_file_is_not_found(client: TestClient) -> None:
    key = user_key(client, "alice")
    [record] = api_upload(client, key, ("gone.txt", b"x"))
    uuid = state_of(client).drive_files.get(user_id(client, "alice"), record["id"]).uuid
    log_in(client, "alice")  # a drive file is private: its stats are its owner's
    assert client.get(f"/stats/{uuid}").status_code == 200
    client.delete(f"/apiv1/files/{record['id']}", headers=bearer(key))
    assert client.get(f"/stats/{uuid}").status_code == 404


def test_delete_link_asks_before_deleting(client: TestClient) -> None:
    result = upload(client, b"keep me", "precious.txt")
    token = token_of(result)
    page = client.get(f"/delete/{token}", headers=BROWSER)
    assert page.status_code == 200
    assert "Delete precious.txt?" in page.text
    assert f'<form method="post" action="/delete/{token}" class="actions">' in page.text
    assert 'name="csrf_token"' in page.text
    assert client.get(f"/delete/{token}").json() == {
        "name": "precious.txt",
        "confirm": "POST this URL to delete the file",
    }
    assert client.get(path_of(result["download_url"])).content == b"keep me"

    assert client.post(f"/delete/{token}").json() == {"success": True}
    assert client.get(path_of(result["download_url"])).status_code == 404
    assert client.get(f"/delete/{token}").status_code == 404
    assert client.get("/delete/unknown-token", headers=BROWSER).status_code == 404


# -- the owner's page of a drive file ---------------------------------------------------


def test_drive_file_page_is_for_its_owner_only(client: TestClient) -> None:
    key = user_key(client, "alice")
    [record] = api_upload(client, key, ("plan.txt", b"the plan"))
    path = f"/drive/file/{record['id']}"

    anonymous = client.get(path, headers=BROWSER, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/login?next={path}"
    assert client.get(path).status_code == 401

    log_in(client, "bob")
    assert client.get(path, headers=BROWSER).status_code == 404
    assert client.get(f"{path}/delete", headers=BROWSER).status_code == 404

    log_in(client, "alice")
    page = client.get(path, headers=BROWSER)
    assert page.status_code == 200
    assert "plan.txt" in page.text
    assert f'href="http://testserver{path}/delete"' in page.text
    details = client.get(path).json()
    assert details["name"] == "plan.txt"
    assert client.get(path_of(details["download_url"])).content == b"the plan"
    assert client.get(path_of(details["stats_url"])).status_code == 200
    assert client.get("/drive/file/99999").status_code == 404
    assert client.get("/drive/file/abc").status_code == 404


def test_drive_file_delete_page_trashes_with_csrf_only(client: TestClient) -> None:
    key = user_key(client, "alice")
    [record] = api_upload(client, key, ("old.txt", b"old"))
    path = f"/drive/file/{record['id']}/delete"
    log_in(client, "alice")

    token = csrf_from(client, path)
    refused = client.post(path, headers=BROWSER | NO_TOKEN, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get(f"/drive/file/{record['id']}").status_code == 200

    bobs = log_in(client, "bob")
    other = client.post(path, data={"csrf_token": bobs}, headers=BROWSER)
    assert other.status_code == 404
    token = log_in(client, "alice")

    done = client.post(path, data={"csrf_token": token}, headers=BROWSER, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/account"
    assert client.get(f"/drive/file/{record['id']}").status_code == 404
    trash = client.get("/apiv1/trash", headers=bearer(key)).json()
    assert [f["name"] for f in trash["files"]] == ["old.txt"]


# -- /api/v2 key pairs ------------------------------------------------------------------


def authorize(client: TestClient, key1: str, key2: str) -> str:
    answer = client.post("/api/v2/authorize", data={"key1": key1, "key2": key2}).json()
    status: str = answer["_status"]
    return status


def test_account_page_makes_a_v2_key_pair_and_shows_key2_once(client: TestClient) -> None:
    log_in(client, "alice")
    page = client.get("/account", headers=BROWSER)
    assert "/api/v2 keys" in page.text
    assert "No /api/v2 key pair yet" in page.text
    token = csrf_from(client, "/account")
    assert client.post("/account/v2-keys", headers=BROWSER | NO_TOKEN).status_code == 403

    made = client.post("/account/v2-keys", data={"csrf_token": token}, headers=BROWSER)
    assert made.status_code == 200
    key1 = re.search(r'class="api-v2-key1">([0-9a-f]{64})<', made.text)
    key2 = re.search(r'class="api-v2-key2">([0-9a-f]{64})<', made.text)
    assert key1
    assert key2
    assert "no longer works" in made.text
    assert authorize(client, key1.group(1), key2.group(1)) == "success"

    later = client.get("/account", headers=BROWSER).text
    assert key1.group(1) in later
    assert key2.group(1) not in later
    assert client.get("/account").json()["api_v2_key1"] == key1.group(1)

    again = client.post("/account/v2-keys", data={"csrf_token": token}).json()
    assert authorize(client, again["key1"], again["key2"]) == "success"
    assert authorize(client, key1.group(1), key2.group(1)) == "error"


def test_cli_creates_a_v2_key_pair(
    client: TestClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state_of(client).accounts.create_user(NewUser("carol", "password1"))
    monkeypatch.setenv("SATCHEL_DATA_DIR", str(settings.data_path))
    monkeypatch.setenv("SATCHEL_DATABASE_URL", settings.sqlalchemy_url)
    assert main(["admin", "create-v2-keys", "carol"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    key1, key2 = last.split(" ")
    assert re.fullmatch(r"[0-9a-f]{64}", key1)
    assert re.fullmatch(r"[0-9a-f]{64}", key2)
    assert authorize(client, key1, key2) == "success"
    assert main(["admin", "create-v2-keys", "nobody"]) == 1
