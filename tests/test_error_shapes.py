"""Each surface's error shape, pinned: the same domain error, answered the way that surface's
clients expect it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from tests.helpers import bearer, user_key
from tests.test_apiv2 import V2

from satchel.config import Settings
from satchel.web.app import create_app

BROWSER = {"Accept": "text/html,application/xhtml+xml", "User-Agent": "Mozilla/5.0"}
UNKNOWN = "0b0e2f6c-8d8a-4b8e-9d2e-2f6c8d8a4b8e"
V2_DATETIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


@pytest.fixture
def limited(settings: Settings) -> Iterator[TestClient]:
    strict = settings.replace(
        rate_limits_enabled=True,
        rate_limits="upload=1/minute:1/minute,download=1/minute:1/minute,apiv1=1/minute:1/minute",
    )
    with TestClient(create_app(strict, migrate=False, run_jobs=False)) as client:
        yield client


def test_public_errors_are_json_and_pages_for_browsers(client: TestClient) -> None:
    answer = client.get(f"/f/{UNKNOWN}/x.txt")
    assert (answer.status_code, answer.json()) == (404, {"error": "File not found or expired"})
    page = client.get(f"/f/{UNKNOWN}/x.txt", headers=BROWSER)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "File not found or expired" in page.text
    bad = client.post("/upload", content=b"x", headers={"Content-Type": "text/plain"})
    assert bad.status_code == 400
    assert list(bad.json()) == ["error"]


def test_public_rate_limits_say_when_to_retry(limited: TestClient) -> None:
    limited.get(f"/f/{UNKNOWN}")
    answer = limited.get(f"/f/{UNKNOWN}")
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0
    assert list(answer.json()) == ["error"]


def test_apiv1_errors_challenge_and_never_are_pages(client: TestClient) -> None:
    for headers in ({}, BROWSER):
        answer = client.get("/apiv1/files", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'Bearer realm="satchel"'
        assert answer.json() == {"error": "Missing API key: send Authorization: Bearer <key>"}
    key = user_key(client, "alice", "read")
    missing = client.get("/apiv1/files/999/properties", headers={**bearer(key), **BROWSER})
    assert (missing.status_code, missing.json()) == (404, {"error": "File not found"})
    forbidden = client.delete("/apiv1/files/999", headers=bearer(key))
    assert forbidden.status_code == 403
    assert "www-authenticate" not in forbidden.headers


def test_apiv2_errors_are_the_envelope_with_the_references_messages(client: TestClient) -> None:
    v2 = V2(client)
    answer = v2.call("file/info", file_id="999")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"response", "_status", "status", "_datetime"}
    assert (body["response"], body["_status"], body["status"]) == (
        "Could not find file based on file_id.",
        "error",
        "error",
    )
    assert V2_DATETIME.fullmatch(body["_datetime"])
    assert v2.call("folder/info", folder_id="999").json()["response"] == (
        "Could not find folder based on folder_id."
    )
    unknown = v2.call("no/such")
    assert unknown.status_code == 404
    assert unknown.json()["_status"] == "error"


def test_apiv2_rate_limits_keep_the_envelope(limited: TestClient) -> None:
    v2 = V2(limited)
    v2.call("account/info")
    answer = v2.call("account/info")
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0
    assert answer.json()["_status"] == "error"


def test_tus_errors_carry_the_protocol_headers(client: TestClient) -> None:
    answer = client.post("/tus/", headers={"Upload-Length": "5", **BROWSER})
    assert answer.status_code == 412
    assert answer.headers["tus-resumable"] == "1.0.0"
    assert answer.headers["tus-version"] == "1.0.0"
    assert list(answer.json()) == ["error"]
    missing = client.head("/tus/nothing-here", headers={"Tus-Resumable": "1.0.0"})
    assert missing.status_code == 404
    assert missing.headers["tus-resumable"] == "1.0.0"


def test_pages_errors_are_pages_for_browsers_and_json_for_scripts(client: TestClient) -> None:
    page = client.get("/folder/nosuchfolder", headers=BROWSER)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Folder not found" in page.text
    assert client.get("/folder/nosuchfolder").json() == {"error": "Folder not found"}
