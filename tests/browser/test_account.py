"""Accounts in a real Chromium: register, log in, make API keys on the account page, and use
the secret read from the page with real curl."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from tests.browser.conftest import screenshots
from tests.conftest import LiveServer

PASSWORD = "a long browser password"


def curl(*args: str) -> tuple[int, dict[str, object]]:
    """Real curl: the HTTP status and the JSON body."""
    result = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(body)


def register(page: Page, url: str, username: str) -> None:
    page.goto(url + "/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    screenshots(page, "register")
    page.get_by_role("button", name="Register").click()
    expect(page).to_have_url(url + "/account")


def log_in(page: Page, url: str, username: str) -> None:
    page.goto(url + "/login?next=/account%23keys")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password")
    page.get_by_label("Password").fill(PASSWORD)
    screenshots(page, "login")
    page.get_by_label("Password").press("Enter")  # the keyboard alone logs in
    expect(page).to_have_url(url + "/account#keys")


def create_key(page: Page, label: str, permissions: list[str]) -> str:
    form = page.locator("form.new-key-form")
    form.get_by_label("Label").fill(label)
    for name in permissions:
        form.locator(f"input[type=checkbox][name={name}]").check()
    form.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret").input_value()
    assert secret.startswith("sat_")
    assert len(secret) == 44
    return secret


def test_keys_made_on_the_account_page_work_with_curl(
    live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    url = live_server.url
    register(page, url, "bruno")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(url + "/")
    log_in(page, url, "bruno")

    secret = create_key(page, "uploads <script>", ["read", "write"])
    expect(page.get_by_role("heading", name="New API key “uploads <script>”")).to_be_visible()
    screenshots(page, "account-key-created")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download ShareX uploader").click()
    sharex = json.loads(Path(download.value.path()).read_text())
    assert sharex["Headers"] == {"Authorization": f"Bearer {secret}"}
    assert sharex["RequestURL"] == url + "/upload"

    sample = tmp_path / "hello.txt"
    sample.write_text("hello from curl\n")
    bearer = f"Authorization: Bearer {secret}"
    status, uploaded = curl("-H", bearer, "-F", f"files=@{sample}", url + "/apiv1/upload")
    assert status == 201, uploaded
    status, listing = curl("-H", bearer, url + "/apiv1/files")
    assert status == 200
    assert [entry["name"] for entry in listing["files"]] == ["hello.txt"]  # type: ignore[attr-defined]

    # What the ShareX uploader sends: a public drive file whose link anyone can open.
    fields = [
        arg for name, value in sharex["Arguments"].items() for arg in ("-F", f"{name}={value}")
    ]
    status, shared = curl(
        "-H", bearer, *fields, "-F", f"{sharex['FileFormName']}=@{sample}", sharex["RequestURL"]
    )
    assert status == 200, shared
    assert httpx.get(str(shared["download_url"])).text == "hello from curl\n"

    page.goto(url + "/account")
    assert secret not in page.content()
    read_only = create_key(page, "reader", ["read"])
    status, refused = curl(
        "-H", f"Authorization: Bearer {read_only}", "-F", f"files=@{sample}", url + "/apiv1/upload"
    )
    assert status == 403
    assert refused == {"error": "This API key lacks the 'write' permission"}

    page.goto(url + "/account")
    rows = page.locator("table.keys tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("uploads <script>")
    screenshots(page, "account")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke reader").click()
    expect(page.get_by_role("status")).to_have_text("API key revoked.")
    expect(rows).to_have_count(1)
    status, _ = curl("-H", f"Authorization: Bearer {read_only}", url + "/apiv1/files")
    assert status == 401
