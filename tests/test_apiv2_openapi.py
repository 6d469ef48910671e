"""The served /api/v2/openapi.json documents every endpoint for GET and POST, and real answers,
successes and errors alike, match its schemas."""

from __future__ import annotations

import base64
from typing import Any

from jsonschema import Draft202012Validator
from starlette.testclient import TestClient
from tests.openapi_checks import check, documented

from satchel.core.accounts import NewUser
from satchel.web.apiv2.routes import AUTHENTICATED, OPEN
from satchel.web.state import AppState


class Caller:
    """alice's v2 token, and calls checked against the document."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.document: dict[str, Any] = client.get("/api/v2/openapi.json").json()
        state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
        user = state.accounts.find("alice") or state.accounts.create_user(
            NewUser("alice", "password1")
        )
        self.key1, self.key2 = state.v2auth.generate_keys(user.id)
        self.auth = self.authorize()

    def authorize(self) -> dict[str, str]:
        body = self.checked("authorize", key1=self.key1, key2=self.key2)["data"]
        return {"access_token": body["access_token"], "account_id": body["account_id"]}

    def checked(self, endpoint: str, method: str = "POST", **params: Any) -> Any:
        data = {k: str(v) for k, v in params.items()}
        if method == "GET":
            answer = self.client.get(f"/api/v2/{endpoint}", params=data)
        else:
            answer = self.client.post(f"/api/v2/{endpoint}", data=data)
        check(self.document, f"/api/v2/{endpoint}", answer)
        return answer.json()

    def call(self, endpoint: str, method: str = "POST", **params: Any) -> Any:
        return self.checked(endpoint, method, **self.auth, **params)


def test_every_endpoint_is_documented_for_get_and_post(client: TestClient) -> None:
    document = client.get("/api/v2/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    Draft202012Validator.check_schema({"components": document["components"]})
    endpoints = {*AUTHENTICATED, *OPEN, "file/upload"}
    expected = {(f"/api/v2/{e}", method) for e in endpoints for method in ("GET", "POST")}
    assert documented(document) == expected


def test_the_document_is_not_taken_for_an_endpoint(client: TestClient) -> None:
    answer = client.get("/api/v2/openapi.json")
    assert answer.status_code == 200
    assert answer.json()["info"]["title"] == "Satchel /api/v2"
    # Only GET: a POST there is an unknown endpoint, as anywhere under /api/v2.
    posted = client.post("/api/v2/openapi.json")
    assert (posted.status_code, posted.json()["_status"]) == (404, "error")


def test_real_answers_match_the_schemas(client: TestClient) -> None:
    v2 = Caller(client)
    v2.call("account/info", "GET")
    v2.call("account/package")
    folder = v2.call("folder/create", folder_name="docs", is_public="2", access_password="a" * 32)[
        "data"
    ]
    sub = v2.call("folder/create", folder_name="sub", parent_id=folder["id"])["data"]
    uploaded = client.post(
        "/api/v2/file/upload",
        data={**v2.auth, "folder_id": folder["id"]},
        files={"upload_file": ("a.txt", b"hello v2")},
    )
    check(v2.document, "/api/v2/file/upload", uploaded)
    file_id = uploaded.json()["data"][0]["file_id"]
    v2.call("file/info", file_id=file_id)
    v2.call("file/download", file_id=file_id)
    v2.call("file/edit", file_id=file_id, filename="b.txt", folder_id="0")
    v2.call("file/move", file_id=file_id, new_parent_folder_id=sub["id"])
    v2.call("file/copy", file_id=file_id, copy_to_folder_id="")
    v2.call("folder/listing", "GET", parent_folder_id=sub["id"])
    v2.call("folder/listing")
    v2.call("folder/info", folder_id=folder["id"])
    v2.call("folder/edit", folder_id=sub["id"], folder_name="renamed", is_public="1")
    v2.call("folder/move", folder_id=sub["id"], new_parent_folder_id="null")
    url = base64.b64encode(b"http://127.0.0.1:9/x.bin").decode()
    added = v2.call("file/url_upload_add", file_url_base64=url)
    item = added["data"]["scheduled_item_id"]
    v2.call("file/url_upload_status", scheduled_item_id=item)
    v2.call("file/delete", file_id=file_id)
    v2.call("folder/delete", folder_id=folder["id"])
    v2.call("disable_access_token")


def test_error_answers_match_the_schemas(client: TestClient) -> None:
    v2 = Caller(client)
    for endpoint in sorted({*AUTHENTICATED, "file/upload", "disable_access_token"}):
        assert v2.checked(endpoint)["_status"] == "error"
        assert v2.checked(endpoint, "GET", access_token="x", account_id="1")["_status"] == "error"
    assert v2.checked("authorize", key1="x", key2="y")["_status"] == "error"
    assert v2.checked("authorize")["_status"] == "error"
    assert v2.call("file/info", file_id="12345")["_status"] == "error"
    assert v2.call("folder/info", folder_id="")["_status"] == "error"
    assert v2.call("file/url_upload_add", file_url_base64="%%%")["_status"] == "error"
    assert v2.call("file/upload")["_status"] == "error"
