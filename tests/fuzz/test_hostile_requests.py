"""Hostile requests the fuzz suites (or a read of the parsers they pointed at) turned up, each
kept as a plain test: every one must get its 4xx answer, never a 500.

- Text that ``str.isdigit`` calls digits but ``int`` refuses: ``²``, ``¹``, ``³`` (they are
  latin-1, so a header can carry them as well as a URL or a form).
- Integers too large for the database (SQLite and PostgreSQL keep 64 bits).
- A listing cursor or a JSON body of deeply nested arrays, which the JSON decoder recurses
  into.
- A management request that changes nothing.
- A file name longer than the parser's header limit.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.fuzz.support import AsServer, raw_request
from tests.helpers import bearer, token_of, upload, user_key

from satchel.core.accounts import NewUser
from satchel.core.names import MAX_NAME_BYTES
from satchel.web.state import SESSION_COOKIE, AppState

SUPERSCRIPT = "²"  # str.isdigit() is True, int() raises ValueError
SUPERSCRIPT_URL = "%C2%B2"
HUGE = "9" * 30  # past any 64-bit integer
TUS = {"Tus-Resumable": "1.0.0"}


def state_of(client: TestClient) -> AppState:
    state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
    return state


def v2_auth(client: TestClient) -> dict[str, str]:
    state = state_of(client)
    user = state.accounts.find("alice") or state.accounts.create_user(NewUser("alice", "password1"))
    return {"access_token": state.v2auth.issue_token(user), "account_id": str(user.id)}


def cursor(*items: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(items)).encode()).decode()


def nested_cursor(depth: int = 5000) -> str:
    return base64.urlsafe_b64encode(b"[" * depth + b"]" * depth).decode()


def metadata(**fields: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


# -- /manage ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [{"json": {}}, {"data": {}}, {"data": {"unknown": "1"}}, {"data": {"expires": ""}}],
    ids=["json-object", "empty-form", "unknown-field", "empty-expires"],
)
def test_manage_post_that_changes_nothing_answers_the_settings(
    client: TestClient, body: dict[str, Any]
) -> None:
    """SPEC §2: absent fields stay unchanged; with none sent, nothing changes."""
    token = token_of(upload(client))
    before = client.get(f"/manage/{token}").json()
    answer = client.post(f"/manage/{token}", **body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["success"] is True
    assert client.get(f"/manage/{token}").json() == before


# -- digits that are not digits -----------------------------------------------------------

APIV1_PATHS = [
    ("GET", f"/apiv1/files/{SUPERSCRIPT_URL}", 404),
    ("DELETE", f"/apiv1/files/{SUPERSCRIPT_URL}", 404),
    ("GET", f"/apiv1/files/{SUPERSCRIPT_URL}/properties", 404),
    ("GET", f"/apiv1/download/{SUPERSCRIPT_URL}", 404),
    ("DELETE", f"/apiv1/folders/{SUPERSCRIPT_URL}", 404),
    ("POST", f"/apiv1/trash/{SUPERSCRIPT_URL}/restore", 404),
    ("DELETE", f"/apiv1/trash/{SUPERSCRIPT_URL}", 404),
    ("DELETE", f"/apiv1/keys/{SUPERSCRIPT_URL}", 404),
    ("PATCH", f"/apiv1/keys/{SUPERSCRIPT_URL}", 404),
    ("GET", f"/apiv1/files?limit={SUPERSCRIPT_URL}", 400),
    ("GET", f"/apiv1/search?q=a&limit={SUPERSCRIPT_URL}", 400),
    ("GET", f"/apiv1/trash?limit=1{SUPERSCRIPT_URL}", 400),
]


@pytest.mark.parametrize(("method", "path", "status"), APIV1_PATHS)
def test_apiv1_superscript_ids_and_limits_are_refused(
    client: TestClient, method: str, path: str, status: int
) -> None:
    key = user_key(client, "alice")
    kwargs: dict[str, Any] = {"json": {"label": "x"}} if method == "PATCH" else {}
    answer = client.request(method, path, headers=bearer(key), **kwargs)
    assert answer.status_code == status, answer.text


def test_upload_folder_id_in_superscript_is_refused(client: TestClient) -> None:
    key = user_key(client, "alice")
    for path in ("/upload", "/apiv1/upload"):
        answer = client.post(
            path,
            files={"files": ("a.txt", b"a")},
            data={"folder_id": SUPERSCRIPT, "is_temp": "false"},
            headers=bearer(key),
        )
        assert answer.status_code == 400, (path, answer.text)


V2_PARAMS = [
    ("file/info", {"file_id": SUPERSCRIPT}),
    ("file/download", {"file_id": SUPERSCRIPT}),
    ("file/edit", {"file_id": SUPERSCRIPT}),
    ("folder/info", {"folder_id": SUPERSCRIPT}),
    ("folder/listing", {"parent_folder_id": "6¹"}),
    ("folder/create", {"folder_name": "x", "parent_id": SUPERSCRIPT}),
    ("file/url_upload_add", {"file_url_base64": "aHR0cDovL3gv", "folder_id": SUPERSCRIPT}),
    ("file/url_upload_status", {"scheduled_item_id": SUPERSCRIPT}),
]


@pytest.mark.parametrize(("endpoint", "params"), V2_PARAMS, ids=[e for e, _ in V2_PARAMS])
def test_apiv2_superscript_ids_get_the_error_envelope(
    client: TestClient, endpoint: str, params: dict[str, str]
) -> None:
    answer = client.post(f"/api/v2/{endpoint}", data={**v2_auth(client), **params})
    assert answer.status_code == 200, answer.text
    assert answer.json()["_status"] == "error"


def test_tus_metadata_folder_id_in_superscript_is_refused(client: TestClient) -> None:
    key = user_key(client, "alice")
    headers = {**TUS, **bearer(key), "Upload-Length": "3"}
    answer = client.post(
        "/tus/",
        headers={**headers, "Upload-Metadata": metadata(is_temp="false", folder_id=SUPERSCRIPT)},
    )
    assert answer.status_code == 400, answer.text


def test_tus_upload_length_and_offset_in_superscript_are_refused(client: TestClient) -> None:
    app = AsServer(client.app)  # type: ignore[arg-type]
    tus = [(b"tus-resumable", b"1.0.0")]
    created = raw_request(app, "POST", "/tus/", [*tus, (b"upload-length", "1²".encode("latin-1"))])
    assert created.status == 400, created.body
    location = client.post("/tus/", headers={**TUS, "Upload-Length": "3"}).headers["location"]
    patched = raw_request(
        app,
        "PATCH",
        "/tus/" + location.rsplit("/", 1)[1],
        [
            *tus,
            (b"content-type", b"application/offset+octet-stream"),
            (b"upload-offset", "²".encode("latin-1")),
        ],
        b"abc",
    )
    assert patched.status == 400, patched.body


def test_drive_pages_superscript_file_id_is_not_found(client: TestClient) -> None:
    state = state_of(client)
    user = state.accounts.create_user(NewUser("bob", "password1"))
    client.cookies.set(SESSION_COOKIE, state.sessions.create(user, "127.0.0.1"))
    for path in (f"/drive/file/{SUPERSCRIPT_URL}", f"/drive/file/{SUPERSCRIPT_URL}/delete"):
        answer = client.get(path)
        assert answer.status_code == 404, (path, answer.text)


# -- a cursor the JSON decoder recurses into ----------------------------------------------


@pytest.mark.parametrize("path", ["/apiv1/files", "/apiv1/search?q=a", "/apiv1/trash"])
def test_a_deeply_nested_cursor_is_refused(client: TestClient, path: str) -> None:
    key = user_key(client, "alice")
    joiner = "&" if "?" in path else "?"
    answer = client.get(f"{path}{joiner}cursor={nested_cursor()}", headers=bearer(key))
    assert answer.status_code == 400, answer.text


def nested_json(depth: int = 5000) -> bytes:
    return b'{"name": ' + b"[" * depth + b"]" * depth + b"}"


def test_a_deeply_nested_json_body_is_refused(client: TestClient) -> None:
    key = user_key(client, "alice")
    json_type = {"Content-Type": "application/json"}
    token = token_of(upload(client))
    for path, headers, status in (
        ("/apiv1/folders", bearer(key), 400),
        ("/apiv1/keys", bearer(key), 400),
        (f"/manage/{token}", {}, 400),
        ("/api/v2/folder/create", {}, 200),  # the error envelope
    ):
        answer = client.post(path, content=nested_json(), headers={**headers, **json_type})
        assert answer.status_code == status, (path, answer.text)


# -- integers too large for the database ---------------------------------------------------


@pytest.mark.parametrize("path", ["/apiv1/files", "/apiv1/search?q=a", "/apiv1/trash"])
def test_a_cursor_with_a_huge_id_is_refused(client: TestClient, path: str) -> None:
    key = user_key(client, "alice")
    joiner = "&" if "?" in path else "?"
    huge = cursor("file", "a", 10**30)
    answer = client.get(f"{path}{joiner}cursor={huge}", headers=bearer(key))
    assert answer.status_code == 400, answer.text


def test_apiv2_huge_scheduled_item_id_gets_the_error_envelope(client: TestClient) -> None:
    params = {**v2_auth(client), "scheduled_item_id": "9" * 40}
    answer = client.post("/api/v2/file/url_upload_status", data=params)
    assert answer.status_code == 200, answer.text
    assert answer.json()["response"] == "Could not find scheduled item."


@pytest.mark.parametrize("method", ["DELETE", "PATCH"])
def test_apiv1_huge_key_id_is_not_found(client: TestClient, method: str) -> None:
    key = user_key(client, "alice")
    kwargs: dict[str, Any] = {"json": {"label": "x"}} if method == "PATCH" else {}
    answer = client.request(method, f"/apiv1/keys/{HUGE}", headers=bearer(key), **kwargs)
    assert answer.status_code == 404, answer.text


def test_huge_folder_ids_are_refused(client: TestClient) -> None:
    key = user_key(client, "alice")
    for path in ("/upload", "/apiv1/upload"):
        answer = client.post(
            path,
            files={"files": ("a.txt", b"a")},
            data={"folder_id": HUGE, "is_temp": "false"},
            headers=bearer(key),
        )
        assert answer.status_code in (400, 404), (path, answer.text)
    folder = client.post(
        "/apiv1/folders", json={"name": "x", "parent_id": 10**30}, headers=bearer(key)
    )
    assert folder.status_code in (400, 404), folder.text
    tus = client.post(
        "/tus/",
        headers={
            **TUS,
            **bearer(key),
            "Upload-Length": "3",
            "Upload-Metadata": metadata(is_temp="false", folder_id=HUGE),
        },
    )
    assert tus.status_code in (400, 404), tus.text


def test_tus_huge_upload_offset_is_refused(client: TestClient) -> None:
    location = client.post("/tus/", headers={**TUS, "Upload-Length": "3"}).headers["location"]
    answer = client.patch(
        location,
        headers={
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(10**22),
        },
        content=b"abc",
    )
    assert answer.status_code in (400, 409), answer.text


# -- a long file name -----------------------------------------------------------------------


def test_an_over_long_file_name_is_capped_not_refused(client: TestClient) -> None:
    """SPEC §2: names are reduced to a safe base name, length capped, never rejected."""
    answer = client.post("/upload", files={"files": ("n" * 5000 + ".txt", b"long name")})
    assert answer.status_code == 200, answer.text
    name = answer.json()["name"]
    assert name.endswith(".txt")
    assert len(name.encode()) <= MAX_NAME_BYTES
