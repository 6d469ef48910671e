"""The uploader's page, the manage page's forms and the QR codes of share links, as a browser
without scripts gets them (tests/browser drives the scripts)."""

from __future__ import annotations

import re

from starlette.testclient import TestClient
from tests.helpers import log_in, path_of, token_of, upload

from satchel.core.accounts import NewUser

BROWSER = {"Accept": "text/html,application/xhtml+xml", "User-Agent": "Mozilla/5.0"}


def test_the_upload_form_sends_its_csrf_token_before_any_file(client: TestClient) -> None:
    page = client.get("/", headers=BROWSER).text
    token = client.cookies["satchel_csrf"]
    assert page.index(f'name="csrf_token" value="{token}"') < page.index('name="files"')
    assert '<script type="module" src="/static/js/upload.js"' in page


def test_a_logged_in_browser_uploads_with_the_form_and_its_token(client: TestClient) -> None:
    log_in(client, "alice")
    client.headers.pop("X-CSRF-Token")  # a form post: the token is a field, as the page has it
    page = client.get("/", headers=BROWSER).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    forged = client.post("/upload", files={"files": ("a.txt", b"x")}, headers=BROWSER)
    assert forged.status_code == 403
    sent = client.post(
        "/upload",
        data={"csrf_token": token.group(1)},
        files={"files": ("a.txt", b"x")},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert sent.headers["location"].startswith("/manage/")


def test_the_manage_page_links_copies_and_settings(client: TestClient) -> None:
    result = upload(client, b"data", "report.txt")
    token = token_of(result)
    page = client.get(f"/manage/{token}", headers=BROWSER).text
    csrf = client.cookies["satchel_csrf"]
    assert result["share_url"] in page
    assert 'data-copy="share-link"' in page
    assert page.count(f'name="csrf_token" value="{csrf}"') == 2  # settings and delete
    assert 'src="/qr.svg?url=' in page
    # The settings form works without scripts.
    saved = client.post(
        f"/manage/{token}",
        data={"_form": "1", "csrf_token": csrf, "max_downloads": "3", "expires": ""},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert client.get(f"/manage/{token}").json()["max_downloads"] == 3


def test_a_session_deletes_only_with_the_pages_token(client: TestClient) -> None:
    token = log_in(client, "alice")
    manage = token_of(upload(client, b"data", "gone.txt"))
    client.headers.pop("X-CSRF-Token")
    assert client.post(f"/delete/{manage}", headers=BROWSER).status_code == 403
    done = client.post(f"/delete/{manage}", data={"csrf_token": token}, headers=BROWSER)
    assert done.status_code == 200
    assert "The file is gone" in done.text


def test_qr_codes_are_drawn_for_this_servers_links_only(client: TestClient) -> None:
    result = upload(client, b"data", "report.txt")
    svg = client.get("/qr.svg", params={"url": result["share_url"]})
    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.headers["x-content-type-options"] == "nosniff"
    assert svg.headers["content-security-policy"].startswith("default-src 'none'")
    assert "viewBox" in svg.text
    assert "<script" not in svg.text
    for url in ("https://elsewhere.example/d/x", result["share_url"] + "#k=secret", "x" * 3000):
        refused = client.get("/qr.svg", params={"url": url})
        assert refused.status_code == 400
        assert "url must be a link of this server" in refused.json()["error"]
    assert path_of(result["share_url"]).startswith("/d/")


def test_a_mistyped_address_gets_the_error_page_in_a_browser(client: TestClient) -> None:
    page = client.get("/no-such-page", headers=BROWSER)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Error 404" in page.text
    assert client.get("/no-such-page").json() == {"error": "Not found"}


def test_the_header_follows_the_real_session(client: TestClient) -> None:
    client.cookies.set("satchel_session", "expired-or-made-up", domain="testserver.local")
    for path in ("/", "/folders"):
        page = client.get(path, headers=BROWSER).text
        assert ">Log in</a>" in page, path
        assert "Log out" not in page, path
    log_in(client, "alice")
    assert "Log out" in client.get("/folders", headers=BROWSER).text
    assert 'href="/admin"' not in client.get("/", headers=BROWSER).text
    state = client.app.state.satchel  # type: ignore[attr-defined]
    state.accounts.create_user(NewUser("root", "rootpassword", is_admin=True))
    log_in(client, "root")
    for path in ("/", "/folders", "/drive"):
        assert 'href="/admin"' in client.get(path, headers=BROWSER).text, path


def test_the_upload_limit_is_shown_as_it_is_set(client: TestClient) -> None:
    """A guest's 1 GiB limit reads "1 GB", as the package limits are set: shown in decimal
    units it read "1.1 GB", and a file of 1.08 GB looked allowed, then got 413."""
    settings = client.app.state.satchel.settings  # type: ignore[attr-defined]
    assert settings.guest_max_upload_size == 1 << 30
    page = client.get("/", headers=BROWSER).text
    assert "Up to 1 GB per upload." in page
