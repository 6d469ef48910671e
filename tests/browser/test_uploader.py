"""The uploader in Chromium: drag and drop with progress, a ZIP of two files, a large upload
through tus cut off in the middle and resumed (also after a reload), and the public API's JS
example run unchanged in one of Satchel's pages."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from playwright.sync_api import Page, Route
from tests.browser.conftest import screenshots
from tests.conftest import LiveServer

EXAMPLES = Path(__file__).parents[1] / "spec_examples"
MiB = 1024 * 1024

# Two files dropped on the page, as a person drags them from a file manager (the drop carries
# a DataTransfer with File objects; the page's listener is on the document).
DROP = """([first, second]) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([new Uint8Array(first.size).fill(7)], first.name));
    transfer.items.add(new File([new TextEncoder().encode(second.text)], second.name));
    const zone = document.getElementById("dropzone");
    for (const type of ["dragenter", "dragover", "drop"]) {
        zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true}));
    }
}"""

# Every text the overall progress line shows, in order.
WATCH_PROGRESS = """() => {
    window.__progress = [];
    const line = document.getElementById("overall-text");
    new MutationObserver(() => window.__progress.push(line.textContent))
        .observe(line, {childList: true, characterData: true, subtree: true});
}"""


def test_two_dropped_files_upload_as_one_zip_with_progress(
    live_server: LiveServer, page: Page
) -> None:
    page.goto(live_server.url + "/")
    screenshots(page, "upload")
    # A link of 4 MB/s, so that the progress has time to show (loopback is too fast for it).
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    conditions = {"offline": False, "latency": 0, "downloadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", {**conditions, "uploadThroughput": 4_000_000})
    page.evaluate(WATCH_PROGRESS)
    big = {"name": "photo.raw", "size": 6 * MiB}
    page.evaluate(DROP, [big, {"name": "notes.txt", "text": "dropped notes"}])
    assert page.locator("#queue li").count() == 2
    page.get_by_role("button", name="Upload", exact=True).click()
    card = page.locator(".result").first
    card.wait_for(timeout=30_000)
    seen = page.evaluate("window.__progress")
    # Progress was shown on the way, not only at the end.
    assert any(" of 6 MB" in text and not text.startswith("6 MB") for text in seen), seen
    assert card.locator(".result-name").text_content() == "files.zip"
    assert "2 files in one ZIP" in (card.locator(".result-meta").text_content() or "")
    download = card.get_by_label("Download link", exact=True).input_value()
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(download).content))
    assert archive.namelist() == ["photo.raw", "notes.txt"]
    assert archive.read("photo.raw") == bytes([7]) * big["size"]
    assert archive.read("notes.txt") == b"dropped notes"
    share = card.get_by_label("Share link", exact=True).input_value()
    assert share.startswith(live_server.url + "/d/")
    assert card.locator("img.qr").get_attribute("src", timeout=1000) is not None
    screenshots(page, "upload-result")


def make_file(path: Path, size: int) -> str:
    """A file of random bytes, written in pieces; its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            piece = os.urandom(min(left, 4 * MiB))
            digest.update(piece)
            out.write(piece)
            left -= len(piece)
    return digest.hexdigest()


def sha256_of(url: str) -> str:
    digest = hashlib.sha256()
    with httpx.stream("GET", url, timeout=60) as response:
        assert response.status_code == 200
        for piece in response.iter_bytes():
            digest.update(piece)
    return digest.hexdigest()


def test_a_large_upload_survives_a_cut_connection_and_a_reload(
    live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    path = tmp_path / "video.mp4"
    expected = make_file(path, 300 * MiB)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    patches = {"seen": 0, "stopped": False}

    def cut_the_third_patch(route: Route) -> None:
        if route.request.method == "PATCH":
            patches["seen"] += 1
            if patches["seen"] == 3:
                route.abort("connectionreset")
                return
            if patches["seen"] == 6:  # then the person reloads the page in the middle
                route.abort("connectionreset")
                patches["stopped"] = True
                return
        route.continue_()

    page.goto(live_server.url + "/")
    page.route("**/tus/**", cut_the_third_patch)
    page.set_input_files("#file-input", str(path))
    page.get_by_role("button", name="Upload", exact=True).click()
    for _ in range(600):
        if patches["stopped"]:
            break
        page.wait_for_timeout(100)
    assert patches["stopped"]
    page.unroute("**/tus/**")
    page.reload()
    # The page remembers the unfinished upload and says how to go on.
    notice = page.locator("#resume-notice")
    notice.wait_for(state="visible")
    assert "video.mp4" in (notice.text_content() or "")
    page.set_input_files("#file-input", str(path))
    page.get_by_role("button", name="Upload", exact=True).click()
    card = page.locator(".result").first
    card.wait_for(timeout=120_000)
    created = [r for r in requests if r.startswith("POST ") and "/tus/" in r]
    assert len(created) == 1, created  # one upload, resumed twice: never started over
    assert any(r.startswith("HEAD ") for r in requests)
    download = card.get_by_label("Download link", exact=True).input_value()
    assert sha256_of(download) == expected
    assert (
        page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('satchel.tus.'))") == []
    )


def test_the_documented_js_example_runs_in_a_satchel_page(
    live_server: LiveServer, page: Page
) -> None:
    """encryptAndUpload from the public API's examples, verbatim, against /upload."""
    snippet = (EXAMPLES / "encrypt_and_upload.js").read_text()
    page.goto(live_server.url + "/")
    uploaded = page.evaluate(
        f"""async () => {{
            {snippet}
            const file = new File([new TextEncoder().encode("from a Satchel page")], "note.txt");
            return await encryptAndUpload(file, "pw");
        }}"""
    )
    encrypted = httpx.get(f"{live_server.url}/f/{uploaded['file_id']}/encrypted")
    salt = bytes(int(b) for b in encrypted.headers["x-e2e-salt"].split(","))
    iv = bytes(int(b) for b in encrypted.headers["x-e2e-iv"].split(","))
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=100000)
    assert AESGCM(kdf.derive(b"pw")).decrypt(iv, encrypted.content, None) == b"from a Satchel page"


def test_a_hostile_file_name_stays_text_everywhere_it_is_shown(
    live_server: LiveServer, page: Page
) -> None:
    name = '<img src=x onerror="window.__name_ran=1">.html'
    page.goto(live_server.url + "/")
    page.set_input_files(
        "#file-input",
        files=[{"name": name, "mimeType": "text/html", "buffer": b"<script>window.__x=1</script>"}],
    )
    assert page.locator("#queue .name").text_content() == name
    page.get_by_role("button", name="Upload", exact=True).click()
    card = page.locator(".result").first
    card.wait_for(timeout=30_000)
    assert card.locator(".result-name").text_content() == name
    manage = card.get_by_label("Management link (keep it to yourself)", exact=True).input_value()
    page.goto(manage)
    assert page.locator("h1").text_content() == name
    assert page.evaluate("window.__name_ran === undefined && window.__x === undefined")
