"""Real tus clients against a live ``satchel serve``: tuspy (Python) and tus-js-client (run
under Node by tests/js/tus_upload.mjs). `make test` installs both; when either is missing
these tests fail rather than skip."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer

MiB = 1 << 20
JS_DIR = Path(__file__).parent / "js"
JS_SCRIPT = JS_DIR / "tus_upload.mjs"
TUS = {"Tus-Resumable": "1.0.0"}


def random_file(tmp_path: Path, size: int, name: str = "upload.bin") -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def result_of(upload_url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = httpx.get(f"{upload_url}/result", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def download(url: str, headers: dict[str, str] | None = None) -> bytes:
    response = httpx.get(url, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response.content


def server_offset(upload_url: str) -> int:
    response = httpx.head(upload_url, headers=TUS, timeout=30)
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


def user_key(server: LiveServer, name: str) -> str:
    server.admin("create-user", name, "--password", "password1")
    return server.admin("create-api-key", name, "--permissions", "write,read,download")


# -- tuspy -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tusclient() -> Any:
    try:
        import tusclient.client
    except ImportError:
        pytest.fail("tuspy is not installed: `make test` installs the dev dependencies")
    return tusclient.client


def test_tuspy_uploads_in_odd_chunks(live_server: LiveServer, tusclient: Any) -> None:
    data = os.urandom(3 * MiB + 4567)
    client = tusclient.TusClient(live_server.url + "/tus/")
    uploader = client.uploader(
        file_stream=io.BytesIO(data), chunk_size=MiB + 1, metadata={"filename": "tuspy.bin"}
    )
    uploader.upload()
    assert uploader.offset == len(data)
    result = result_of(uploader.url)
    assert result["name"] == "tuspy.bin"
    assert result["size"] == len(data)
    # The last PATCH answered with the file's links, as /tus/{id}/result does.
    assert uploader.request.response_headers["satchel-download-url"] == result["download_url"]
    assert download(result["download_url"]) == data


def test_tuspy_with_checksums(live_server: LiveServer, tusclient: Any) -> None:
    data = os.urandom(2 * MiB + 3)
    client = tusclient.TusClient(live_server.url + "/tus/")
    uploader = client.uploader(
        file_stream=io.BytesIO(data),
        chunk_size=700_001,
        metadata={"filename": "checked.bin"},
        upload_checksum=True,  # sha1 of each chunk in Upload-Checksum
    )
    uploader.upload()
    assert download(result_of(uploader.url)["download_url"]) == data


def test_tuspy_interrupted_upload_resumes_with_a_new_uploader(
    live_server: LiveServer, tusclient: Any
) -> None:
    data = os.urandom(4 * MiB + 999)
    chunk = MiB + 1
    client = tusclient.TusClient(live_server.url + "/tus/")
    first = client.uploader(
        file_stream=io.BytesIO(data), chunk_size=chunk, metadata={"filename": "resumed.bin"}
    )
    first.upload_chunk()
    first.upload_chunk()
    assert server_offset(first.url) == 2 * chunk

    # As after a restart: a new uploader knows only the URL, and asks the server the offset.
    second = client.uploader(file_stream=io.BytesIO(data), url=first.url, chunk_size=chunk)
    assert second.offset == 2 * chunk
    second.upload()
    assert download(result_of(first.url)["download_url"]) == data


def test_tuspy_user_upload_with_a_bearer_key(live_server: LiveServer, tusclient: Any) -> None:
    auth = {"Authorization": f"Bearer {user_key(live_server, 'tuspy-user')}"}
    data = os.urandom(MiB + 5)
    client = tusclient.TusClient(live_server.url + "/tus/", headers=auth)
    uploader = client.uploader(
        file_stream=io.BytesIO(data),
        chunk_size=MiB // 2 + 1,
        metadata={"filename": "mine.bin", "max_downloads": "5"},
    )
    uploader.upload()
    # The upload is the user's: not even its result is shown to a guest.
    assert httpx.get(f"{uploader.url}/result", timeout=30).status_code == 403
    assert download(result_of(uploader.url, auth)["download_url"]) == data


def test_checksum_mismatch_is_460_then_tuspy_finishes(
    live_server: LiveServer, tusclient: Any
) -> None:
    data = os.urandom(MiB + 321)
    client = tusclient.TusClient(live_server.url + "/tus/")
    uploader = client.uploader(file_stream=io.BytesIO(data), chunk_size=MiB, upload_checksum=True)
    uploader.set_url(uploader.create_url())  # real client: creation

    # Raw request (tuspy never sends a wrong checksum): a PATCH whose Upload-Checksum does not
    # match its body.
    wrong = base64.b64encode(hashlib.sha1(b"other bytes", usedforsecurity=False).digest()).decode()
    rejected = httpx.patch(
        uploader.url,
        content=data[:MiB],
        headers={
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
            "Upload-Checksum": f"sha1 {wrong}",
        },
        timeout=60,
    )
    assert rejected.status_code == 460
    assert server_offset(uploader.url) == 0

    # Real client again: the whole file, with correct checksums.
    uploader.upload()
    assert download(result_of(uploader.url)["download_url"]) == data


# -- tus-js-client under Node ---------------------------------------------------------------


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("Node.js is not installed: tests/test_tus_clients.py runs tus-js-client on it")
    if not (JS_DIR / "node_modules" / "tus-js-client" / "package.json").is_file():
        pytest.fail(
            "tus-js-client is not installed: run `make test`, or `npm ci --prefix tests/js`"
        )
    return found


def run_js(node: str, endpoint: str, file: Path, *options: str) -> dict[str, Any]:
    completed = subprocess.run(
        [node, str(JS_SCRIPT), endpoint, str(file), *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"tus-js-client failed:\n{completed.stderr}"
    outcome: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return outcome


def test_tus_js_client_uploads(live_server: LiveServer, node: str, tmp_path: Path) -> None:
    file, data = random_file(tmp_path, 3 * MiB + 12_345, "js-upload.bin")
    outcome = run_js(node, live_server.url + "/tus/", file)
    assert outcome["status"] == "complete"
    assert outcome["chunks"] == 4  # 1 MiB + 7 bytes at a time
    result = result_of(outcome["url"])
    assert result["name"] == "js-upload.bin"
    assert outcome["headers"]["Satchel-Download-Url"] == result["download_url"]
    assert outcome["headers"]["Satchel-Manage-Url"] == result["manage_url"]
    assert download(result["download_url"]) == data


def test_tus_js_client_aborted_then_resumed_from_its_url_storage(
    live_server: LiveServer, node: str, tmp_path: Path
) -> None:
    file, data = random_file(tmp_path, 4 * MiB + 1, "js-resumed.bin")
    storage = tmp_path / "tus-urls.json"
    endpoint = live_server.url + "/tus/"
    first = run_js(node, endpoint, file, "--url-storage", str(storage), "--abort-after", "2")
    assert first["status"] == "aborted"
    assert first["offset"] == 2 * (MiB + 7)
    assert server_offset(first["url"]) == first["offset"]

    second = run_js(node, endpoint, file, "--url-storage", str(storage), "--resume")
    assert second["status"] == "complete"
    assert second["resumed"] is True
    assert second["url"] == first["url"]
    assert second["chunks"] == 2  # only what was missing was sent
    assert download(result_of(second["url"])["download_url"]) == data


def test_tus_js_client_resumes_a_known_upload_url(
    live_server: LiveServer, node: str, tmp_path: Path
) -> None:
    file, data = random_file(tmp_path, 2 * MiB + 999, "js-url.bin")
    endpoint = live_server.url + "/tus/"
    first = run_js(node, endpoint, file, "--abort-after", "1", "--chunk-size", "777777")
    assert server_offset(first["url"]) == 777_777
    second = run_js(node, endpoint, file, "--upload-url", first["url"])
    assert second["status"] == "complete"
    assert second["url"] == first["url"]
    assert download(result_of(first["url"])["download_url"]) == data


def test_tus_js_client_drive_upload_with_a_bearer_key(
    live_server: LiveServer, node: str, tmp_path: Path
) -> None:
    auth = {"Authorization": f"Bearer {user_key(live_server, 'js-user')}"}
    file, data = random_file(tmp_path, MiB + 33, "js-drive.bin")
    outcome = run_js(
        node,
        live_server.url + "/tus/",
        file,
        "--header",
        f"Authorization: {auth['Authorization']}",
        "--meta",
        "is_temp=false",
    )
    result = result_of(outcome["url"], auth)
    assert result["expires_at"] is None
    drive_file = httpx.get(
        f"{live_server.url}/apiv1/download/{result['drive_file_id']}", headers=auth, timeout=60
    )
    assert drive_file.content == data


# tus-js-client sends no Upload-Checksum (it has no checksum support): checksums are covered
# by the tuspy tests above and by tests/test_tus.py.
