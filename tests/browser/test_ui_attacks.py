"""Attacks on the pages in a real browser: what a hostile uploader can make the share page of
an end-to-end encrypted file show and save."""

from __future__ import annotations

from playwright.sync_api import Browser, Page
from tests.browser.test_e2e_share import wait_worker
from tests.conftest import LiveServer

# U+202E RIGHT-TO-LEFT OVERRIDE: "invoice\u202efdp.exe" reads as "invoiceexe.pdf".
SPOOFED = "invoice\u202efdp.exe"


def encrypted_upload(page: Page, base: str, name: str) -> str:
    page.goto(base + "/")
    page.locator("#opt-e2e").check()
    page.set_input_files(
        "#file-input", files=[{"name": name, "mimeType": "text/plain", "buffer": b"pay me"}]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    card = page.locator(".result").first
    card.wait_for(timeout=60_000)
    return card.get_by_label("Share link", exact=True).input_value()


def test_the_decrypted_name_loses_the_characters_that_disguise_it(
    live_server: LiveServer, page: Page, browser: Browser
) -> None:
    """The name comes from the sender, inside the encryption where the server cannot clean
    it as it cleans other names (core.names): the page shows and saves it without control
    and format characters (bidirectional overrides, zero-width ones)."""
    link = encrypted_upload(page, live_server.url, SPOOFED)
    other = browser.new_context(accept_downloads=True)
    try:
        opened = other.new_page()
        saved: list[str] = []
        opened.on(
            "response",
            lambda r: (
                saved.append(r.headers.get("content-disposition", ""))
                if r.url.split("?")[0].endswith("/save")
                else None
            ),
        )
        opened.goto(link)
        wait_worker(opened)
        with opened.expect_download(timeout=30_000) as info:
            opened.get_by_role("button", name="Download").click()
        assert info.value.suggested_filename == "invoicefdp.exe"
        assert opened.locator("#e2e-name").text_content() == "invoicefdp.exe"
        assert saved
        assert "%E2%80%AE" not in saved[0]
        assert "\u202e" not in saved[0]
        names = opened.evaluate(
            """async () => {
                const { safeName } = await import("/static/js/e2e.js");
                return ["a\\u202eb", "a\\u200bb", "a\\u2066b\\u2069", "a\\u0085b", "a\\ufeffb",
                        "a\\u0007b", "../../x\\u202e", "\\u202e"].map(safeName);
            }"""
        )
        assert names == ["ab", "ab", "ab", "ab", "ab", "ab", "x", "download"]
    finally:
        other.close()
