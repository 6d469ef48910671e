"""Against a real `satchel serve` with real clients: concurrency, curl, no plaintext on disk."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tests.conftest import LiveServer


def test_twenty_simultaneous_downloads_of_a_one_time_file(live_server: LiveServer) -> None:
    data = os.urandom(2 * 1024 * 1024)
    result = httpx.post(
        live_server.url + "/upload",
        files={"files": ("once.bin", data)},
        data={"max_downloads": "1"},
    )
    url = result.json()["download_url"]

    def fetch(_: int) -> tuple[int, bytes]:
        response = httpx.get(url, timeout=60)
        return response.status_code, response.content

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(fetch, range(20)))
    statuses = sorted(status for status, _ in outcomes)
    assert statuses == [200] + [410] * 19
    assert next(body for status, body in outcomes if status == 200) == data
    assert httpx.get(url).status_code == 410


def test_curl_upload_and_download_with_its_saved_name(
    live_server: LiveServer, tmp_path: Path
) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(b"curl round trip\n")
    out = subprocess.run(
        ["curl", "-sS", "-X", "POST", f"{live_server.url}/upload", "-F", f"files=@{source}"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    url = httpx.Response(200, content=out.stdout).json()["download_url"]
    target = tmp_path / "downloads"
    target.mkdir()
    subprocess.run(["curl", "-sS", "-O", "-J", url], cwd=target, check=True, timeout=60)
    assert (target / "notes.txt").read_bytes() == b"curl round trip\n"


def test_no_plaintext_in_the_data_folder(live_server: LiveServer) -> None:
    marker = b"SATCHEL-PLAINTEXT-MARKER-" + os.urandom(8).hex().encode()
    body = marker * 40_000 + b"tail"
    for name in ("marker.txt", "second.txt"):
        response = httpx.post(live_server.url + "/upload", files={"files": (name, body)})
        assert response.status_code == 200
    bundle = httpx.post(
        live_server.url + "/upload",
        files=[("files", ("a.txt", body)), ("files", ("b.txt", body))],
    )
    assert bundle.status_code == 200
    found = subprocess.run(
        ["grep", "-rl", "--binary-files=text", marker.decode(), str(live_server.data_dir)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert found.stdout == b"", found.stdout
    assert found.returncode == 1


def test_access_log_shows_requests(live_server: LiveServer) -> None:
    httpx.get(live_server.url + "/healthz")
    assert "/healthz" in live_server.log_text()


def test_readyz(live_server: LiveServer) -> None:
    response = httpx.get(live_server.url + "/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_options_sent_before_the_file_are_refused_before_the_body_is_read(
    live_server: LiveServer, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        for _ in range(64):
            out.write(os.urandom(1 << 20))
    for field, status in (
        ("is_temp=false", "401"),
        ("expires=never", "400"),
        ("max_downloads=-2", "400"),
    ):
        result = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}", "-F", field,
             "-F", f"files=@{big}", f"{live_server.url}/upload"],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        code, sent = result.stdout.split()
        assert code == status, field
        assert float(sent) < 32 * (1 << 20), f"{field}: the server read {sent} bytes first"


def test_links_name_the_served_port_when_no_public_url_is_set(tmp_path: Path) -> None:
    """`make run PORT=8899` (satchel serve --port 8899) with no SATCHEL_PUBLIC_URL: every link
    the server gives points at 8899, where it listens, not at the default 8000."""
    import sys
    import time

    from tests.conftest import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATCHEL_")}
    env["SATCHEL_DATA_DIR"] = str(tmp_path / "data")
    satchel = Path(sys.executable).with_name("satchel")
    command = [str(satchel), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        answer = httpx.post(base + "/upload", files={"files": ("a.txt", b"x")}).json()
        assert answer["download_url"].startswith(base + "/f/")
        assert httpx.get(answer["download_url"]).content == b"x"
    finally:
        process.terminate()
        process.wait(timeout=30)
