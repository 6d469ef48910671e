"""Two instances behind nginx act as one server: what one stores the other serves, limits and
download counts hold across both, jobs run once, a killed instance loses nothing the other
shows and stops nothing it serves."""

from __future__ import annotations

import itertools
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from redis import Redis
from sqlalchemy import create_engine, text
from tests.multi.conftest import CLUSTER_PREFIX, GUEST_UPLOADS_PER_MINUTE, REDIS_URL, Cluster


def source_address() -> str:
    """A loopback address of its own for one test's client: a rate-limit budget of its own."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def client_from(address: str, **options: Any) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60, **options)


def upload(client: httpx.Client, base: str, content: bytes, **fields: str) -> httpx.Response:
    return client.post(f"{base}/upload", files={"files": ("note.txt", content)}, data=fields)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def query(cluster: Cluster, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(cluster.env["SATCHEL_DATABASE_URL"])
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class SlowUpload:
    """An /apiv1/upload sent by hand to one instance: its headers and the first part of the
    body now, the rest (or nothing) later."""

    def __init__(self, port: int, key: dict[str, str], size: int) -> None:
        boundary = "multitest" + f"{random.getrandbits(64):016x}"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            'filename="slow.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self.body = head + b"s" * size + f"\r\n--{boundary}--\r\n".encode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        request = (
            f"POST /apiv1/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: {key['Authorization']}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.sent = 0

    def send(self, count: int) -> None:
        self.sock.sendall(self.body[self.sent : self.sent + count])
        self.sent += count

    def finish(self) -> bytes:
        self.sock.sendall(self.body[self.sent :])
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        self.sock.close()
        return reply


def user_id(cluster: Cluster, name: str) -> int:
    return int(query(cluster, "SELECT id FROM users WHERE username = :n", n=name)[0][0])


@pytest.fixture
def guest(cluster: Cluster) -> Iterator[httpx.Client]:
    with client_from(source_address()) as client:
        yield client


# -- one server made of two -------------------------------------------------------------------


def test_what_one_instance_stores_the_other_serves_manages_and_deletes(
    cluster: Cluster, guest: httpx.Client
) -> None:
    content = b"stored by a, served by b\n" * 100
    made = upload(guest, cluster.a.url, content, max_downloads="9")
    assert made.status_code == 200, made.text
    result = made.json()
    assert result["download_url"].startswith(cluster.url + "/f/")  # links name nginx
    download = path_of(result["download_url"])
    manage = result["redirect"]

    got = guest.get(cluster.b.url + download)
    assert got.status_code == 200
    assert got.content == content
    changed = guest.post(cluster.b.url + manage, data={"max_downloads": "3", "password": "pw"})
    assert changed.status_code == 200, changed.text
    seen = guest.get(cluster.a.url + manage, headers={"Accept": "application/json"}).json()
    assert (seen["max_downloads"], seen["downloads"], seen["has_password"]) == (3, 1, True)
    assert guest.get(cluster.a.url + download).status_code == 401  # a's view: a password now

    deleted = guest.post(cluster.b.url + manage.replace("/manage/", "/delete/"))
    assert deleted.json() == {"success": True}
    for base in (cluster.a.url, cluster.b.url, cluster.url):
        assert guest.get(base + download, params={"pw": "pw"}).status_code == 404


def test_a_drive_file_uploaded_through_one_is_listed_and_trashed_through_the_other(
    cluster: Cluster,
) -> None:
    key = cluster.api_key("dana")
    with httpx.Client(timeout=60, headers=key) as client:
        made = client.post(f"{cluster.a.url}/apiv1/upload", files={"files": ("d.txt", b"drive")})
        assert made.status_code == 201, made.text
        file_id = made.json()["files"][0]["id"]
        listed = client.get(f"{cluster.b.url}/apiv1/files").json()
        assert [item["id"] for item in listed["files"]] == [file_id]
        assert client.get(f"{cluster.b.url}/apiv1/download/{file_id}").content == b"drive"
        assert client.delete(f"{cluster.b.url}/apiv1/files/{file_id}").status_code == 200
        trash = client.get(f"{cluster.a.url}/apiv1/trash").json()
        assert [item["id"] for item in trash["files"]] == [file_id], trash


def test_a_tus_upload_begun_on_one_instance_is_finished_on_the_other(
    cluster: Cluster, guest: httpx.Client
) -> None:
    tus = {"Tus-Resumable": "1.0.0"}
    data = bytes(range(256)) * 12_000  # 3 MB: the first piece ends inside a sealed chunk
    created = guest.post(
        f"{cluster.a.url}/tus/",
        headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": "filename dC5iaW4="},
    )
    assert created.status_code == 201, created.text
    path = "/tus/" + created.headers["location"].rstrip("/").rsplit("/", 1)[1]
    octets = {**tus, "Content-Type": "application/offset+octet-stream"}
    first = guest.patch(
        cluster.a.url + path, content=data[:1_500_001], headers={**octets, "Upload-Offset": "0"}
    )
    assert first.status_code == 204, first.text
    offset = guest.head(cluster.b.url + path, headers=tus).headers["upload-offset"]
    rest = guest.patch(
        cluster.b.url + path,
        content=data[int(offset) :],
        headers={**octets, "Upload-Offset": offset},
    )
    assert rest.status_code == 204, rest.text
    assert guest.head(cluster.a.url + path, headers=tus).headers["upload-offset"] == str(len(data))
    download = rest.headers["satchel-download-url"]
    assert guest.get(cluster.url + path_of(download)).content == data


# -- limits across both ------------------------------------------------------------------------


def test_a_guest_upload_limit_holds_across_both_instances(cluster: Cluster) -> None:
    with client_from(source_address()) as client:
        bases = [cluster.a.url, cluster.b.url] * 3
        statuses = [upload(client, base, b"x").status_code for base in bases]
    allowed = GUEST_UPLOADS_PER_MINUTE
    assert statuses == [200] * allowed + [429] * (len(bases) - allowed)
    with client_from(source_address()) as client:  # through nginx: round robin over both
        statuses = [upload(client, cluster.url, b"x").status_code for _ in range(allowed + 2)]
    assert statuses == [200] * allowed + [429] * 2


def test_forwarded_for_is_believed_from_nginx_only(cluster: Cluster) -> None:
    allowed = GUEST_UPLOADS_PER_MINUTE

    def spoofed(client: httpx.Client, base: str, number: int) -> int:
        headers = {"X-Forwarded-For": f"203.0.113.{number}"}
        answer = client.post(f"{base}/upload", files={"files": ("a", b"a")}, headers=headers)
        return answer.status_code

    # Through nginx: a header the client made up is replaced by the address nginx saw.
    with client_from(source_address()) as client:
        statuses = [spoofed(client, cluster.url, n) for n in range(allowed + 1)]
    assert statuses == [200] * allowed + [429]
    # ... and that address is believed: another client through the same nginx has its own budget.
    with client_from(source_address()) as other:
        assert upload(other, cluster.url, b"b").status_code == 200
    # Straight to an instance from a machine that is not the proxy: the header is ignored.
    with client_from(source_address()) as client:
        statuses = [spoofed(client, cluster.a.url, n) for n in range(allowed + 1)]
    assert statuses == [200] * allowed + [429]


def test_twenty_simultaneous_downloads_of_a_one_download_file_give_one_200(
    cluster: Cluster, guest: httpx.Client
) -> None:
    content = b"only once\n" * 1000
    made = upload(guest, cluster.url, content, max_downloads="1").json()
    url = cluster.url + path_of(made["download_url"])
    start = threading.Barrier(20)
    answers: list[tuple[int, bytes]] = []

    def fetch() -> None:
        with client_from(source_address()) as client:  # a connection, and a budget, each
            start.wait()
            answer = client.get(url)
            answers.append((answer.status_code, answer.content))

    threads = [threading.Thread(target=fetch) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: 1, 410: 19}, statuses
    assert [body for status, body in answers if status == 200] == [content]


def test_concurrent_uploads_hold_across_both_instances(cluster: Cluster) -> None:
    key = cluster.api_key("alice")  # the free package allows one upload at a time here
    slot_key = f"satchel:slots:user:{user_id(cluster, 'alice')}"
    redis = Redis.from_url(REDIS_URL)
    slow = SlowUpload(cluster.a.port, key, 2 << 20)
    try:
        slow.send(64 << 10)
        wait_for(lambda: redis.zcard(slot_key) == 1, 10, "the slow upload to take its slot")
        with httpx.Client(timeout=60, headers=key) as client:
            for base in (cluster.b.url, cluster.url, cluster.url):
                refused = client.post(f"{base}/apiv1/upload", files={"files": ("t", b"t")})
                assert refused.status_code == 429, refused.text
                assert "at most 1" in refused.json()["error"]
            assert slow.finish().startswith(b"HTTP/1.1 201")
            assert redis.zcard(slot_key) == 0
            after = client.post(f"{cluster.b.url}/apiv1/upload", files={"files": ("t", b"t")})
            assert after.status_code == 201, after.text
    finally:
        redis.close()


# -- jobs --------------------------------------------------------------------------------------


# A log line of a run of the expiry job: its time and its result, wherever they stand on the line.
JOB_RESULT = re.compile(r"job expire_files: (deleted \d+ file\(s\)[^\"]*)")
STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)[,.](\d{3})")


def expiry_runs(cluster: Cluster) -> list[tuple[datetime, str, str]]:
    """Every run of the expiry job in both instances' logs: (time, instance, result)."""
    runs = []
    for instance in cluster.instances:
        for line in instance.log_text().splitlines():
            result, stamp = JOB_RESULT.search(line), STAMP.search(line)
            if result and stamp:
                when = datetime.strptime(" ".join(stamp.groups()), "%Y-%m-%d %H:%M:%S %f")
                runs.append((when, instance.name, result.group(1)))
    return sorted(runs)


