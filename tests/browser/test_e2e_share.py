"""End-to-end encrypted shares across the CLI and Chromium, both ways: a file the CLI
encrypted opens from its /d/ link (#k= or a password) and is decrypted and saved by the
browser, through the service worker or from a Blob; a file the browser encrypted with e2e.js
(uploaded by tus and by /upload) is decrypted byte-exact by ``satchel download``. Neither
the key nor the password ever reaches the server."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page
from tests.browser.conftest import screenshots
from tests.conftest import LiveServer

from satchel.crypto import e2e


def satchel(live_server: LiveServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SATCHEL_", "XDG_"))}
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    env.update({"HOME": str(home), "SATCHEL_URL": live_server.url})
    return subprocess.run(
        [sys.executable, "-m", "satchel.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def cli_upload(live_server: LiveServer, tmp_path: Path, *args: str) -> dict[str, Any]:
    done = satchel(live_server, tmp_path, "upload", "--json", *args)
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["uploads"]
    return dict(result)


def save_download(page: Page, tmp_path: Path, name: str) -> bytes:
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name="Download").click()
    path = tmp_path / name
    info.value.save_as(path)
    return path.read_bytes()


def wait_worker(page: Page) -> None:
    page.wait_for_function("() => navigator.serviceWorker.ready.then(() => true)")


def test_cli_e2e_upload_opens_and_saves_in_the_browser(
    live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    (tmp_path / "report 2026.pdf").write_bytes(data)
    result = cli_upload(live_server, tmp_path, "report 2026.pdf", "--e2e")
    link = result["share_link"]
    assert link.startswith(live_server.url + "/d/")
    assert "#k=" in link
    human = satchel(live_server, tmp_path, "upload", "report 2026.pdf", "--e2e")
    assert "share:" in human.stdout
    assert "/d/" in human.stdout

    page.goto(link)
    wait_worker(page)
    screenshots(page, "share-e2e")
    got = save_download(page, tmp_path, "saved.pdf")
    assert got == data
    # A function, not an expression: Playwright evals the text once, then polls the function;
    # an expression is evaled again at each poll, which the page's CSP (no unsafe-eval) refuses.
    page.wait_for_function("() => document.getElementById('e2e').dataset.state === 'done'")
    assert page.locator("#e2e-name").text_content() == "report 2026.pdf"
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    _, key = e2e.parse_link(link)
    assert key is not None
    log = live_server.log_text()
    assert e2e.key_to_fragment(key)[2:] not in log
    # Fetched by the service worker (the access line names the route, never the file's id).
    assert '"route": "/f/{public_id}/encrypted", "status": 200' in log


def test_password_e2e_share_asks_again_after_a_wrong_password(
    live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    data = b"minutes of the meeting\n" * 1000
    (tmp_path / "minutes.txt").write_bytes(data)
    result = cli_upload(live_server, tmp_path, "minutes.txt", "--e2e-password", "correct horse")
    assert result["share_link"].endswith("#p")
    page.goto(result["share_link"])
    wait_worker(page)
    field = page.get_by_label("Password")
    field.fill("wrong horse")
    page.get_by_role("button", name="Download").click()
    page.get_by_text("Wrong password").wait_for(timeout=30_000)
    field.fill("correct horse")
    assert save_download(page, tmp_path, "minutes.txt") == data
    assert "correct horse" not in live_server.log_text()


def test_without_a_worker_a_small_file_is_saved_from_a_blob(
    live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    data = os.urandom(5000)
    (tmp_path / "b.bin").write_bytes(data)
    link = cli_upload(live_server, tmp_path, "b.bin", "--e2e")["share_link"]
    _, key = e2e.parse_link(link)
    assert key is not None
    page.goto(link)
    with page.expect_download(timeout=30_000) as info:
        page.evaluate(
            """async (hex) => {
                const m = await import("/static/js/share-e2e.js");
                const key = Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
                await m.saveWithBlob({ key });
            }""",
            key.hex(),
        )
    assert info.value.suggested_filename == "b.bin"
    info.value.save_as(tmp_path / "blob.bin")
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_a_link_that_lost_its_key_says_so(
    live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    (tmp_path / "c.bin").write_bytes(b"c" * 100)
    link = cli_upload(live_server, tmp_path, "c.bin", "--e2e")["share_link"]
    page.goto(link.split("#")[0] + "#k=broken")
    page.get_by_text("the link's key is not valid", exact=False).wait_for()
    assert page.get_by_role("button", name="Download").is_disabled()


ENCRYPT_AND_UPLOAD = """async ({ data, name, via }) => {
  const m = await import("/static/js/e2e.js");
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const file = new File([bytes], name, { type: "application/pdf" });
  const key = m.newKey();
  const writer = await m.encryptor(file, file.name, file.type, { key }, 64 * 1024);
  let result;
  if (via === "upload") {
    const parts = [];
    for await (const piece of writer.chunks()) parts.push(piece);
    const form = new FormData();
    form.append("e2e", "v1");
    form.append("files", new Blob(parts, { type: "application/octet-stream" }), "file.se2e");
    result = await (await fetch("/upload", { method: "POST", body: form })).json();
  } else {
    const meta = ["filename " + btoa("file.se2e"), "filetype " + btoa("application/octet-stream"),
                  "e2e " + btoa("v1")].join(",");
    const created = await fetch("/tus/", { method: "POST", headers: {
      "Tus-Resumable": "1.0.0", "Upload-Length": String(writer.size), "Upload-Metadata": meta } });
    const url = created.headers.get("Location");
    const piece = 100000;  // not aligned with the chunks: read() seals what each range needs
    for (let at = 0; at < writer.size; at += piece) {
      const body = await writer.read(at, at + piece);
      const sent = await fetch(url, { method: "PATCH", body, headers: {
        "Tus-Resumable": "1.0.0", "Upload-Offset": String(at),
        "Content-Type": "application/offset+octet-stream" } });
      if (sent.status !== 204) throw new Error("PATCH " + sent.status);
    }
    result = await (await fetch(url + "/result", { headers: { "Tus-Resumable": "1.0.0" } })).json();
  }
  return { result, link: m.shareLink(result.share_url, key), size: writer.size };
}"""


@pytest.mark.parametrize("via", ["tus", "upload"])
def test_browser_encrypted_upload_decrypts_with_the_cli(
    live_server: LiveServer, page: Page, tmp_path: Path, via: str
) -> None:
    data = os.urandom(250_000)  # four 64 KiB chunks
    page.goto(live_server.url + "/")
    done = page.evaluate(
        ENCRYPT_AND_UPLOAD,
        {"data": base64.b64encode(data).decode(), "name": "plan ü.pdf", "via": via},
    )
    result, link = done["result"], done["link"]
    assert result["e2e"]
    assert result["name"] == "file.se2e"
    assert done["size"] == e2e.encrypted_size(
        len(data), 64 * 1024, e2e.metadata_size("plan ü.pdf", "application/pdf", len(data))
    )
    got = satchel(live_server, tmp_path, "download", link, "-o", "out/", "--json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["name"] == "plan ü.pdf"
    assert (tmp_path / "out" / "plan ü.pdf").read_bytes() == data
    _, key = e2e.parse_link(link)
    assert key is not None
    assert e2e.key_to_fragment(key)[2:] not in live_server.log_text()


def test_an_e2e_share_opened_in_another_context_needs_its_own_key(
    live_server: LiveServer, context: BrowserContext, tmp_path: Path
) -> None:
    (tmp_path / "d.bin").write_bytes(b"d" * 2000)
    link = cli_upload(live_server, tmp_path, "d.bin", "--e2e")["share_link"]
    page = context.new_page()
    page.goto(link.split("#")[0])
    assert page.get_by_label("Password").is_visible()
    page.get_by_text("This link has no key", exact=False).wait_for()


def test_cli_downloads_share_links_of_plain_files(live_server: LiveServer, tmp_path: Path) -> None:
    data = os.urandom(20_000)
    (tmp_path / "plain.bin").write_bytes(data)
    result = cli_upload(live_server, tmp_path, "plain.bin", "--password", "pw 123")
    assert result["share_link"] == result["share_url"]
    assert "/d/" in result["share_link"]
    got = satchel(
        live_server,
        tmp_path,
        "download",
        result["share_link"],
        "-o",
        "p.bin",
        "--password",
        "pw 123",
    )
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "p.bin").read_bytes() == data
