"""The download limit holds across two server workers: one of twenty simultaneous downloads of
a one-time file succeeds, and byte ranges do not fetch more than the limit allows. Only the
download that was counted may go on with a range, by sending its ETag back as If-Range."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.reliability.harness import Server, upload, uuid_of

MiB = 1 << 20


def one_time_file(server: Server, size: int) -> tuple[str, bytes]:
    data = os.urandom(size)
    uuid = uuid_of(upload(server, "once.bin", data, max_downloads="1"))
    return f"{server.url}/f/{uuid}", data


def fetch(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    response = httpx.get(url, headers=headers, timeout=60)
    return response.status_code, response.content


def test_twenty_simultaneous_downloads_across_two_workers(two_worker_server: Server) -> None:
    server = two_worker_server
    url, data = one_time_file(server, 2 * MiB)
    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(lambda _: fetch(url, {}), range(20)))
    statuses = sorted(status for status, _ in outcomes)
    assert statuses == [200] + [410] * 19, f"statuses of 20 simultaneous downloads: {statuses}"
    assert next(body for status, body in outcomes if status == 200) == data
    assert httpx.get(url, timeout=30).status_code == 410


def test_ranges_do_not_fetch_past_the_limit(two_worker_server: Server) -> None:
    server = two_worker_server
    url, data = one_time_file(server, 2 * MiB)
    uuid = url.rsplit("/", 1)[1]
    requests = [("Range", {"Range": "bytes=1-"})] * 5
    # The file's public ETag is no proof of having been counted: anyone can make it up.
    requests += [("Range + If-Range", {"Range": "bytes=1-", "If-Range": f'"{uuid}"'})] * 5
    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(lambda request: fetch(url, request[1]), requests))
    requests.append(("plain", {}))
    outcomes.append(fetch(url, {}))
    served = [
        (kind, status, len(body))
        for (kind, _), (status, body) in zip(requests, outcomes, strict=True)
        if status in (200, 206) and body
    ]
    ranged_bytes = sum(length for kind, _, length in served if kind != "plain")
    if len(served) > 1 or ranged_bytes > len(data):
        pytest.fail(
            f"a file with max_downloads=1 of {len(data)} bytes: {ranged_bytes} bytes went to 10 "
            f"ranged requests, and {len(served)} of 11 requests got content; "
            f"(request, status, bytes): {served}"
        )


def test_the_counted_download_resumes_with_its_etag(two_worker_server: Server) -> None:
    server = two_worker_server
    url, data = one_time_file(server, 4 * MiB)
    received = bytearray()
    with httpx.stream("GET", url, timeout=60) as response:
        assert response.status_code == 200
        etag = response.headers["etag"]
        for piece in response.iter_bytes():
            received += piece
            if len(received) >= MiB:
                break  # the connection is closed here: a cut download
    assert received == data[: len(received)]
    resume = {"Range": f"bytes={len(received)}-", "If-Range": etag}
    status, rest = fetch(url, resume)
    assert status == 206, (
        f"resuming the counted download with If-Range {etag}: {status} {rest[:200]!r}"
    )
    assert bytes(received) + rest == data, "the resumed download is not byte-exact"
