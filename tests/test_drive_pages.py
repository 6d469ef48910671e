"""The drive in the browser (/drive): listing, sorting and paging, every form (with and without
its CSRF token), other users' folders, errors shown on the page, search, trash, and the file
and folder pages with their sharing settings."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
from starlette.testclient import TestClient
from tests.helpers import api_upload, log_in, make_folder, user_key

from satchel.core.drive.listing import Cursor, parse_order
from satchel.db.models import FolderVisibility
from satchel.errors import BadRequest
from satchel.web.pages import drive
from satchel.web.state import AppState

BROWSER = {"Accept": "text/html,application/xhtml+xml", "User-Agent": "Mozilla/5.0"}
XSS = "<img src=x onerror=alert(1)>"


def state_of(client: TestClient) -> AppState:
    state: AppState = client.app.state.satchel
    return state


def uid(client: TestClient, name: str) -> int:
    user = state_of(client).accounts.find(name)
    assert user is not None
    return user.id


def post(client: TestClient, path: str, token: str, **fields: str | list[str]) -> httpx.Response:
    return client.post(
        path, data={"csrf_token": token, **fields}, headers=BROWSER, follow_redirects=False
    )


@contextmanager
def without_csrf_header(client: TestClient) -> Iterator[None]:
    """As a form another site posts: the session cookie goes along, no token."""
    sent = client.headers.pop("X-CSRF-Token")
    try:
        yield
    finally:
        client.headers["X-CSRF-Token"] = sent


def names_on(html: str) -> list[str]:
    return re.findall(r'<tr data-kind="\w+" data-name="([^"]*)"', html)


def every_page(client: TestClient, path: str) -> list[str]:
    """The names on a listing page and on every page its Next page links lead to."""
    seen: list[str] = []
    while path:
        shown = client.get(path.replace("&amp;", "&"), headers=BROWSER)
        assert shown.status_code == 200, shown.text
        seen += names_on(shown.text)
        found = re.search(r'href="([^"]+)">Next page<', shown.text)
        path = found.group(1) if found else ""
    return seen


@pytest.fixture
def alice(client: TestClient) -> tuple[str, str]:
    """Alice's API key (to set up her drive) and her page's CSRF token (she is logged in)."""
    key = user_key(client, "alice")
    return key, log_in(client, "alice")


# -- who may see it -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/drive",
        "/drive/folder/1",
        "/drive/search?q=a",
        "/drive/trash",
        "/drive/folder/1/properties",
    ],
)
def test_guests_go_to_the_login_page(client: TestClient, path: str) -> None:
    answer = client.get(path, headers=BROWSER, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=/drive")


def test_guest_posts_go_to_the_login_page(client: TestClient) -> None:
    answer = client.post(
        "/drive/folders", data={"name": "x"}, headers=BROWSER, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")
    assert client.post("/drive/folders", data={"name": "x"}).status_code == 401


def test_other_users_folders_are_not_found(client: TestClient, alice: tuple[str, str]) -> None:
    key, _ = alice
    secret = make_folder(client, key, "secret")
    [record] = api_upload(client, key, ("plan.txt", b"the plan"), folder_id=secret)
    token = log_in(client, "bob")
    assert client.get(f"/drive/folder/{secret}", headers=BROWSER).status_code == 404
    assert client.get(f"/drive/folder/{secret}/properties", headers=BROWSER).status_code == 404
    assert client.get(f"/drive/file/{record['id']}", headers=BROWSER).status_code == 404
    created = post(client, "/drive/folders", token, name="mine", here=str(secret))
    assert created.status_code == 404
    moved = post(client, "/drive/delete", token, item=f"folder-{secret}")
    assert moved.status_code == 404
    assert "Folder not found" in moved.text
    sharing = post(client, f"/drive/folder/{secret}/properties", token, visibility="public")
    assert sharing.status_code == 404
    assert state_of(client).folders.live(uid(client, "alice"), secret) is not None


# -- the listing --------------------------------------------------------------------------


def test_new_folder_needs_the_csrf_token(client: TestClient, alice: tuple[str, str]) -> None:
    with without_csrf_header(client):
        refused = client.post("/drive/folders", data={"name": "a"}, headers=BROWSER)
    assert refused.status_code == 403
    assert "CSRF token missing or wrong" in refused.text
    assert state_of(client).listings.tree(uid(client, "alice")) == []

    _, token = alice
    with without_csrf_header(client):
        made = post(client, "/drive/folders", token, name=XSS, here="")
    assert made.status_code == 303
    assert made.headers["location"] == "/drive"
    page = client.get("/drive", headers=BROWSER)
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert names_on(page.text) == ["&lt;img src=x onerror=alert(1)&gt;"]


def test_errors_show_on_the_page(client: TestClient, alice: tuple[str, str]) -> None:
    key, token = alice
    folder = make_folder(client, key, "docs")
    empty = post(client, "/drive/folders", token, name="  ", here=str(folder))
    assert empty.status_code == 400
    assert 'role="alert">Folder name is required<' in empty.text
    assert "<h1>docs</h1>" in empty.text
    nothing = post(client, "/drive/move", token, here="", target=str(folder))
    assert nothing.status_code == 400
    assert "Select at least one file or folder first" in nothing.text
    into_itself = post(client, "/drive/move", token, item=f"folder-{folder}", target=str(folder))
    assert into_itself.status_code == 400
    assert "cannot move into itself" in into_itself.text
    back = f"/drive/folder/{folder}/properties"
    on_its_page = post(
        client, "/drive/move", token, item=f"folder-{folder}", target=str(folder), back=back
    )
    assert on_its_page.status_code == 400
    assert "cannot move into itself" in on_its_page.text
    assert "Who may open it" in on_its_page.text


def test_rename_move_copy_and_delete(client: TestClient, alice: tuple[str, str]) -> None:
    key, token = alice
    docs = make_folder(client, key, "docs")
    old = make_folder(client, key, "old")
    [a, b] = api_upload(client, key, ("a.txt", b"aaa"), ("b.txt", b"bb"))
    state, owner = state_of(client), uid(client, "alice")

    renamed = post(client, "/drive/rename", token, item=f"file-{a['id']}", name="plan.txt")
    assert renamed.headers["location"] == "/drive"
    assert state.drive_files.get(owner, a["id"]).name == "plan.txt"
    two = post(
        client, "/drive/rename", token, item=[f"file-{a['id']}", f"file-{b['id']}"], name="x"
    )
    assert two.status_code == 400

    items = [f"file-{a['id']}", f"file-{b['id']}", f"folder-{old}"]
    moved = post(client, "/drive/move", token, item=items, target=str(docs), here="")
    assert moved.status_code == 303
    inside = client.get(f"/drive/folder/{docs}", headers=BROWSER).text
    assert names_on(inside) == ["old", "b.txt", "plan.txt"]

    copied = post(client, "/drive/copy", token, item=f"file-{b['id']}", target="", here=str(docs))
    assert copied.headers["location"] == f"/drive/folder/{docs}"
    assert names_on(client.get("/drive", headers=BROWSER).text) == ["docs", "b.txt"]
    folder_copy = post(client, "/drive/copy", token, item=f"folder-{old}", target="")
    assert "Only files can be copied" in folder_copy.text

    gone = post(client, "/drive/delete", token, item=[f"folder-{docs}"], here="")
    assert gone.headers["location"] == "/drive"
    trash = client.get("/drive/trash", headers=BROWSER).text
    assert "docs" in trash
    assert "with its folder" in trash
    assert "plan.txt" in trash


def test_rename_from_the_file_page_goes_back_there(
    client: TestClient, alice: tuple[str, str]
) -> None:
    key, token = alice
    [a] = api_upload(client, key, ("a.txt", b"aaa"))
    back = f"/drive/file/{a['id']}"
    done = post(client, "/drive/rename", token, item=f"file-{a['id']}", name="b.txt", back=back)
    assert done.headers["location"] == back
    failed = post(client, "/drive/rename", token, item=f"file-{a['id']}", name=" ", back=back)
    assert failed.status_code == 400
    assert "Type the new name first" in failed.text
    assert '<h1 class="drive-file-name">' in failed.text
    elsewhere = post(client, "/drive/rename", token, item=f"file-{a['id']}", name="c", back="//x")
    assert elsewhere.headers["location"] == "/drive"


def test_sort_and_pages(
    client: TestClient, alice: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = alice
    make_folder(client, key, "zeta")
    make_folder(client, key, "alpha")
    api_upload(client, key, ("big.bin", b"x" * 300), ("small.bin", b"x"), ("mid.bin", b"x" * 20))
    page = client.get("/drive?sort=size&order=desc", headers=BROWSER).text
    assert names_on(page) == ["zeta", "alpha", "big.bin", "mid.bin", "small.bin"]
    assert 'aria-sort="descending"' in page
    page = client.get("/drive?sort=date&order=desc", headers=BROWSER).text
    assert names_on(page) == ["alpha", "zeta", "mid.bin", "small.bin", "big.bin"]
    page = client.get("/drive?sort=name&order=desc", headers=BROWSER).text
    assert names_on(page) == ["zeta", "alpha", "small.bin", "mid.bin", "big.bin"]

    monkeypatch.setattr(drive, "PAGE_SIZE", 2)
    assert every_page(client, "/drive?sort=size&order=asc") == [
        "alpha",
        "zeta",
        "small.bin",
        "mid.bin",
        "big.bin",
    ]
    assert every_page(client, "/drive?sort=date&order=desc") == [
        "alpha",
        "zeta",
        "mid.bin",
        "small.bin",
        "big.bin",
    ]
    assert every_page(client, "/drive") == ["alpha", "zeta", "big.bin", "mid.bin", "small.bin"]
    cursor = re.search(r"cursor=([^&\"]+)", client.get("/drive?sort=size", headers=BROWSER).text)
    assert cursor is not None
    assert client.get(f"/drive?sort=date&cursor={cursor.group(1)}").status_code == 400
    assert client.get("/drive?sort=colour").status_code == 400


def test_search_shows_where_things_are(client: TestClient, alice: tuple[str, str]) -> None:
    key, _ = alice
    docs = make_folder(client, key, "docs")
    deep = make_folder(client, key, "2026", docs)
    api_upload(client, key, ("report 100%.txt", b"r"), folder_id=deep)
    api_upload(client, key, ("report.txt", b"r"))
    page = client.get("/drive/search?q=report", headers=BROWSER).text
    assert "report 100%.txt" in page
    assert "report.txt" in page
    assert f'<a href="/drive/folder/{deep}">docs / 2026</a>' in page
    assert "100%" in client.get("/drive/search?q=100%25", headers=BROWSER).text
    none = client.get("/drive/search?q=%25%25", headers=BROWSER).text
    assert "Nothing in your drive is called anything like" in none
    assert client.get("/drive/search", headers=BROWSER).status_code == 200


def test_trash_restore_and_empty(client: TestClient, alice: tuple[str, str]) -> None:
    key, token = alice
    [a, b] = api_upload(client, key, ("a.txt", b"a"), ("b.txt", b"b"))
    post(client, "/drive/delete", token, item=[f"file-{a['id']}", f"file-{b['id']}"])
    assert names_on(client.get("/drive", headers=BROWSER).text) == []
    with without_csrf_header(client):
        refused = client.post(
            "/drive/trash/restore", data={"item": f"file-{a['id']}"}, headers=BROWSER
        )
    assert refused.status_code == 403
    assert "<h1>Trash</h1>" in refused.text
    back = post(client, "/drive/trash/restore", token, item=f"file-{a['id']}")
    assert back.headers["location"] == "/drive/trash"
    assert names_on(client.get("/drive", headers=BROWSER).text) == ["a.txt"]
    missing = post(client, "/drive/trash/restore", token, item=f"file-{a['id']}")
    assert missing.status_code == 404
    page = client.get("/drive/trash", headers=BROWSER).text
    assert 'data-confirm="Delete everything in the trash' in page
    assert "b.txt" in page
    emptied = post(client, "/drive/trash/empty", token)
    assert emptied.status_code == 303
    assert "The trash is empty." in client.get("/drive/trash", headers=BROWSER).text


def test_upload_form_into_a_folder(client: TestClient, alice: tuple[str, str]) -> None:
    key, token = alice
    docs = make_folder(client, key, "docs")
    page = client.get(f"/drive/folder/{docs}", headers=BROWSER).text
    assert f'data-folder-id="{docs}"' in page  # the uploader puts its files there
    assert f'<input type="hidden" name="folder_id" value="{docs}">' in page
    assert '<script type="module" src="/static/js/upload.js"' in page
    with without_csrf_header(client):
        sent = client.post(
            "/upload",
            data={"csrf_token": token, "folder_id": str(docs), "is_temp": "false"},
            files={"files": ("notes.txt", b"my notes", "text/plain")},
            headers=BROWSER,
            follow_redirects=False,
        )
    assert sent.status_code == 303
    assert sent.headers["location"].startswith("/manage/")
    assert names_on(client.get(f"/drive/folder/{docs}", headers=BROWSER).text) == ["notes.txt"]


# -- a file's and a folder's page ---------------------------------------------------------


def test_file_sharing_settings(client: TestClient, alice: tuple[str, str]) -> None:
    key, token = alice
    [a] = api_upload(client, key, ("a.txt", b"aaa"))
    path = f"/drive/file/{a['id']}"
    state, owner = state_of(client), uid(client, "alice")
    page = client.get(path, headers=BROWSER).text
    assert "/d/" in page
    assert 'data-copy="link-download"' in page
    assert "Short link" in page
    with without_csrf_header(client):
        assert client.post(path, data={"public": "on"}, headers=BROWSER).status_code == 403
    assert state.drive_files.get(owner, a["id"]).is_public is False

    fields = {"public": "on", "short_link": "on", "password": "s3cret", "expires": "1d"}
    saved = post(client, path, token, max_downloads="5", **fields)
    assert saved.headers["location"] == path
    record = state.drive_files.get(owner, a["id"])
    assert record.is_public
    assert record.short_code
    assert record.password_hash
    assert record.expires_at is not None
    assert record.max_downloads == 5
    assert f"/s/{record.short_code}" in client.get(path, headers=BROWSER).text

    post(client, path, token, remove_password="on", expires="never", max_downloads="0")
    record = state.drive_files.get(owner, a["id"])
    assert not record.is_public
    assert record.short_code is None
    assert record.password_hash is None
    assert record.expires_at is None
    assert record.max_downloads is None
    bad = post(client, path, token, expires="9y")
    assert bad.status_code == 400
    assert 'role="alert"' in bad.text


def test_folder_sharing_settings(client: TestClient, alice: tuple[str, str]) -> None:
    key, token = alice
    folder_id = make_folder(client, key, "photos")
    path = f"/drive/folder/{folder_id}/properties"
    state, owner = state_of(client), uid(client, "alice")
    assert "Folder link" not in client.get(path, headers=BROWSER).text
    with without_csrf_header(client):
        refused = client.post(path, data={"visibility": "public"}, headers=BROWSER)
    assert refused.status_code == 403

    saved = post(client, path, token, visibility="unlisted", password="pw")
    assert saved.headers["location"] == path
    folder = state.folders.live(owner, folder_id)
    assert folder is not None
    assert folder.is_public == FolderVisibility.UNLISTED
    assert folder.access_password_hash is not None
    page = client.get(path, headers=BROWSER).text
    assert f"/folder/{folder.share_code}/photos" in page
    assert "password protected" in page

    post(client, path, token, visibility="public")
    folder = state.folders.live(owner, folder_id)
    assert folder is not None
    assert folder.is_public == FolderVisibility.PUBLIC
    assert folder.access_password_hash is not None  # kept: nothing typed
    post(client, path, token, visibility="private", remove_password="on")
    folder = state.folders.live(owner, folder_id)
    assert folder is not None
    assert folder.is_public == FolderVisibility.PRIVATE
    assert folder.access_password_hash is None
    bad = post(client, path, token, visibility="everyone")
    assert bad.status_code == 400
    assert "Invalid visibility" in bad.text


def test_pages_escape_names(client: TestClient, alice: tuple[str, str]) -> None:
    key, _ = alice
    folder_id = make_folder(client, key, XSS)
    [record] = api_upload(client, key, (XSS + ".txt", b"x"), folder_id=folder_id)
    for path in [
        "/drive",
        f"/drive/folder/{folder_id}",
        f"/drive/folder/{folder_id}/properties",
        f"/drive/file/{record['id']}",
        "/drive/search?q=img",
    ]:
        page = client.get(path, headers=BROWSER)
        assert page.status_code == 200, path
        assert "<img src=x" not in page.text, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text, path


@pytest.mark.parametrize(
    "fields",
    [
        ["file", "a", 1, "size", 0, -5],
        ["file", "a", 1, "size", 0, True],
        ["file", "a", 1, "date", 1, "2026-01-01T00:00:00"],
        ["file", "a", 1, "name", 0, None],
        ["folder", "a", 1, "size", 0, 3],
    ],
)
def test_cursors_carry_a_sort_value_of_their_order(fields: list[object]) -> None:
    text = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()
    order = parse_order(str(fields[3]), "desc" if fields[4] else "asc")
    with pytest.raises(BadRequest):
        Cursor.decode(text, order)


def test_a_cursor_goes_on_where_it_was_made() -> None:
    order = parse_order("date", "desc")
    made = Cursor("file", "a.txt", 7, datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), order)
    assert Cursor.decode(made.encode(), order) == made
    by_size = parse_order("size", "asc")
    folder = Cursor("folder", "docs", 3, None, by_size)
    assert Cursor.decode(folder.encode(), by_size) == folder
