"""/api/v2 golden responses: every endpoint's keys and JSON types against the reference's
samples, success and each documented error message, and the SPEC §6 parameter rules."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient
from tests.helpers import bearer, user_key

from satchel.core.accounts import NewUser
from satchel.db.models import StoredFile
from satchel.web.state import SESSION_COOKIE, AppState

STR, INT, NULL = "str", "int", "null"
OPT_STR = (STR, NULL)
DATETIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
BAD_TOKEN = "Could not validate access_token and account_id, please reauthenticate or try again."

ACCOUNT_INFO = {
    "id": STR, "username": STR, "level_id": STR, "email": STR, "lastlogindate": OPT_STR,
    "lastloginip": STR, "status": STR, "title": STR, "firstname": STR, "lastname": STR,
    "languageId": STR, "datecreated": OPT_STR, "lastPayment": OPT_STR,
    "paidExpiryDate": OPT_STR, "storageLimitOverride": OPT_STR,
}  # fmt: skip
PACKAGE = dict.fromkeys(
    [
        "id",
        "label",
        "max_upload_size",
        "can_upload",
        "wait_between_downloads",
        "download_speed",
        "max_storage_bytes",
        "show_site_adverts",
        "show_upgrade_screen",
        "days_to_keep_inactive_files",
        "concurrent_uploads",
        "concurrent_downloads",
        "downloads_per_24_hours",
        "download_size_per_24_hours",
        "max_download_filesize_allowed",
        "max_remote_download_urls",
        "level_type",
        "on_upgrade_page",
    ],
    STR,
)
UPLOADED = {
    "name": STR, "size": STR, "type": STR, "error": NULL, "url": STR, "delete_url": STR,
    "info_url": STR, "delete_type": STR, "delete_hash": STR, "hash": STR, "stats_url": STR,
    "short_url": STR, "file_id": STR, "unique_hash": STR, "url_html": STR, "url_bbcode": STR,
}  # fmt: skip
FILE_INFO = {
    "id": STR, "filename": STR, "shortUrl": STR, "fileType": STR, "extension": STR,
    "fileSize": STR, "uploadedIP": STR, "uploadedDate": STR, "file_status": STR,
    "status": STR, "downloads": STR, "lastAccessed": OPT_STR, "folderId": OPT_STR,
    "keywords": STR, "isPublic": STR, "uploadSource": STR, "description": STR,
    "url_file": STR, "url_file_info": STR, "url_file_stats": STR, "url_file_delete": STR,
}  # fmt: skip
LISTING_FILE = {
    "id": STR, "filename": STR, "shortUrl": STR, "fileType": STR, "extension": STR,
    "fileSize": STR, "status": STR, "downloads": STR, "folderId": OPT_STR, "keywords": STR,
    "url_file": STR,
}  # fmt: skip
FOLDER = {
    "id": STR, "parentId": OPT_STR, "folderName": STR, "totalSize": STR, "isPublic": STR,
    "accessPassword": OPT_STR, "date_added": OPT_STR, "date_updated": OPT_STR,
    "url_folder": STR, "total_downloads": INT, "child_folder_count": INT, "file_count": INT,
}  # fmt: skip
LISTING_FOLDER = {k: v for k, v in FOLDER.items() if k != "accessPassword"}
STATUS = {
    "scheduled_item_id": INT, "status": STR, "created": OPT_STR, "started": OPT_STR,
    "finished": OPT_STR, "total_size": INT, "downloaded_size": INT,
    "downloaded_file": ("dict", NULL), "error": OPT_STR,
}  # fmt: skip


def kind(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "bool"
    return {str: STR, int: INT, dict: "dict", list: "list"}.get(type(value), "other")


def assert_shape(data: dict[str, Any], expected: dict[str, Any]) -> None:
    assert set(data) == set(expected), set(data) ^ set(expected)
    for key, allowed in expected.items():
        allowed = allowed if isinstance(allowed, tuple) else (allowed,)
        assert kind(data[key]) in allowed, (key, data[key])


def assert_success(body: dict[str, Any], response: str | None = None) -> None:
    assert body["_status"] == "success"
    assert DATETIME.fullmatch(body["_datetime"])
    if response is not None:
        assert body["response"] == response


def assert_error(answer: Any, message: str, status: int = 200) -> None:
    assert answer.status_code == status
    body = answer.json()
    assert set(body) == {"response", "_status", "status", "_datetime"}
    assert body["_status"] == "error"
    assert body["status"] == "error"
    assert body["response"] == message
    assert DATETIME.fullmatch(body["_datetime"])


class V2:
    def __init__(self, client: TestClient, name: str = "alice") -> None:
        self.client = client
        state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
        self.state = state
        user = state.accounts.find(name) or state.accounts.create_user(NewUser(name, "password1"))
        self.user = user
        self.key1, self.key2 = state.v2auth.generate_keys(user.id)
        body = client.post("/api/v2/authorize", data={"key1": self.key1, "key2": self.key2}).json()
        self.auth = {
            "access_token": body["data"]["access_token"],
            "account_id": body["data"]["account_id"],
        }

    def call(self, endpoint: str, method: str = "POST", **params: Any) -> Any:
        data = {**self.auth, **{k: str(v) for k, v in params.items()}}
        if method == "GET":
            return self.client.get(f"/api/v2/{endpoint}", params=data)
        return self.client.post(f"/api/v2/{endpoint}", data=data)

    def ok(self, endpoint: str, **params: Any) -> dict[str, Any]:
        answer = self.call(endpoint, **params)
        assert answer.status_code == 200
        body: dict[str, Any] = answer.json()
        assert body["_status"] == "success", body
        return body

    def upload(self, content: bytes = b"hello v2", name: str = "a.txt", **fields: Any) -> Any:
        data = {**self.auth, **{k: str(v) for k, v in fields.items()}}
        return self.client.post(
            "/api/v2/file/upload", data=data, files={"upload_file": (name, content)}
        )


@pytest.fixture
def v2(client: TestClient) -> V2:
    return V2(client)


def test_authorize_with_keys_and_with_password(client: TestClient) -> None:
    api = V2(client)
    assert re.fullmatch(r"[0-9A-Za-z]{128}", api.auth["access_token"])
    assert api.auth["account_id"] == str(api.user.id)
    by_password = client.post(
        "/api/v2/authorize", data={"username": "alice", "password": "password1"}
    ).json()
    assert_success(by_password)
    assert set(by_password["data"]) == {"access_token", "account_id"}
    # One token per user: the newer one replaced the first.
    assert_error(client.post("/api/v2/account/info", data=api.auth), BAD_TOKEN)
    # GET with query parameters works the same.
    got = client.get("/api/v2/authorize", params={"key1": api.key1, "key2": api.key2})
    assert got.json()["_status"] == "success"


@pytest.mark.parametrize(
    "params",
    [
        {"key1": "x" * 64, "key2": "y" * 64},
        {"username": "alice", "password": "wrong password"},
        {"username": "nobody", "password": "password1"},
    ],
)
def test_authorize_refusals(client: TestClient, params: dict[str, str]) -> None:
    V2(client)
    message = (
        "Could not authenticate user. The username and password may be invalid or your "
        "account may be locked from too many failed logins."
    )
    assert_error(client.post("/api/v2/authorize", data=params), message)


def test_authorize_with_a_regenerated_pair_only(client: TestClient) -> None:
    api = V2(client)
    api.state.v2auth.generate_keys(api.user.id)
    old = client.post("/api/v2/authorize", data={"key1": api.key1, "key2": api.key2})
    assert old.json()["_status"] == "error"


def test_token_errors_on_every_endpoint(v2: V2) -> None:
    for endpoint in (
        "account/info", "account/package", "file/download", "file/url_upload_add",
        "file/url_upload_status", "file/info", "file/edit", "file/delete", "file/move",
        "file/copy", "folder/create", "folder/listing", "folder/info", "folder/edit",
        "folder/delete", "folder/move", "file/upload", "disable_access_token",
    ):  # fmt: skip
        client = v2.client
        assert_error(
            client.post(f"/api/v2/{endpoint}", data={}), "Please provide the access_token param."
        )
        assert_error(
            client.post(f"/api/v2/{endpoint}", data={"access_token": "x"}),
            "Please provide the account_id param.",
        )
        wrong = {**v2.auth, "account_id": str(v2.user.id + 1)}
        assert_error(client.post(f"/api/v2/{endpoint}", data=wrong), BAD_TOKEN)
        assert_error(
            client.post(f"/api/v2/{endpoint}", data={**v2.auth, "access_token": "a" * 128}),
            BAD_TOKEN,
        )


def test_token_expires_after_an_idle_hour(v2: V2) -> None:
    service = v2.state.v2auth
    start = service.clock()
    service.clock = lambda: start + timedelta(minutes=59)
    v2.ok("account/info")  # use keeps it alive
    service.clock = lambda: start + timedelta(minutes=59 + 59)
    v2.ok("account/info")
    service.clock = lambda: start + timedelta(minutes=59 + 59 + 61)
    assert_error(v2.call("account/info"), BAD_TOKEN)


def test_unknown_endpoint_is_404_in_the_envelope(v2: V2) -> None:
    answer = v2.call("file/nonsense")
    assert answer.status_code == 404
    assert answer.json()["_status"] == "error"
    assert answer.json()["status"] == "error"


def test_parameters_are_read_from_the_body_of_a_get_too(v2: V2) -> None:
    """The reference takes query and body on either method: curl -X GET --data … works."""
    for body in ({"data": v2.auth}, {"files": {k: (None, v) for k, v in v2.auth.items()}}):
        answer = v2.client.request("GET", "/api/v2/account/info", **body)  # type: ignore[arg-type]
        assert answer.status_code == 200
        assert answer.json()["_status"] == "success", answer.json()


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_are_refused_in_the_envelope(v2: V2, method: str) -> None:
    answer = v2.client.request(method, "/api/v2/account/info", params=v2.auth)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD, POST"
    assert answer.json()["_status"] == "error"
    assert set(answer.json()) == {"response", "_status", "status", "_datetime"}


def test_disable_access_token(v2: V2) -> None:
    body = v2.ok("disable_access_token")
    assert_success(body, "Token removed or no longer available.")
    assert set(body) == {"response", "_status", "_datetime"}
    assert_error(v2.call("account/info"), BAD_TOKEN)


def test_account_info_and_package(v2: V2) -> None:
    info = v2.ok("account/info", method="GET")
    assert_shape(info["data"], ACCOUNT_INFO)
    assert info["data"]["username"] == "alice"
    package = v2.ok("account/package")
    assert_shape(package["data"], PACKAGE)
    assert package["data"]["label"] == "Free Account"
    assert package["data"]["max_upload_size"] == str(5 << 30)
    assert info["data"]["level_id"] == package["data"]["id"]


def test_file_upload_answer(v2: V2) -> None:
    content = b"the content of a v2 upload"
    body = v2.upload(content, "sample4_l.jpg").json()
    assert_success(body, "File uploaded")
    [entry] = body["data"]
    assert_shape(entry, UPLOADED)
    assert entry["hash"] == hashlib.md5(content).hexdigest()  # noqa: S324 - YetiShare's field
    assert entry["size"] == str(len(content))
    assert entry["delete_type"] == "DELETE"
    assert entry["url"].endswith("/s/" + entry["short_url"])
    assert entry["url_bbcode"] == f"[url]{entry['url']}[/url]"
    assert f'href="{entry["url"]}"' in entry["url_html"]
    # Every URL answers: for the owner logged in, each is a page or the file.
    client = v2.client
    client.cookies.set(SESSION_COOKIE, v2.state.sessions.create(v2.user, "127.0.0.1"))
    browser = {"User-Agent": "Mozilla/5.0", "Accept": "text/html"}
    for field in ("url", "delete_url", "info_url", "stats_url"):
        path = "/" + entry[field].split("/", 3)[3]
        answer = client.get(path, headers=browser, follow_redirects=True)
        assert answer.status_code == 200, (field, answer.status_code)
    info = v2.ok("file/info", file_id=entry["file_id"])["data"]
    for field in ("url_file", "url_file_info", "url_file_stats", "url_file_delete"):
        answer = client.get("/" + info[field].split("/", 3)[3], headers=browser)
        assert answer.status_code == 200, (field, answer.status_code)
    client.cookies.clear()
    anonymous = client.get("/" + entry["delete_url"].split("/", 3)[3])
    assert anonymous.status_code in (401, 303)


def test_file_upload_errors(v2: V2) -> None:
    client = v2.client
    assert_error(client.post("/api/v2/file/upload", data=v2.auth), "Did not receive uploaded file.")
    assert_error(v2.upload(b"", "empty.txt"), "Filesize received was zero.")
    assert_error(
        v2.upload(b"x", folder_id=999),
        "Could not find the destination folder id defined by folder_id.",
    )
    state = v2.state
    assert list(state.files.store.iter_blobs()) == []
    # The token in the query string works as well as in the form.
    answer = client.post(
        "/api/v2/file/upload", params=v2.auth, files={"upload_file": ("q.txt", b"q")}
    )
    assert answer.json()["_status"] == "success"


def test_file_info_edit_move_copy_delete(v2: V2) -> None:
    folder = v2.ok("folder/create", folder_name="Dest")["data"]["id"]
    file_id = v2.upload(b"abc", "one.txt").json()["data"][0]["file_id"]
    info = v2.ok("file/info", file_id=file_id)
    assert_shape(info["data"], FILE_INFO)
    assert info["data"]["folderId"] is None
    edited = v2.ok("file/edit", file_id=file_id, filename="two.txt", fileType="text/plain")
    assert_success(edited, "File successfully updated.")
    assert_shape(edited["data"], FILE_INFO)
    assert edited["data"]["filename"] == "two.txt"
    assert edited["data"]["fileType"] == "text/plain"
    moved = v2.ok("file/move", file_id=file_id, new_parent_folder_id=folder)
    assert_success(moved, "File successfully moved.")
    assert moved["data"]["folderId"] == folder
    copied = v2.ok("file/copy", file_id=file_id, copy_to_folder_id=0)
    assert_success(copied, "File successfully copyied.")
    assert_shape(copied["original_file"]["data"], FILE_INFO)
    assert_shape(copied["new_file"]["data"], FILE_INFO)
    new_id = copied["new_file"]["data"]["id"]
    assert new_id != file_id
    assert copied["new_file"]["data"]["folderId"] is None
    # The copy has the same bytes, in a blob of its own.
    token_url = v2.ok("file/download", file_id=new_id)["data"]["download_url"]
    assert v2.client.get("/" + token_url.split("/", 3)[3]).content == b"abc"
    again = v2.ok("file/copy", file_id=new_id, copy_to_folder_id="")
    assert again["new_file"]["data"]["filename"] == "two (2).txt"
    deleted = v2.ok("file/delete", file_id=file_id)
    assert_success(deleted, "File successfully set as deleted.")
    assert deleted["data"]["status"] == "trash"
    assert_error(v2.call("file/info", file_id=file_id), "Could not find file based on file_id.")


@pytest.mark.parametrize(
    ("endpoint", "params", "message"),
    [
        ("file/info", {}, "Please provide the file_id param."),
        ("file/info", {"file_id": 999}, "Could not find file based on file_id."),
        ("file/download", {}, "Please provide the file_id param."),
        ("file/download", {"file_id": 999}, "Could not find file based on file_id."),
        ("file/edit", {"file_id": 999}, "Could not find file based on file_id."),
        ("file/delete", {}, "Please provide the file_id param."),
        ("file/move", {"file_id": "{file}"}, "Please provide the new_parent_folder_id param."),
        (
            "file/move",
            {"file_id": "{file}", "new_parent_folder_id": 999},
            "Could not find the destination folder id defined by new_parent_folder_id.",
        ),
        ("file/copy", {"file_id": "{file}"}, "Please provide the copy_to_folder_id param."),
        (
            "file/copy",
            {"file_id": "{file}", "copy_to_folder_id": 999},
            "Could not find the destination folder id defined by copy_to_folder_id.",
        ),
        ("file/url_upload_add", {}, "Please provide the file_url_base64 param."),
        (
            "file/url_upload_add",
            {"file_url_base64": "@@@not base64@@@"},
            "Could not parse the file_url_base64 parameter. Ensure it's base64 encoded.",
        ),
        ("file/url_upload_status", {}, "Please provide the scheduled_item_id param."),
        ("folder/create", {}, "Please provide the folder_name param."),
        ("folder/info", {"folder_id": 999}, "Could not find folder based on folder_id."),
        ("folder/edit", {"folder_id": 999}, "Could not find folder based on folder_id."),
        ("folder/delete", {"folder_id": 999}, "Could not find folder based on folder_id."),
        ("folder/move", {}, "Please provide the folder_id param."),
        ("folder/move", {"folder_id": 999}, "Could not find folder based on folder_id."),
    ],
)
def test_documented_errors(v2: V2, endpoint: str, params: dict[str, Any], message: str) -> None:
    file_id = v2.upload().json()["data"][0]["file_id"]
    filled = {k: (file_id if v == "{file}" else v) for k, v in params.items()}
    assert_error(v2.call(endpoint, **filled), message)


def test_folders(v2: V2) -> None:
    md5 = hashlib.md5(b"secret").hexdigest()  # noqa: S324 - the reference's format
    created = v2.ok("folder/create", folder_name="My New Folder", is_public=2, access_password=md5)
    assert_success(created, "Folder successfully created.")
    data = created["data"]
    assert_shape(data, FOLDER)
    assert (data["isPublic"], data["accessPassword"], data["parentId"]) == ("2", md5, None)
    assert "/folder/" in data["url_folder"]
    assert data["url_folder"].endswith("/My_New_Folder")
    parent = data["id"]
    child = v2.ok("folder/create", folder_name="Child", parent_id=parent, is_public=7)["data"]
    assert child["isPublic"] == "0"  # anything but 0/1/2 is private
    assert child["parentId"] == parent
    weak = v2.ok("folder/create", folder_name="Weak", access_password="not-an-md5")["data"]
    assert weak["accessPassword"] is None
    v2.upload(b"12345", "in.txt", folder_id=parent)
    info = v2.ok("folder/info", folder_id=parent)["data"]
    assert_shape(info, FOLDER)
    assert (info["file_count"], info["child_folder_count"], info["totalSize"]) == (1, 1, "5")
    # The reference names the parameter parent_folder_id: accepted too.
    assert v2.ok("folder/info", parent_folder_id=parent)["data"]["id"] == parent
    listing = v2.ok("folder/listing", parent_folder_id=parent)["data"]
    assert set(listing) == {"folders", "files"}
    assert_shape(listing["folders"][0], LISTING_FOLDER)
    assert_shape(listing["files"][0], LISTING_FILE)
    root = v2.ok("folder/listing")["data"]
    assert [f["folderName"] for f in root["folders"]] == ["My New Folder", "Weak"]
    for root_value in ("", "0", "null"):
        again = v2.ok("folder/listing", parent_folder_id=root_value)["data"]
        assert [f["folderName"] for f in again["folders"]] == ["My New Folder", "Weak"]
    edited = v2.ok("folder/edit", folder_id=child["id"], folder_name="Renamed", is_public=1)
    assert_success(edited, "Folder successfully updated.")
    assert (edited["data"]["folderName"], edited["data"]["isPublic"]) == ("Renamed", "1")
    assert edited["data"]["date_updated"] is not None
    moved = v2.ok("folder/move", folder_id=child["id"], new_parent_folder_id=0)
    assert_success(moved, "Folder successfully moved.")
    assert moved["data"]["parentId"] is None
    into_itself = v2.call("folder/move", folder_id=parent, new_parent_folder_id=parent)
    assert into_itself.json()["_status"] == "error"
    deleted = v2.ok("folder/delete", folder_id=parent)
    assert set(deleted) == {"response", "_status", "_datetime"}
    assert_success(deleted, "Folder successfully set as deleted.")
    assert_error(
        v2.call("folder/info", folder_id=parent), "Could not find folder based on folder_id."
    )


def test_download_token_fetches_a_private_file_for_24_hours(v2: V2) -> None:
    file_id = v2.upload(b"private bytes", "p.txt").json()["data"][0]["file_id"]
    answer = v2.ok("file/download", file_id=file_id)
    assert set(answer["data"]) == {"file_id", "filename", "download_url"}
    url = answer["data"]["download_url"]
    token = url.rsplit("download_token=", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    path = "/" + url.split("/", 3)[3]
    record = v2.state.drive_files.get(v2.user.id, int(file_id))
    with v2.state.db.write() as session:
        session.execute(
            update(StoredFile).where(StoredFile.id == record.id).values(is_public=False)
        )
    plain = "/" + url.split("/", 3)[3].split("?")[0]
    assert v2.client.get(plain).status_code == 403
    assert v2.client.get(path).content == b"private bytes"
    other = v2.upload(b"other", "o.txt").json()["data"][0]["file_id"]
    other_path = (
        "/" + v2.ok("file/download", file_id=other)["data"]["download_url"].split("/", 3)[3]
    )
    swapped = other_path.split("?")[0] + "?download_token=" + token
    with v2.state.db.write() as session:
        session.execute(
            update(StoredFile).where(StoredFile.id == int(other)).values(is_public=False)
        )
    assert v2.client.get(swapped).status_code == 403  # a token is for its own file only
    service = v2.state.v2auth
    start = service.clock()
    service.clock = lambda: start + timedelta(hours=24, minutes=1)
    assert v2.client.get(path).status_code == 403


def test_isolation_between_users(client: TestClient) -> None:
    alice = V2(client, "alice")
    bob = V2(client, "bob")
    folder = alice.ok("folder/create", folder_name="Hers")["data"]["id"]
    file_id = alice.upload(b"hers", folder_id=folder).json()["data"][0]["file_id"]
    for endpoint, params in (
        ("file/info", {"file_id": file_id}),
        ("file/download", {"file_id": file_id}),
        ("file/edit", {"file_id": file_id, "filename": "x"}),
        ("file/delete", {"file_id": file_id}),
        ("file/move", {"file_id": file_id, "new_parent_folder_id": 0}),
        ("file/copy", {"file_id": file_id, "copy_to_folder_id": 0}),
    ):
        assert_error(bob.call(endpoint, **params), "Could not find file based on file_id.")
    for endpoint in ("folder/info", "folder/edit", "folder/delete", "folder/move"):
        params = {"folder_id": folder, "new_parent_folder_id": 0}
        assert_error(bob.call(endpoint, **params), "Could not find folder based on folder_id.")
    assert bob.call("folder/listing", parent_folder_id=folder).json()["_status"] == "error"
    assert bob.upload(b"x", folder_id=folder).json()["_status"] == "error"
    assert bob.ok("folder/listing")["data"] == {"folders": [], "files": []}
    assert alice.ok("file/info", file_id=file_id)["data"]["filename"] == "a.txt"


def test_same_files_as_apiv1(client: TestClient) -> None:
    api = V2(client)
    key = user_key(client, "alice")
    folder = api.ok("folder/create", folder_name="Shared view")["data"]["id"]
    api.upload(b"seen everywhere", "both.txt", folder_id=folder)
    listing = client.get(f"/apiv1/files/{folder}", headers=bearer(key)).json()
    assert [f["name"] for f in listing["files"]] == ["both.txt"]
    client.delete(f"/apiv1/files/{listing['files'][0]['id']}", headers=bearer(key))
    assert api.ok("folder/listing", parent_folder_id=folder)["data"]["files"] == []


def test_url_upload_add_and_status_shapes(v2: V2) -> None:
    url = "http://127.0.0.1:9/never-fetched"
    encoded = base64.b64encode(url.encode()).decode()
    added = v2.ok("file/url_upload_add", file_url_base64=encoded)
    assert_success(added, "File download from URL scheduled")
    assert set(added["data"]) == {"scheduled_item_id", "url"}
    assert isinstance(added["data"]["scheduled_item_id"], int)
    assert added["data"]["url"] == url
    status = v2.ok("file/url_upload_status", scheduled_item_id=added["data"]["scheduled_item_id"])
    assert_success(status, "Scheduled URL file download found")
    assert_shape(status["data"], STATUS)
    assert status["data"]["status"] == "pending"
    other = V2(v2.client, "bob")
    assert_error(
        other.call("file/url_upload_status", scheduled_item_id=added["data"]["scheduled_item_id"]),
        "Could not find scheduled item.",
    )


def test_a_folder_password_protects_the_files_in_it(v2: V2) -> None:
    md5 = hashlib.md5(b"open sesame").hexdigest()  # noqa: S324 - the reference's format
    folder = v2.ok("folder/create", folder_name="Locked", is_public=1, access_password=md5)
    entry = v2.upload(b"behind the password", "in.txt", folder_id=folder["data"]["id"]).json()
    link = "/" + entry["data"][0]["url"].split("/", 3)[3]
    client = v2.client
    assert client.get(link).status_code == 401
    assert client.get(link, params={"pw": "wrong"}).status_code == 403
    assert client.get(link, params={"pw": "open sesame"}).content == b"behind the password"
    # The owner's download token still fetches it.
    token_url = v2.ok("file/download", file_id=entry["data"][0]["file_id"])["data"]
    assert client.get("/" + token_url["download_url"].split("/", 3)[3]).status_code == 200


def test_folder_edit_keeps_the_password_unless_given_an_md5_or_nothing(v2: V2) -> None:
    md5 = hashlib.md5(b"pw").hexdigest()  # noqa: S324 - the reference's format
    folder = v2.ok("folder/create", folder_name="F", access_password=md5)["data"]["id"]
    kept = v2.ok("folder/edit", folder_id=folder, access_password="plain text")["data"]
    # Kept, but only as a hash: the answer says there is one without saying what it is.
    assert kept["accessPassword"] == "*" * 32
    assert v2.ok("folder/info", folder_id=folder)["data"]["accessPassword"] == "*" * 32
    other = hashlib.md5(b"other").hexdigest()  # noqa: S324
    assert (
        v2.ok("folder/edit", folder_id=folder, access_password=other)["data"]["accessPassword"]
        == other
    )
    assert (
        v2.ok("folder/edit", folder_id=folder, access_password="")["data"]["accessPassword"] is None
    )


def test_upload_file_brackets_and_destination_messages(v2: V2) -> None:
    answer = v2.client.post(
        "/api/v2/file/upload",
        data=v2.auth,
        files=[("upload_file[]", ("a.txt", b"a")), ("upload_file[]", ("b.txt", b"b"))],
    ).json()
    assert [entry["name"] for entry in answer["data"]] == ["a.txt", "b.txt"]
    destination = "Could not find the destination folder id defined by folder_id."
    assert_error(v2.upload(b"x", folder_id="abc"), destination)
    file_id = answer["data"][0]["file_id"]
    assert_error(v2.call("file/edit", file_id=file_id, folder_id=999), destination)
    assert_error(
        v2.call("folder/create", folder_name="x", parent_id=999),
        "Could not find the parent folder id defined by parent_id.",
    )
