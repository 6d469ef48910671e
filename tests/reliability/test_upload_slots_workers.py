"""A package's concurrent_uploads holds across the workers of one ``satchel serve``: while one
upload of a user is running, another is refused whichever worker takes it."""

from __future__ import annotations

from pathlib import Path

import httpx
from tests.reliability.conftest import StartServer
from tests.reliability.harness import multipart, raw_request, wait_for

ATTEMPTS = 8  # new connections: the workers take turns accepting them


def test_a_second_upload_is_refused_on_every_worker(
    start_server: StartServer, tmp_path: Path
) -> None:
    config = tmp_path / "one-at-a-time.toml"
    config.write_text("[satchel.packages.free]\nconcurrent_uploads = 1\n")
    server = start_server(workers=2, SATCHEL_CONFIG=str(config))
    server.admin("create-user", "alice", "--password", "password1")
    created = server.admin("create-api-key", "alice", "--permissions", "write")
    key = created.stdout.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {key}"}

    boundary, pieces = multipart([("files", "slow.bin", b"s" * (4 << 20))])
    body = b"".join(pieces)
    headers = {
        **auth,
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(body)),
    }
    with raw_request(server, "POST", "/apiv1/upload", headers) as slow:
        slow.send(body[: 1 << 20])  # the upload is under way, and waits for the rest
        wait_for(
            lambda: server.query("SELECT count(*) FROM upload_slots")[0][0] == 1,
            10,
            "the first upload to take its slot",
        )
        refused = []
        for _ in range(ATTEMPTS):
            answer = httpx.post(
                f"{server.url}/apiv1/upload",
                files={"files": ("second.txt", b"second")},
                headers=auth,
                timeout=30,
            )
            refused.append((answer.status_code, answer.json().get("error", "")))
        assert all(status == 429 for status, _ in refused), refused
        assert all("at most 1" in error for _, error in refused), refused
        slow.send(body[1 << 20 :])
        reply = slow.sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 201"), reply[:200]
    wait_for(
        lambda: server.query("SELECT count(*) FROM upload_slots")[0][0] == 0,
        10,
        "the slot to be given back",
    )
    after = httpx.post(
        f"{server.url}/apiv1/upload", files={"files": ("third.txt", b"third")}, headers=auth
    )
    assert after.status_code == 201, after.text
