"""End-to-end encryption through the uploader: a file encrypted in the page as it uploads,
opened from its #k= link in another browser context and with the CLI, byte-exact; and the
browser's memory while it encrypts and uploads 1 GB."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from tests.browser.test_e2e_share import satchel, save_download, wait_worker
from tests.browser.test_uploader import make_file, sha256_of
from tests.conftest import LiveServer

MiB = 1024 * 1024


def upload_encrypted(page: Page, path: Path, password: str = "") -> str:
    page.locator("#opt-e2e").check()
    if password:
        page.get_by_label("Password that encrypts it").fill(password)
    page.set_input_files("#file-input", str(path))
    page.get_by_role("button", name="Upload", exact=True).click()
    card = page.locator(".result").first
    card.wait_for(timeout=600_000)
    assert card.locator(".e2e-note").is_visible()
    assert card.locator("img.qr").is_hidden()  # drawn by the server: never for a key link
    return card.get_by_label("Share link", exact=True).input_value()


def test_an_upload_encrypted_in_the_page_opens_in_a_browser_and_with_the_cli(
    live_server: LiveServer, page: Page, browser: Browser, tmp_path: Path
) -> None:
    data = os.urandom(9 * MiB + 123)  # three chunks, the last one short
    source = tmp_path / "holiday.mov"
    source.write_bytes(data)
    page.goto(live_server.url + "/")
    link = upload_encrypted(page, source)
    assert link.startswith(live_server.url + "/d/")
    assert "#k=" in link
    key_text = link.split("#k=")[1]
    assert key_text not in live_server.log_text()
    # The stored bytes are not the file's.
    public_id = link.split("/d/")[1].split("#")[0]
    assert sha256_of(f"{live_server.url}/f/{public_id}/encrypted") != sha256_of_bytes(data)

    other = browser.new_context(accept_downloads=True)
    try:
        opened = other.new_page()
        opened.goto(link)
        wait_worker(opened)
        assert save_download(opened, tmp_path, "from-browser.mov") == data
        assert opened.locator("#e2e-name").text_content() == "holiday.mov"
    finally:
        other.close()

    done = satchel(live_server, tmp_path, "download", link, "-o", str(tmp_path / "cli.mov"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cli.mov").read_bytes() == data


def test_a_password_encrypted_upload_needs_the_password_never_sent(
    live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    data = os.urandom(200_000)
    source = tmp_path / "notes.txt"
    source.write_bytes(data)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url + " " + (r.post_data or "")[:2000]))
    page.goto(live_server.url + "/")
    link = upload_encrypted(page, source, password="correct horse battery")
    assert link.endswith("#p")
    assert not any("correct horse" in line for line in requests)
    assert "correct horse" not in live_server.log_text()
    done = satchel(
        live_server,
        tmp_path,
        "download",
        link,
        "-o",
        str(tmp_path / "out.txt"),
        "--password",
        "correct horse battery",
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.txt").read_bytes() == data


def sha256_of_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def renderer_rss() -> int:
    """The largest resident size of Chromium's renderer processes (bytes)."""
    largest = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes()
            status = (proc / "status").read_text()
        except OSError:
            continue
        if b"chromium" not in command or b"--type=renderer" not in command:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                largest = max(largest, int(line.split()[1]) * 1024)
    return largest


# The page's memory is the browser's: the server's database makes no difference to it.
@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_memory_while_encrypting_and_uploading_a_gigabyte(
    live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    """Chunk by chunk: the page's memory stays far below the file's size. Measured through
    the DevTools protocol (the V8 heap with the ArrayBuffers' backing stores), and the
    renderer process's resident size beside it; both figures are printed."""
    source = tmp_path / "big.bin"
    make_file(source, 1_000_000_000)  # 1 GB: its ciphertext stays under a guest's 1 GiB
    page.goto(live_server.url + "/")
    cdp = page.context.new_cdp_session(page)
    peak = {"heap": 0, "rss": 0}

    def sample() -> None:
        usage = cdp.send("Runtime.getHeapUsage")
        heap = int(usage["totalSize"]) + int(usage.get("backingStorageSize", 0))
        peak["heap"] = max(peak["heap"], heap)
        peak["rss"] = max(peak["rss"], renderer_rss())

    page.locator("#opt-e2e").check()
    page.set_input_files("#file-input", str(source))
    page.get_by_role("button", name="Upload", exact=True).click()
    card = page.locator(".result").first
    error = page.locator("#upload-error")
    while not card.is_visible():
        assert error.is_hidden(), error.text_content()
        sample()
        page.wait_for_timeout(200)
    sample()
    print(
        f"\nE2E 1 GB upload: heap with buffers peak {peak['heap'] / MiB:.0f} MiB, "
        f"renderer RSS peak {peak['rss'] / MiB:.0f} MiB"
    )
    assert peak["heap"] < 300 * MiB
    assert peak["rss"] < 300 * MiB
