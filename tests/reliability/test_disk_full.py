"""The blob storage on a small tmpfs that fills up mid-write: the client gets 507 (or a failed
import with a reason), nothing partial stays behind, and once there is room again uploads work.

SATCHEL_MIN_FREE_SPACE=0 turns off the reserve, so the disk really runs full while writing
instead of the free-space check refusing first; bodies are sent without Content-Length (the
check has no size to go by) or the disk is filled after the up-front check."""

from __future__ import annotations

import base64
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from tests.reliability.conftest import MountDisk, StartServer
from tests.reliability.harness import (
    TUS,
    Origin,
    Server,
    multipart,
    staged_size,
    tus_blob_key,
    tus_create,
    tus_patch,
    tus_rows,
    upload,
    uuid_of,
    v2_login,
)

MiB = 1 << 20


def full_disk_server(start_server: StartServer, disk: Path, **env: str) -> Server:
    return start_server(
        SATCHEL_STORAGE=f"local:{disk / 'store'}", SATCHEL_MIN_FREE_SPACE="0", **env
    )


def fill(disk: Path, leave: int) -> Path:
    """Fills the disk, outside the store, until ``leave`` bytes are free."""
    filler = disk / "filler.bin"
    room = shutil.disk_usage(disk).free - leave
    with filler.open("wb") as out:
        while room > 0:
            room -= out.write(b"\0" * min(room, MiB))
    return filler


def assert_nothing_partial(server: Server, blobs_before: dict[str, int]) -> None:
    temp = server.temp_files()
    assert not temp, f"partial temp files left: {[(p.name, p.stat().st_size) for p in temp]}"
    assert server.blobs() == blobs_before, "a blob was added or removed by the failed write"


def assert_still_works(server: Server) -> None:
    content = os.urandom(300_000)
    uuid = uuid_of(upload(server, "after.bin", content))
    assert httpx.get(f"{server.url}/f/{uuid}", timeout=30).content == content


def chunked(pieces: list[bytes]) -> Iterator[bytes]:
    """A body without Content-Length: httpx sends it chunked."""
    for piece in pieces:
        for start in range(0, len(piece), 256 * 1024):
            yield piece[start : start + 256 * 1024]


def test_upload_bigger_than_the_free_space_is_507(
    small_disk: MountDisk, start_server: StartServer
) -> None:
    disk = small_disk(6)
    server = full_disk_server(start_server, disk)
    upload(server, "before.bin", os.urandom(100_000))
    blobs = server.blobs()
    boundary, pieces = multipart([("files", "too-big.bin", os.urandom(10 * MiB))])
    response = httpx.post(
        server.url + "/upload",
        content=chunked(pieces),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=60,
    )
    assert response.status_code == 507, f"{response.status_code} {response.text[:300]}"
    assert "error" in response.json(), response.text
    assert_nothing_partial(server, blobs)
    assert_still_works(server)


def test_tus_patch_past_the_free_space_is_507(
    small_disk: MountDisk, start_server: StartServer
) -> None:
    disk = small_disk(10)
    server = full_disk_server(start_server, disk)
    data = os.urandom(5 * MiB + 11)
    url = tus_create(server, len(data), "tus-too-big.bin")  # fits when created
    key = tus_blob_key(server, url)
    blobs = server.blobs()
    filler = fill(disk, leave=2 * MiB)
    response = tus_patch(url, 0, data)
    assert response.status_code == 507, f"{response.status_code} {response.text[:300]}"
    assert_nothing_partial(server, blobs)
    # The upload either goes on from what the server acknowledged, or is gone with its data.
    uploads = tus_rows(server)
    staged = server.staged()
    if key in uploads and uploads[key][0] == "uploading":
        offset = uploads[key][1]
        assert staged.get(key) == staged_size(offset), f"staged {staged.get(key)}, offset {offset}"
    else:
        assert key not in staged, "the failed upload's staged blob is still there"
    filler.unlink()
    assert_still_works(server)
    head = httpx.head(url, headers=TUS, timeout=10)
    if head.status_code == 200:
        offset = int(head.headers["upload-offset"])
        assert tus_patch(url, offset, data[offset:]).status_code == 204
        result = httpx.get(url + "/result", timeout=30).json()
        assert httpx.get(result["download_url"], timeout=30).content == data


def import_status(server: Server, auth: dict[str, str], item: int) -> dict[str, Any]:
    answer = httpx.post(
        server.url + "/api/v2/file/url_upload_status",
        data={**auth, "scheduled_item_id": str(item)},
        timeout=30,
    ).json()
    data: dict[str, Any] = answer["data"]
    return data


def finished_import(server: Server, auth: dict[str, str], item: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = import_status(server, auth, item)
        if status["status"] not in ("pending", "downloading"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"the URL import did not end in 30 s: {status}")


def test_url_import_bigger_than_the_free_space_fails_with_a_reason(
    small_disk: MountDisk, start_server: StartServer
) -> None:
    disk = small_disk(6)
    origin = Origin({"big.bin": os.urandom(10 * MiB)})
    try:
        server = full_disk_server(start_server, disk, SATCHEL_URL_IMPORT_ALLOWED_HOSTS=origin.host)
        auth = v2_login(server, "importer")
        blobs = server.blobs()
        encoded = base64.b64encode(origin.url("big.bin").encode()).decode()
        added = httpx.post(
            server.url + "/api/v2/file/url_upload_add",
            data={**auth, "file_url_base64": encoded},
            timeout=30,
        ).json()
        assert added["_status"] == "success", added
        status = finished_import(server, auth, added["data"]["scheduled_item_id"])
    finally:
        origin.close()
    assert status["status"] == "failed", status
    error = status["error"] or ""
    assert re.search(r"full|space", error, re.IGNORECASE), f"no storage-full reason: {error!r}"
    assert_nothing_partial(server, blobs)
    assert_still_works(server)
