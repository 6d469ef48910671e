"""/api/v2 URL import end to end: queued by the API, run by the job runner, refused for
private addresses however they are reached, byte-exact for an allow-listed loopback server."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from starlette.testclient import TestClient

from satchel.config import Settings, load_settings
from satchel.core.accounts import NewUser
from satchel.web.app import create_app
from satchel.web.state import AppState

BODY = os.urandom(3 * 1024 * 1024 + 17)


class Origin:
    """A loopback HTTP server that counts the requests it gets."""

    def __init__(self, routes: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.routes = routes
        self.hits: list[str] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                origin.hits.append(self.path)
                status, headers, body = origin.routes.get(self.path, (404, {}, b"missing"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target() -> Iterator[Origin]:
    """Not allow-listed: nothing may ever reach it."""
    origin = Origin({"/": (200, {}, b"internal secret")})
    yield origin
    origin.close()


@pytest.fixture
def origin(target: Origin) -> Iterator[Origin]:
    origin = Origin(
        {
            "/file.bin": (
                200,
                {"Content-Disposition": 'attachment; filename="report 2026.bin"'},
                BODY,
            ),
            "/to-loopback": (302, {"Location": target.url("/")}, b""),
            "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
            "/to-localhost": (302, {"Location": target.url("/", host="localhost")}, b""),
            "/to-ten": (301, {"Location": "http://10.0.0.1/"}, b""),
        }
    )
    yield origin
    origin.close()


@pytest.fixture
def importer(settings: Settings, origin: Origin) -> Iterator[TestClient]:
    allowed = load_settings(
        environ={},
        overrides={**settings.values, "url_import_allowed_hosts": [f"127.0.0.1:{origin.port}"]},
    )
    with TestClient(create_app(allowed, migrate=False, run_jobs=False)) as client:
        yield client


def authorized(client: TestClient) -> dict[str, str]:
    state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
    user = state.accounts.find("alice") or state.accounts.create_user(NewUser("alice", "password1"))
    key1, key2 = state.v2auth.generate_keys(user.id)
    body = client.post("/api/v2/authorize", data={"key1": key1, "key2": key2}).json()
    return {"access_token": body["data"]["access_token"], "account_id": body["data"]["account_id"]}


def schedule(client: TestClient, auth: dict[str, str], url: str, **extra: str) -> int:
    encoded = base64.b64encode(url.encode()).decode()
    answer = client.post(
        "/api/v2/file/url_upload_add", data={**auth, "file_url_base64": encoded, **extra}
    ).json()
    assert answer["_status"] == "success", answer
    item: int = answer["data"]["scheduled_item_id"]
    return item


def status(client: TestClient, auth: dict[str, str], item: int) -> dict[str, Any]:
    answer = client.post(
        "/api/v2/file/url_upload_status", data={**auth, "scheduled_item_id": str(item)}
    ).json()
    data: dict[str, Any] = answer["data"]
    return data


def test_allow_listed_loopback_file_arrives_byte_exact(importer: TestClient) -> None:
    state: AppState = importer.app.state.satchel  # type: ignore[attr-defined]
    auth = authorized(importer)
    folder = importer.post("/api/v2/folder/create", data={**auth, "folder_name": "Imports"}).json()[
        "data"
    ]["id"]
    origin_url = f"http://127.0.0.1:{state.settings.url_import_allowed_hosts[0].split(':')[1]}"
    item = schedule(importer, auth, origin_url + "/file.bin", folder_id=folder)
    assert status(importer, auth, item)["status"] == "pending"
    assert state.imports.run_next()  # an import worker picks it up
    done = status(importer, auth, item)
    assert done["status"] == "complete", done
    assert done["total_size"] == len(BODY)
    assert done["downloaded_size"] == len(BODY)
    assert done["error"] is None
    assert done["started"] is not None
    assert done["finished"] is not None
    downloaded = done["downloaded_file"]
    assert downloaded["name"] == "report 2026.bin"
    assert downloaded["size"] == len(BODY)
    listing = importer.post(
        "/api/v2/folder/listing", data={**auth, "parent_folder_id": folder}
    ).json()
    assert [f["filename"] for f in listing["data"]["files"]] == ["report 2026.bin"]
    link = importer.post(
        "/api/v2/file/download", data={**auth, "file_id": str(downloaded["file_id"])}
    ).json()["data"]["download_url"]
    assert importer.get("/" + link.split("/", 3)[3]).content == BODY


@pytest.mark.parametrize(
    "path_or_url",
    [
        "/to-loopback",
        "/to-metadata",
        "/to-localhost",
        "/to-ten",
        "http://127.0.0.1:{target}/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{target}/",
        "http://localhost:{target}/",
    ],
)
def test_private_addresses_end_failed_and_nothing_is_fetched(
    importer: TestClient, origin: Origin, target: Origin, path_or_url: str
) -> None:
    state: AppState = importer.app.state.satchel  # type: ignore[attr-defined]
    auth = authorized(importer)
    url = origin.url(path_or_url) if path_or_url.startswith("/") else path_or_url
    item = schedule(importer, auth, url.format(target=target.port))
    state.imports.run_pending()
    result = status(importer, auth, item)
    assert result["status"] == "failed", result
    assert result["error"]
    assert result["downloaded_file"] is None
    assert target.hits == []
    assert list(state.files.store.iter_blobs()) == []


def test_package_size_limit_fails_the_import(settings: Settings, origin: Origin) -> None:
    small = load_settings(
        environ={},
        overrides={
            **settings.values,
            "url_import_allowed_hosts": [f"127.0.0.1:{origin.port}"],
            "packages": {"free": {"max_upload_size": "1MiB"}},
        },
    )
    with TestClient(create_app(small, migrate=False, run_jobs=False)) as client:
        state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
        auth = authorized(client)
        item = schedule(client, auth, origin.url("/file.bin"))
        state.imports.run_pending()
        result = status(client, auth, item)
        assert result["status"] == "failed"
        assert "limit" in result["error"]
        assert list(state.files.store.iter_blobs()) == []


def test_only_http_urls_are_queued(importer: TestClient) -> None:
    auth = authorized(importer)
    encoded = base64.b64encode(b"file:///etc/passwd").decode()
    answer = importer.post(
        "/api/v2/file/url_upload_add", data={**auth, "file_url_base64": encoded}
    ).json()
    assert answer["_status"] == "error"
    assert "http" in answer["response"]
