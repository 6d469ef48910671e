"""`satchel admin rotate-keys` on the data folder of a server with two workers while clients
upload and download without pause: no download fails, during or after; then `retire-keys`
leaves the key file with the primary key alone and every file still downloads byte-exact."""

from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from tests.reliability.conftest import StartServer
from tests.reliability.harness import Server, uuid_of

RUN_FOR = 6.0  # seconds of traffic
ROTATE_AT = (2.0, 4.0)  # seconds into the traffic
SIZES = (10_000, 200_000, 1_100_000)  # read in the event loop, in one hop, streamed


@dataclass
class Traffic:
    server: Server
    files: dict[str, bytes] = field(default_factory=dict)
    download_failures: list[str] = field(default_factory=list)
    upload_failures: list[str] = field(default_factory=list)
    downloads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def upload(self, client: httpx.Client, content: bytes) -> None:
        response = client.post("/upload", files={"files": ("rotating.bin", content)})
        if response.status_code != 200:
            with self.lock:
                self.upload_failures.append(f"{response.status_code} {response.text[:100]}")
            return
        with self.lock:
            self.files[uuid_of(response.json())] = content

    def download(self, client: httpx.Client, uuid: str, when: str) -> None:
        response = client.get(f"/f/{uuid}")
        with self.lock:
            self.downloads += 1
            if response.status_code != 200:
                failure = f"{response.status_code} {response.text[:100]}"
            elif response.content != self.files[uuid]:
                failure = "not byte-exact"
            else:
                return
            self.download_failures.append(f"{when}: {uuid}: {failure}")

    def run(self, until: float, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.server.url, timeout=30) as client:
            while time.monotonic() < until:
                if rng.random() < 0.25:  # mostly downloads: they are what rotation breaks
                    self.upload(client, os.urandom(rng.choice(SIZES)))
                with self.lock:
                    uuid = rng.choice(list(self.files))
                self.download(client, uuid, "during")

    def check_all(self, when: str) -> None:
        """Downloads every file, a few at a time."""
        with (
            httpx.Client(base_url=self.server.url, timeout=30) as client,
            ThreadPoolExecutor(4) as pool,
        ):
            list(pool.map(lambda uuid: self.download(client, uuid, when), list(self.files)))

    def check(self, when: str) -> None:
        failures = self.download_failures
        if failures:
            shown = "\n".join(failures[:8])
            pytest.fail(f"{when}, {len(failures)} of {self.downloads} downloads failed:\n{shown}")


def master_keys(server: Server) -> list[str]:
    lines = (line.strip() for line in (server.data / "master.keys").read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_rotation_while_serving_then_retiring_the_old_keys(start_server: StartServer) -> None:
    server = start_server(workers=2)
    traffic = Traffic(server)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for size in SIZES * 2:
            traffic.upload(client, os.urandom(size))
    started = time.monotonic()
    clients = [
        threading.Thread(target=traffic.run, args=(started + RUN_FOR, seed), daemon=True)
        for seed in range(3)
    ]
    for thread in clients:
        thread.start()
    rotations = []
    for at in ROTATE_AT:
        time.sleep(max(0.0, started + at - time.monotonic()))
        rotations.append(server.admin("rotate-keys"))
    for thread in clients:
        thread.join(RUN_FOR + 60)
    for done in rotations:
        assert done.returncode == 0, f"rotate-keys failed:\n{done.stdout}{done.stderr}"
    assert len(master_keys(server)) == 1 + len(ROTATE_AT)
    traffic.check("during the rotations")
    traffic.check_all("after the rotations")
    traffic.check("after the rotations")
    assert not traffic.upload_failures, f"uploads failed: {traffic.upload_failures[:8]}"

    retired = server.admin("retire-keys")
    assert retired.returncode == 0, (
        f"retire-keys exited {retired.returncode}:\n{retired.stdout}{retired.stderr}"
    )
    assert len(master_keys(server)) == 1, "the key file still holds more than the primary key"
    traffic.check_all("after retire-keys")
    traffic.check("after retire-keys")
