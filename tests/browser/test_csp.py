"""An uploaded file never runs as script on Satchel's pages, even when something puts a
script element pointing at it into a page: the page's CSP admits only its own nonce."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Error, Page
from tests.conftest import LiveServer

PAYLOAD = b"window.__uploaded_script_ran = true;"


def test_a_script_element_pointing_at_an_upload_is_refused(
    live_server: LiveServer, page: Page
) -> None:
    result = httpx.post(
        live_server.url + "/upload",
        files={"files": ("evil.js", PAYLOAD, "application/javascript")},
    ).json()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    page.goto(live_server.url + "/login")
    ran = page.evaluate(
        """(src) => new Promise((resolve) => {
            document.addEventListener("securitypolicyviolation", () => resolve("refused"));
            const script = document.createElement("script");
            script.src = src;
            script.onload = () => resolve(window.__uploaded_script_ran ? "ran" : "loaded");
            script.onerror = () => resolve("refused");
            document.body.appendChild(script);
            setTimeout(() => resolve("timeout"), 5000);
        })""",
        result["download_url"],
    )
    assert ran == "refused"
    assert page.evaluate("window.__uploaded_script_ran === undefined")
    # A same-origin style sheet from an upload is refused the same way.
    styled = page.evaluate(
        """(href) => new Promise((resolve) => {
            const link = document.createElement("link");
            link.rel = "stylesheet";
            link.href = href;
            link.onload = () => resolve("loaded");
            link.onerror = () => resolve("refused");
            document.head.appendChild(link);
            setTimeout(() => resolve("timeout"), 5000);
        })""",
        result["download_url"],
    )
    assert styled == "refused"


def test_an_uploaded_html_page_is_a_download_not_a_page(
    live_server: LiveServer, page: Page
) -> None:
    html = b"<script>window.__uploaded_page_ran = true;</script><p>hello</p>"
    result = httpx.post(
        live_server.url + "/upload", files={"files": ("page.html", html, "text/html")}
    ).json()
    # Chromium reports a navigation that turns into a download as a failed navigation.
    with page.expect_download() as download, pytest.raises(Error, match="Download is starting"):
        page.goto(result["download_url"])
    assert download.value.suggested_filename == "page.html"
    assert page.evaluate("window.__uploaded_page_ran === undefined")
