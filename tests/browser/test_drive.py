"""The drive in Chromium: log in, make folders, upload into one, move, rename, delete to the
trash, restore, search, share a folder; screenshots of the listing, trash, search, a file's
page and a folder's."""

from __future__ import annotations

import re

from playwright.sync_api import Dialog, Page, expect
from tests.browser.conftest import screenshots
from tests.conftest import LiveServer

XSS = "<img src=x onerror=alert(1)>"
USER, PASSWORD = "dora", "correct horse battery"


def log_in(page: Page, base: str) -> None:
    page.goto(base + "/drive")
    expect(page).to_have_url(re.compile(r"/login\?next=/drive$"))
    page.get_by_label("Username").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(base + "/drive")


def new_folder(page: Page, name: str) -> None:
    page.get_by_label("New folder's name").fill(name)
    page.get_by_role("button", name="New folder").click()
    expect(page.locator("td.drive-name", has_text=name)).to_be_visible()


def upload_here(page: Page, name: str, body: bytes) -> None:
    """The uploader of this folder page (the home page's): when it is done, the page shows
    the folder again with the new file."""
    here = page.url
    page.locator("#file-input").set_input_files(
        files=[{"name": name, "mimeType": "text/plain", "buffer": body}]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("td.drive-name", has_text=name)).to_be_visible(timeout=30_000)
    assert page.url == here


def tick(page: Page, label: str) -> None:
    page.get_by_label(label, exact=True).check()


def open_folder(page: Page, name: str) -> None:
    page.locator("td.drive-name a", has_text=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def shoot(page: Page, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # the folder tree sticks where the page scrolled to
    screenshots(page, name)


def test_drive_in_a_browser(live_server: LiveServer, page: Page) -> None:
    live_server.admin("create-user", USER, "--password", PASSWORD)
    alerts: list[str] = []

    def answer(dialog: Dialog) -> None:
        if dialog.type == "alert":
            alerts.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    base = live_server.url
    log_in(page, base)
    for name in ("Projects", "Photos", XSS):
        new_folder(page, name)
    upload_here(page, "budget.csv", b"month,amount\njan,12\n")
    upload_here(page, "notes.txt", b"remember the milk\n" * 40)
    open_folder(page, "Projects")
    upload_here(page, "report.txt", b"the quarterly report")

    tick(page, "Select file report.txt")
    expect(page.locator("#drive-count")).to_have_text("1 file selected")
    page.get_by_label("Move or copy to").select_option(label="\u2003Photos")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.locator("td.drive-name", has_text="report.txt")).to_have_count(0)
    page.locator(".drive-side").get_by_role("link", name="Photos").click()
    expect(page.locator("td.drive-name", has_text="report.txt")).to_be_visible()

    page.get_by_role("button", name="Rename report.txt").click()
    page.locator("#rename-name").fill("final report.txt")
    page.locator("dialog").get_by_role("button", name="Rename").click()
    expect(page.locator("td.drive-name", has_text="final report.txt")).to_be_visible()

    tick(page, "Select file final report.txt")
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator("td.drive-name")).to_have_count(0)
    page.get_by_role("link", name="Trash").click()
    expect(page.locator("td.drive-name", has_text="final report.txt")).to_be_visible()
    shoot(page, "drive-trash")
    page.get_by_role("button", name="Restore file final report.txt").click()
    expect(page.get_by_text("The trash is empty.")).to_be_visible()

    page.get_by_role("link", name="Search", exact=True).click()
    page.get_by_label("File or folder name contains").fill("report")
    page.get_by_role("button", name="Search").click()
    found = page.locator("tbody tr", has_text="final report.txt")
    expect(found.locator("td.drive-where")).to_have_text("Photos")
    shoot(page, "drive-search")

    found.get_by_role("link", name="final report.txt").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("final report.txt")
    expect(page.locator("#link-share")).to_have_value(re.compile(r"/d/[0-9a-f-]{36}$"))
    shoot(page, "drive-file")

    page.locator(".breadcrumbs").get_by_role("link", name="Photos").click()
    page.get_by_role("link", name="Properties and sharing").click()
    page.get_by_label("Unlisted: whoever has the link").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#folder-link")).to_have_value(re.compile(r"/folder/\w+/Photos$"))
    shoot(page, "drive-folder")

    page.goto(base + "/drive")
    tick(page, "Select file notes.txt")
    expect(page.locator("td.drive-name", has_text=XSS)).to_be_visible()
    shoot(page, "drive")
    assert alerts == []
