"""Every page not shown by the other browser tests, opened in Chromium: each renders without a
script error or a CSP violation (no page may need inline script or style), and each is
photographed at desktop and phone width for docs/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, Response, expect
from tests.browser.conftest import screenshots
from tests.conftest import LiveServer

USER, PASSWORD = "tour", "tour password 1"


@pytest.fixture
def watched(page: Page) -> Iterator[Page]:
    """The page, failing the test on any console error or CSP violation it reports."""
    problems: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        # A page answered with 401/404 says so in the console: its parts are checked below.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def loaded(response: Response) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            problems.append(f"{response.status} {response.url}")

    page.on("console", seen)
    page.on("response", loaded)
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 200))")
    assert problems == []


def upload(server: LiveServer, name: str, data: bytes, **fields: str) -> dict[str, str]:
    answer = httpx.post(server.url + "/upload", files={"files": (name, data)}, data=fields)
    assert answer.status_code == 200, answer.text
    result: dict[str, str] = answer.json()
    return result


def test_the_pages_of_a_shared_file(live_server: LiveServer, watched: Page) -> None:
    page = watched
    result = upload(live_server, "quarterly report.pdf", b"%PDF-1.4 tour", short_url="true")
    page.goto(result["manage_url"])
    expect(page.get_by_role("heading", name="quarterly report.pdf")).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_be_visible()
    screenshots(page, "manage")
    page.goto(result["delete_url"])
    expect(page.get_by_role("heading", name="Delete quarterly report.pdf?")).to_be_visible()
    screenshots(page, "delete-confirm")
    page.goto(result["share_url"].replace("/d/", "/stats/"))
    expect(page.get_by_text("Downloads")).to_be_visible()
    screenshots(page, "stats")
    page.goto(result["delete_url"])
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Deleted")).to_be_visible()
    screenshots(page, "deleted")
    page.goto(result["download_url"])
    expect(page.get_by_text("Error 404")).to_be_visible()
    screenshots(page, "error")


def test_a_password_file_asks_on_its_download_link(live_server: LiveServer, watched: Page) -> None:
    page = watched
    result = upload(live_server, "secret.txt", b"hidden", password="open sesame")
    page.goto(result["download_url"])
    expect(page.get_by_role("heading", name="This file is protected")).to_be_visible()
    screenshots(page, "file-password")
    # The share page's form, posted: the password never goes into an address.
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert "wrong" not in page.url
    page.get_by_label("Password").fill("open sesame")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("heading", name="secret.txt")).to_be_visible()


def test_shared_folders_and_their_search(live_server: LiveServer, watched: Page) -> None:
    page = watched
    live_server.admin("create-user", USER, "--password", PASSWORD)
    page.goto(live_server.url + "/login?next=/drive")
    page.get_by_label("Username").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live_server.url + "/drive")
    for name in ("Holiday photos", "Family recipes"):
        page.get_by_label("New folder's name").fill(name)
        page.get_by_role("button", name="New folder").click()
        expect(page.locator("td.drive-name", has_text=name)).to_be_visible()
    page.locator("td.drive-name a", has_text="Holiday photos").click()
    page.locator("#file-input").set_input_files(
        files=[{"name": "beach.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8 photo"}]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("td.drive-name", has_text="beach.jpg")).to_be_visible(timeout=30_000)
    shared = {}
    for name, password in (("Holiday photos", ""), ("Family recipes", "grandma")):
        page.goto(live_server.url + "/drive")
        page.locator("tr", has_text=name).get_by_role("link", name="Properties").click()
        page.get_by_label("Public: anyone, and the public folder search lists it").check()
        if password:
            page.get_by_label("Password", exact=False).first.fill(password)
        page.get_by_role("button", name="Save").click()
        shared[name] = page.locator("#folder-link").input_value()
    page.context.clear_cookies()  # a visitor from now on
    page.goto(live_server.url + "/folders?q=")
    expect(page.get_by_role("link", name="Holiday photos")).to_be_visible()
    screenshots(page, "folders")
    page.goto(shared["Holiday photos"])
    expect(page.get_by_role("link", name="beach.jpg")).to_be_visible()
    screenshots(page, "folder")
    page.goto(shared["Family recipes"])
    expect(page.get_by_text("This folder is protected by a password.")).to_be_visible()
    screenshots(page, "folder-password")
    page.get_by_label("Password").fill("grandma")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("heading", name="Family recipes")).to_be_visible()
    assert re.search(r"/folder/\w+", page.url)
