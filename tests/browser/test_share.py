"""The share page in Chromium: an image preview, a password share opened in a second browser
(its own password, its own pass), and uploaded HTML and SVG that never run as script, whatever
type they claim."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import httpx
from playwright.sync_api import Browser, Page
from tests.browser.conftest import screenshots
from tests.conftest import LiveServer

SCRIPT = b"<script>window.__preview_ran = true; parent.__preview_ran = true;</script>"
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="'
    b'window.__preview_ran = true"><script>window.__preview_ran = true;</script></svg>'
)


def png(width: int, height: int) -> bytes:
    """A landscape of colours: something to look at in the screenshots."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            sky = y < height * 0.6
            r = 40 + x * 120 // width if sky else 30 + y * 40 // height
            g = 90 + y * 100 // height if sky else 120 + x * 60 // width
            b = 200 - y * 60 // height if sky else 60
            rows += bytes((r, g, b))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def put(server: LiveServer, name: str, data: bytes, kind: str, **fields: str) -> Any:
    response = httpx.post(
        server.url + "/upload", files={"files": (name, data, kind)}, data=fields, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def ran(page: Page) -> bool:
    return any(frame.evaluate("window.__preview_ran === true") for frame in page.frames)


def test_image_share_page_shows_the_preview(live_server: LiveServer, page: Page) -> None:
    image = png(640, 400)
    result = put(live_server, "Lake at dawn.png", image, "image/png", expires="3d")
    page.goto(result["share_url"])
    preview = page.get_by_role("img", name="Preview of Lake at dawn.png")
    preview.wait_for()
    page.wait_for_function("() => document.querySelector('.share-preview img').complete")
    assert page.evaluate("document.querySelector('.share-preview img').naturalWidth") == 640
    assert page.get_by_role("heading", name="Lake at dawn.png").is_visible()
    download = page.get_by_role("link", name="Download")
    assert download.get_attribute("href") == result["download_url"]
    screenshots(page, "share-image")
    with page.expect_download() as info:
        download.click()
    assert info.value.suggested_filename == "Lake at dawn.png"


def test_password_share_in_a_second_browser(live_server: LiveServer, browser: Browser) -> None:
    result = put(live_server, "plans.txt", b"the plans, in plain text\n", "text/plain",
                 password="blue whale")  # fmt: skip
    first = browser.new_context()
    second = browser.new_context(accept_downloads=True)
    try:
        page = first.new_page()
        page.goto(result["share_url"])
        assert page.get_by_role("heading", name="This file is protected").is_visible()
        assert "plans.txt" not in page.content()
        screenshots(page, "share-password")
        page.get_by_label("Password").fill("blue whale")
        page.get_by_role("button", name="Open").click()
        page.get_by_role("heading", name="plans.txt").wait_for()
        frame = page.frame_locator(".share-preview iframe")
        frame.get_by_text("the plans, in plain text").wait_for()

        # Another browser has no pass: it is asked for the password, and a wrong one fails.
        other = second.new_page()
        other.goto(result["share_url"])
        assert other.get_by_role("heading", name="This file is protected").is_visible()
        other.get_by_label("Password").fill("grey whale")
        other.get_by_role("button", name="Open").click()
        other.get_by_text("Wrong password").wait_for()
        assert "plans.txt" not in other.content()
        assert other.goto(live_server.url + "/preview/" + result["file_id"]).status == 401
        other.goto(result["share_url"])
        other.get_by_label("Password").fill("blue whale")
        other.get_by_role("button", name="Open").click()
        with other.expect_download() as info:
            other.get_by_role("link", name="Download").click()
        assert info.value.suggested_filename == "plans.txt"
        assert "blue whale" not in info.value.url
        assert "blue whale" not in live_server.log_text()
    finally:
        first.close()
        second.close()


def test_uploaded_html_and_svg_never_run_as_script(live_server: LiveServer, page: Page) -> None:
    uploads = [
        ("page.html", SCRIPT, "text/html"),
        ("drawing.svg", SVG, "image/svg+xml"),
        ("page.xml", SVG, "application/xml"),
        # Lying about the type: served as what they claim, with nosniff, sandboxed.
        ("fake.txt", SCRIPT, "text/plain"),
        ("fake.png", SVG, "image/png"),
    ]
    for name, data, kind in uploads:
        result = put(live_server, name, data, kind)
        page.goto(result["share_url"])
        page.get_by_role("heading", name=name).wait_for()
        page.wait_for_load_state("load")
        assert not ran(page), name
        preview = page.goto(live_server.url + "/preview/" + result["file_id"])
        assert preview is not None
        if kind in ("text/html", "image/svg+xml", "application/xml"):
            assert preview.status == 404, name
        else:
            assert preview.status == 200
            assert "sandbox" in preview.headers["content-security-policy"]
            assert preview.headers["x-content-type-options"] == "nosniff"
        page.wait_for_load_state("load")
        assert not ran(page), name
    page.goto(live_server.url + "/login")
    assert page.evaluate("window.__preview_ran === undefined")


def test_share_page_in_the_dark(live_server: LiveServer, browser: Browser) -> None:
    result = put(live_server, "notes.txt", b"Dark mode notes\nline two\n", "text/plain")
    dark = browser.new_context(color_scheme="dark")
    try:
        page = dark.new_page()
        page.goto(result["share_url"])
        page.frame_locator(".share-preview iframe").get_by_text("Dark mode notes").wait_for()
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(15, 19, 24)"
        screenshots(page, "share-text-dark")
    finally:
        dark.close()


PDF = b"\n".join(
    [
        b"%PDF-1.1",
        b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj",
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj",
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 144]/Contents 4 0 R",
        b"/Resources<</Font<</F1<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>>>>>>>endobj",
        b"4 0 obj<</Length 44>>stream",
        b"BT /F1 24 Tf 40 70 Td (Hello PDF) Tj ET",
        b"endstream endobj",
        b"trailer<</Root 1 0 R>>",
        b"%%EOF",
    ]
)


def test_pdf_preview_opens_in_the_browsers_viewer(live_server: LiveServer, page: Page) -> None:
    result = put(live_server, "agenda.pdf", PDF, "application/pdf")
    answer = httpx.get(live_server.url + "/preview/" + result["file_id"])
    assert "sandbox" in answer.headers["content-security-policy"]
    assert answer.headers["content-type"] == "application/pdf"
    page.goto(result["share_url"])
    # The browser's viewer is a frame of its own inside the preview's: it shows up when the
    # PDF was accepted (a sandboxed frame would get an error page instead).
    for _ in range(50):
        if any(frame.url.startswith("chrome-extension://") for frame in page.frames):
            break
        page.wait_for_timeout(200)
    assert any(frame.url.startswith("chrome-extension://") for frame in page.frames)
    assert not any(frame.url.startswith("chrome-error://") for frame in page.frames)
    assert not ran(page)