def test_the_expiry_job_runs_once_across_both(cluster: Cluster, guest: httpx.Client) -> None:
    made = upload(guest, cluster.url, b"short-lived").json()
    file_uuid = made["download_url"].split("/")[4]
    query(
        cluster,
        "UPDATE files SET expires_at = now() - interval '1 minute' WHERE uuid = :u",
        u=file_uuid,
    )
    gone = "SELECT count(*) FROM files WHERE uuid = :u"
    wait_for(lambda: query(cluster, gone, u=file_uuid)[0][0] == 0, 15, "the expiry job")
    time.sleep(4.5)  # two more intervals: would another instance delete it again?
    runs = expiry_runs(cluster)
    assert [r for r in runs if r[2].startswith("deleted 1 file")] != [], cluster.logs()
    assert len([r for r in runs if not r[2].startswith("deleted 0 file")]) == 1, runs
    # Once per interval (2 s) across both instances, never both in one interval.
    gaps = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(runs)]
    assert gaps, runs
    assert min(gaps) > 1.5, runs


# -- failures ------------------------------------------------------------------------------------


def test_an_instance_killed_mid_upload_leaves_no_file_and_the_other_serves(
    cluster: Cluster, guest: httpx.Client
) -> None:
    key = cluster.api_key("bob")
    kept = upload(guest, cluster.url, b"still here").json()
    kept_url = cluster.url + path_of(kept["download_url"])
    before = query(cluster, "SELECT count(*) FROM files")[0][0]
    slow = SlowUpload(cluster.a.port, key, 40 << 20)
    try:
        slow.send(20 << 20)  # past the first parts: a multipart upload is under way in S3
        slot_key = f"satchel:slots:user:{user_id(cluster, 'bob')}"
        redis = Redis.from_url(REDIS_URL)
        try:
            wait_for(lambda: redis.zcard(slot_key) == 1, 10, "the upload to be under way")
        finally:
            redis.close()
        cluster.a.kill()
    finally:
        slow.sock.close()
    try:
        served = [httpx.get(kept_url, timeout=30) for _ in range(10)]
        assert [r.status_code for r in served] == [200] * 10
        assert {r.content for r in served} == {b"still here"}
        assert query(cluster, "SELECT count(*) FROM files")[0][0] == before
        listed = httpx.get(f"{cluster.url}/apiv1/files", headers=key, timeout=30).json()
        assert listed["files"] == []
        assert upload(guest, cluster.url, b"new").status_code == 200  # b takes the uploads
        # Nothing of the killed upload is visible in the bucket; after the sweep, nothing of it
        # is left either: every object is a file's blob, and no multipart upload is open.
        assert_bucket_holds_only_the_files(cluster)
    finally:
        cluster.a.start()  # the tests after this one have two instances again


