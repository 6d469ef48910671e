"""The served /openapi.json describes every public and tus route, and real answers match it."""

from __future__ import annotations

import base64
import os
from typing import Any

from jsonschema import Draft202012Validator
from starlette.testclient import TestClient
from tests.helpers import bearer, path_of, token_of, upload, user_key
from tests.openapi_checks import check, documented, served

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"
PREFIXES = ("/upload", "/f/", "/s/", "/manage/", "/delete/", "/stats/", "/tus")


def is_public(path: str) -> bool:
    return path == "/" or path.startswith(PREFIXES)


def document_of(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def test_every_route_is_documented(client: TestClient) -> None:
    document = document_of(client)
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": "http://testserver"}]
    Draft202012Validator.check_schema({"components": document["components"]})
    routes = client.app.routes  # type: ignore[attr-defined]
    paths = documented(document)
    # Starlette serves HEAD wherever it serves GET: a documented HEAD beside a GET is that one.
    without_implicit_head = {
        (path, method) for path, method in paths if method != "HEAD" or (path, "GET") not in paths
    }
    assert served(routes, is_public) == without_implicit_head


def test_upload_and_manage_answers_match(client: TestClient) -> None:
    document = document_of(client)
    guest = client.post(
        "/upload",
        files={"files": ("a.txt", b"hello")},
        data={"short_url": "true", "max_downloads": "3"},
    )
    check(document, "/upload", guest)
    token = token_of(guest.json())
    check(document, "/manage/{token}", client.get(f"/manage/{token}"))
    changed = client.post(f"/manage/{token}", data={"password": "pw", "public": "off"})
    check(document, "/manage/{token}", changed)
    check(document, "/manage/{token}", client.post(f"/manage/{token}", json={"expires": "2x"}))
    key = user_key(client, "alice")
    claimed = client.post(f"/manage/{token}", data={"claim": "1"}, headers=bearer(key))
    assert claimed.json()["claimed"] is True
    check(document, "/manage/{token}", claimed)
    zipped = client.post("/upload", files=[("files", ("a.txt", b"a")), ("files", ("b.txt", b"b"))])
    check(document, "/upload", zipped)
    drive = client.post(
        "/upload", files={"file": ("d.txt", b"d")}, data={"is_temp": "false"}, headers=bearer(key)
    )
    assert "drive_file_id" in drive.json()
    check(document, "/upload", drive)
    e2e = client.post(
        "/upload",
        files={"file": ("e.bin", os.urandom(40))},
        data={
            "e2e": "true",
            "e2e_salt": base64.b64encode(bytes(16)).decode(),
            "e2e_iv": ",".join(["7"] * 12),
        },
    )
    assert "encrypted_url" in e2e.json()
    check(document, "/upload", e2e)
    check(document, "/upload", client.post("/upload", data={"x": "y"}))
    check(
        document,
        "/upload",
        client.post("/upload", files={"file": ("a", b"a")}, data={"is_temp": "false"}),
    )
    check(document, "/manage/{token}", client.get("/manage/nope"))


def test_download_delete_and_stats_answers_match(client: TestClient) -> None:
    document = document_of(client)
    result = upload(client, b"0123456789", "digits.txt", short_url="true")
    path = path_of(result["download_url"])
    uuid = result["file_id"]
    check(document, "/f/{uuid}/{filename}", client.get(path))
    check(document, "/f/{uuid}", client.get(f"/f/{uuid}", headers={"Range": "bytes=2-4"}))
    check(document, "/f/{uuid}", client.head(f"/f/{uuid}"))
    check(document, "/f/{uuid}", client.get(f"/f/{uuid}", headers={"Range": "bytes=20-"}))
    check(document, "/f/{uuid}/encrypted", client.get(f"/f/{uuid}/encrypted"))
    check(document, "/f/{uuid}", client.get("/f/00000000-0000-4000-8000-000000000000"))
    code = path_of(result["short_url"])
    check(document, "/s/{code}", client.get(code))
    browser = {"Accept": "text/html", "User-Agent": "Mozilla/5.0"}
    check(document, "/s/{code}", client.get(code, headers=browser, follow_redirects=False))
    check(document, "/stats/{uuid}", client.get(f"/stats/{uuid}"))
    check(document, "/stats/{uuid}", client.get("/stats/nope"))
    token = token_of(result)
    check(document, "/manage/{token}/download", client.get(f"/manage/{token}/download"))
    check(document, "/delete/{token}", client.get(f"/delete/{token}"))
    check(document, "/delete/{token}", client.post(f"/delete/{token}"))
    check(document, "/delete/{token}", client.delete(f"/delete/{token}"))
    check(document, "/f/{uuid}", client.get(f"/f/{uuid}"))
    protected = upload(client, b"secret", "s.txt", password="pw", max_downloads="1")
    pid = protected["file_id"]
    check(document, "/f/{uuid}", client.get(f"/f/{pid}"))
    check(document, "/f/{uuid}", client.get(f"/f/{pid}?pw=wrong"))
    check(document, "/f/{uuid}", client.get(f"/f/{pid}?pw=pw"))
    check(document, "/f/{uuid}", client.get(f"/f/{pid}?pw=pw"))
    check(document, "/", client.get("/"))


def test_tus_answers_match(client: TestClient) -> None:
    document = document_of(client)
    check(document, "/tus/", client.options("/tus/"))
    metadata = "filename " + base64.b64encode(b"t.txt").decode()
    created = client.post(
        "/tus/", headers={**TUS, "Upload-Length": "6", "Upload-Metadata": metadata}
    )
    check(document, "/tus/", created)
    url = path_of(created.headers["location"])
    check(document, "/tus/{upload_id}", client.head(url, headers=TUS))
    check(document, "/tus/{upload_id}/result", client.get(f"{url}/result", headers=TUS))
    part = client.patch(
        url, headers={**TUS, "Upload-Offset": "0", "Content-Type": OCTETS}, content=b"abc"
    )
    check(document, "/tus/{upload_id}", part)
    check(
        document,
        "/tus/{upload_id}",
        client.patch(url, headers={**TUS, "Upload-Offset": "0", "Content-Type": OCTETS}),
    )
    check(document, "/tus/{upload_id}", client.patch(url, headers={**TUS, "Upload-Offset": "3"}))
    last = client.patch(
        url, headers={**TUS, "Upload-Offset": "3", "Content-Type": OCTETS}, content=b"def"
    )
    assert "satchel-download-url" in last.headers
    check(document, "/tus/{upload_id}", last)
    check(document, "/tus/{upload_id}/result", client.get(f"{url}/result", headers=TUS))
    check(document, "/tus/{upload_id}", client.delete(url, headers=TUS))
    check(document, "/tus/{upload_id}", client.delete(url, headers=TUS))
    check(document, "/tus", client.post("/tus", headers={"Upload-Length": "1"}))
    whole = client.post(
        "/tus/", headers={**TUS, "Upload-Length": "2", "Content-Type": OCTETS}, content=b"ok"
    )
    check(document, "/tus/", whole)
    check(document, "/tus/", client.post("/tus/", headers={**TUS, "Upload-Length": "x"}))
