"""The admin pages in Chromium: an admin turns off a user's API access, and that user's key
(used with curl) gets 403; every admin page at desktop and phone width into the docs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from tests.browser.conftest import screenshots
from tests.conftest import LiveServer


def curl(url: str, key: str) -> tuple[int, dict[str, object]]:
    result = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {key}", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(body)


def log_in(page: Page, server: LiveServer, name: str, password: str) -> None:
    page.goto(server.url + "/login?next=/admin")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server.url + "/admin")


def test_an_admin_turns_off_api_access_and_the_key_gets_403(
    live_server: LiveServer, page: Page
) -> None:
    run = uuid.uuid4().hex[:6]
    boss, quinn = f"boss{run}", f"quinn{run}"
    live_server.admin("create-user", boss, "--password", "boss password", "--admin")
    live_server.admin(
        "create-user", quinn, "--password", "quinn password", "--email", f"{quinn}@example.org"
    )
    key = live_server.admin("create-api-key", quinn, "--permissions", "read,write")
    for n, name in enumerate(("report.pdf", "holiday photos.zip", "notes.txt")):
        httpx.post(live_server.url + "/upload", files={"files": (name, b"x" * (n + 1) * 5000)})
    status, _ = curl(live_server.url + "/apiv1/files", key)
    assert status == 200

    log_in(page, live_server, boss, "boss password")
    expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible()
    screenshots(page, "admin")

    page.get_by_role("link", name="Users").first.click()
    page.get_by_label("Name or email").fill(quinn)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name=f"Turn off API access of {quinn}").click()
    expect(page.get_by_role("status")).to_have_text("API access changed.")
    expect(page.locator(f"#user-{_user_id(live_server, quinn)} .api-state")).to_have_text("off")

    status, body = curl(live_server.url + "/apiv1/files", key)
    assert status == 403
    assert body == {"error": "API access is disabled for this account"}

    # From the keyboard, on again: the key works again.
    page.get_by_role("button", name=f"Turn on API access of {quinn}").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator(f"#user-{_user_id(live_server, quinn)} .api-state")).to_have_text("on")
    assert curl(live_server.url + "/apiv1/files", key)[0] == 200

    page.goto(live_server.url + "/admin/users")
    screenshots(page, "admin-users")
    _other_pages(page, live_server)


def _user_id(server: LiveServer, name: str) -> str:
    """From `satchel admin list-users` (every account, one a line: id, name, …)."""
    satchel = Path(sys.executable).with_name("satchel")
    result = subprocess.run(
        [str(satchel), "admin", "list-users"],
        env=server.env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    for line in result.stdout.splitlines():
        fields = line.split("\t")
        if fields[1] == name:
            return fields[0]
    raise AssertionError(f"no user {name}")


def _other_pages(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/admin/packages?edit=premium")
    screenshots(page, "admin-packages")
    page.goto(server.url + "/admin/invites")
    page.get_by_role("button", name="Create invite").click()
    expect(page.get_by_label("Invite code")).to_have_value(_code_shape())
    screenshots(page, "admin-invites")
    page.goto(server.url + "/admin/uploads")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove notes.txt").first.click()
    expect(page.get_by_role("status")).to_have_text("Upload removed.")
    screenshots(page, "admin-uploads")
    page.goto(server.url + "/admin/audit")
    expect(page.locator("td code", has_text="admin.file.removed").first).to_be_visible()
    screenshots(page, "admin-audit")


def _code_shape() -> re.Pattern[str]:
    return re.compile(r"^[0-9A-Za-z]{24}$")