def assert_bucket_holds_only_the_files(cluster: Cluster) -> None:
    bucket = cluster.env["SATCHEL_STORAGE"].removeprefix("s3:").split("/")[0]
    client = boto3.client(
        "s3",
        endpoint_url=cluster.env["SATCHEL_S3_ENDPOINT"],
        region_name=cluster.env["SATCHEL_S3_REGION"],
        aws_access_key_id=cluster.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=cluster.env["AWS_SECRET_ACCESS_KEY"],
    )
    blobs = f"{CLUSTER_PREFIX}/blobs/"

    def objects() -> set[str]:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=blobs).get("Contents", [])
        return {item["Key"].removeprefix(blobs) for item in listed}

    known = {row[0] for row in query(cluster, "SELECT blob_key FROM files")}
    assert objects() <= known  # the killed upload never became an object
    # The sweep takes writes older than SATCHEL_TEMP_MAX_AGE (6 h by default) for dead: here
    # a second, while nothing else is being written.
    time.sleep(1.5)
    sweep = subprocess.run(
        [str(Path(sys.executable).with_name("satchel")), "admin", "run-jobs"],
        env={**cluster.env, "SATCHEL_TEMP_MAX_AGE": "1s"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert sweep.returncode == 0, sweep.stderr
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert objects() <= {row[0] for row in query(cluster, "SELECT blob_key FROM files")}


# -- a big upload --------------------------------------------------------------------------------


BIG = 2 << 30  # 2 GiB: about 25 s here (2 cores; docs/deployment.md)
PIECE = 4 << 20


def piece(number: int) -> bytes:
    """Piece ``number`` of the big file: its number, then a fixed pattern."""
    return number.to_bytes(8, "big") + (bytes(range(256)) * (PIECE // 256))[8:]


def big_body(boundary: str) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    for number in range(BIG // PIECE):
        yield piece(number)
    yield f"\r\n--{boundary}--\r\n".encode()


def test_a_two_gib_upload_streams_through_nginx(cluster: Cluster) -> None:
    """Streamed by nginx (no request buffering, no body size cap, long timeouts), stored whole:
    its size, and ranges at the start, across piece boundaries and at the end, come back."""
    key = cluster.api_key("erin")
    boundary = f"bigupload{random.getrandbits(64):016x}"
    length = sum(len(part) for part in (next(big_body(boundary)), f"\r\n--{boundary}--\r\n"))
    started = time.monotonic()
    answer = httpx.post(
        f"{cluster.url}/apiv1/upload",
        content=big_body(boundary),
        headers={
            **key,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(length + BIG),
        },
        timeout=300,
    )
    took = time.monotonic() - started
    assert answer.status_code == 201, answer.text
    created = answer.json()["files"][0]
    assert created["size"] == BIG
    url = f"{cluster.url}/apiv1/download/{created['id']}"
    for number in (0, 1, 255, BIG // PIECE - 1):
        start = number * PIECE - 100 if number else 0
        headers = {**key, "Range": f"bytes={start}-{start + 199}"}
        ranged = httpx.get(url, headers=headers, timeout=60)
        assert ranged.status_code == 206
        if number == 0:
            assert ranged.content == piece(0)[:200]
        else:
            assert ranged.content == (piece(number - 1) + piece(number))[PIECE - 100 : PIECE + 100]
    last = httpx.get(url, headers={**key, "Range": "bytes=-16"}, timeout=60)
    assert last.content == piece(BIG // PIECE - 1)[-16:]
    print(f"2 GiB through nginx: uploaded in {took:.1f} s ({BIG / took / 2**20:.0f} MiB/s)")


# -- without nginx ---------------------------------------------------------------------------------


def test_a_missing_nginx_skips_here_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.multi import conftest

    monkeypatch.setattr(conftest, "NGINX", "/nonexistent/nginx")
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception):
        conftest.require_nginx()
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="nginx is not installed"):
        conftest.require_nginx()
