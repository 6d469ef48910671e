from __future__ import annotations

import os
import uuid

import pytest
from starlette.testclient import TestClient

from satchel.config import Settings
from satchel.web.app import create_app


def limited_client(settings: Settings, **limits: str) -> TestClient:
    table = ",".join(f"{name}={value}" for name, value in limits.items())
    changed = settings.replace(rate_limits_enabled=True, rate_limits=_parse(table))
    return TestClient(create_app(changed, migrate=False, run_jobs=False))


def _parse(table: str):  # type: ignore[no-untyped-def]
    from satchel.config import parse_rate_limits

    return parse_rate_limits(table)


def test_upload_limit_answers_429_with_retry_after(settings: Settings) -> None:
    with limited_client(settings, upload="2/minute:100/minute") as client:
        for _ in range(2):
            assert client.post("/upload", files={"files": ("a", b"x")}).status_code == 200
        refused = client.post("/upload", files={"files": ("a", b"x")})
    assert refused.status_code == 429
    assert refused.json() == {"error": "Too many requests, try again later"}
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_limits_are_per_endpoint_and_per_address(settings: Settings) -> None:
    with limited_client(
        settings, download="1/minute:100/minute", manage="1/minute:100/minute"
    ) as client:
        result = client.post("/upload", files={"files": ("a", b"x")}).json()
        path = "/" + result["download_url"].split("/", 3)[3]
        assert client.get(path).status_code == 200
        assert client.get(path).status_code == 429
        assert client.get(result["redirect"]).status_code == 200
        assert client.get(result["redirect"]).status_code == 429
        other = TestClient(client.app, client=("203.0.113.9", 5000))
        assert other.get(path).status_code == 200


def test_forwarded_for_is_believed_only_from_trusted_proxies(settings: Settings) -> None:
    limited = settings.replace(
        rate_limits_enabled=True,
        rate_limits=_parse("download=1/minute:100/minute"),
        trusted_proxies=["10.0.0.0/8"],
    )
    app = create_app(limited, migrate=False, run_jobs=False)
    with TestClient(app) as client:
        result = client.post("/upload", files={"files": ("a", b"x")}).json()
        path = "/" + result["download_url"].split("/", 3)[3]
        proxy = TestClient(app, client=("10.1.2.3", 4000))
        assert proxy.get(path, headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 200
        assert proxy.get(path, headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 200
        assert proxy.get(path, headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 429
        # An untrusted peer cannot buy a fresh budget by claiming another address.
        stranger = TestClient(app, client=("192.0.2.50", 4000))
        assert stranger.get(path, headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 200
        assert stranger.get(path, headers={"X-Forwarded-For": "198.51.100.8"}).status_code == 429


REDIS_URL = os.environ.get("SATCHEL_TEST_REDIS_URL", "")


@pytest.mark.skipif(not REDIS_URL, reason="SATCHEL_TEST_REDIS_URL is not set (CI sets it)")
def test_limits_shared_through_redis(settings: Settings) -> None:
    """Two apps (two workers or instances) on one Redis share one budget."""
    address = ".".join(
        ["10", *(str(b) for b in uuid.uuid4().bytes[:3])]
    )  # a fresh budget every run
    shared = settings.replace(
        rate_limits_enabled=True,
        rate_limits=_parse("download=3/minute:100/minute"),
        rate_limit_storage=REDIS_URL,
    )
    first = TestClient(create_app(shared, migrate=False, run_jobs=False), client=(address, 1))
    second = TestClient(create_app(shared, migrate=False, run_jobs=False), client=(address, 2))
    with first, second:
        result = first.post("/upload", files={"files": ("a", b"x")}).json()
        path = "/" + result["download_url"].split("/", 3)[3]
        statuses = [client.get(path).status_code for client in (first, second, first, second)]
    assert statuses == [200, 200, 200, 429]


def test_qr_codes_count_against_the_download_limit(settings: Settings) -> None:
    with limited_client(settings, download="2/minute:100/minute") as client:
        url = settings.public_url + "/d/x"
        for _ in range(2):
            assert client.get("/qr.svg", params={"url": url}).status_code == 200
        assert client.get("/qr.svg", params={"url": url}).status_code == 429
