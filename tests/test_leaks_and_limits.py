"""What a link must not tell, numbers a client sends, names that are too long, addresses that
must not be enumerable, and the page CSP."""

from __future__ import annotations

import base64
import json
import re

import pytest
from starlette.testclient import TestClient
from tests.helpers import api_upload, bearer, path_of, upload, user_key
from tests.test_apiv2 import V2
from tests.test_pages import BROWSER, PUBLIC, log_in, log_out, shared, state_of
from tests.test_web_accounts import PASSWORD, csrf_of

from satchel.core.names import MAX_NAME_BYTES

HUGE = 10**30
TUS = {"Tus-Resumable": "1.0.0"}


# -- metadata of private and protected files ------------------------------------------------


def test_stats_of_a_private_file_tell_nothing_to_others(client: TestClient) -> None:
    result = upload(client, b"secret", "plans.txt", public="false")
    stats = f"/stats/{result['file_id']}"
    refused = client.get(stats)
    assert refused.status_code == 403
    assert "plans" not in refused.text


def test_stats_of_a_password_file_ask_for_the_password(client: TestClient) -> None:
    result = upload(client, b"secret", "plans.txt", password="pw")
    stats = f"/stats/{result['file_id']}"
    for params, status in (({}, 401), ({"pw": "wrong"}, 403)):
        answer = client.get(stats, params=params)
        assert answer.status_code == status
        assert "plans" not in answer.text
    assert client.get(stats, params={"pw": "pw"}).json()["name"] == "plans.txt"
    page = client.get(stats, headers=BROWSER)
    assert page.status_code == 401
    assert 'name="pw"' in page.text or 'name="password"' in page.text
    assert "plans" not in page.text


def test_stats_of_a_private_drive_file_are_for_its_owner(client: TestClient) -> None:
    key = user_key(client, "alice")
    uploaded = api_upload(client, key, ("ledger.csv", b"1,2,3"))[0]
    uuid = uploaded["download_url"].split("/")[4]
    assert client.get(f"/stats/{uuid}").status_code == 403
    log_in(client, "alice")
    assert client.get(f"/stats/{uuid}").json()["name"] == "ledger.csv"
    log_out(client)


def test_a_short_link_redirect_names_only_an_open_file(client: TestClient) -> None:
    protected = upload(client, b"x", "salaries.xlsx", password="pw", short_url="true")
    private = upload(client, b"x", "private.txt", public="false", short_url="true")
    open_ = upload(client, b"x", "open.txt", short_url="true")
    for result, named in ((protected, False), (private, False), (open_, True)):
        answer = client.get(path_of(result["short_url"]), headers=BROWSER, follow_redirects=False)
        assert answer.status_code == 302
        location = answer.headers["location"]
        assert location.startswith(f"http://testserver/f/{result['file_id']}")
        assert (result["name"] in location) is named, location


# -- numbers from clients --------------------------------------------------------------------


def cursor(kind: str, name: str, item_id: object) -> str:
    raw = json.dumps([kind, name, item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("item_id", [HUGE, -1, 0, 2**63, True])
def test_cursors_with_out_of_range_ids_are_400(client: TestClient, item_id: object) -> None:
    key = user_key(client, "alice")
    answer = client.get(
        "/apiv1/files", params={"cursor": cursor("file", "a", item_id)}, headers=bearer(key)
    )
    assert answer.status_code == 400
    assert answer.json() == {"error": "Invalid cursor"}


def test_a_public_folder_page_with_a_huge_cursor_is_400(client: TestClient) -> None:
    user_key(client, "alice")
    folder = shared(client, "alice", "Open", PUBLIC)
    answer = client.get(
        f"/folder/{folder.share_code}", params={"cursor": cursor("file", "a", HUGE)}
    )
    assert answer.status_code == 400


def test_huge_ids_in_api_v2_answer_in_the_envelope(client: TestClient) -> None:
    v2 = V2(client)
    status = v2.call("file/url_upload_status", scheduled_item_id="9" * 40).json()
    assert status["_status"] == "error"
    assert status["response"] == "Could not find scheduled item."
    for endpoint, field in (("file/info", "file_id"), ("folder/info", "folder_id")):
        answer = v2.call(endpoint, **{field: "9" * 40}).json()
        assert answer["_status"] == "error", endpoint


@pytest.mark.parametrize("value", [str(HUGE), "²", "١٢"])
def test_numbers_that_are_not_ids_are_refused_cleanly(client: TestClient, value: str) -> None:
    key = user_key(client, "alice")
    assert client.get(f"/apiv1/files/{value}", headers=bearer(key)).status_code == 404
    assert client.delete(f"/apiv1/keys/{value}", headers=bearer(key)).status_code == 404
    folder = client.post("/upload", files={"files": ("a", b"a")}, data={"folder_id": value})
    assert folder.status_code == 400
    made = client.post("/apiv1/folders", json={"name": "x", "parent_id": HUGE}, headers=bearer(key))
    assert made.status_code == 400
    raw = value.encode()  # headers travel as bytes: what a client may send is not ASCII
    created = client.post("/tus/", headers={**TUS, "Upload-Length": raw})  # type: ignore[dict-item]
    assert created.status_code == 400
    path = path_of(client.post("/tus/", headers={**TUS, "Upload-Length": "4"}).headers["location"])
    headers = {**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": raw}
    assert client.patch(path, content=b"abcd", headers=headers).status_code in (400, 409)


# -- long names --------------------------------------------------------------------------------


def test_a_ten_thousand_character_name_is_reduced_not_refused(client: TestClient) -> None:
    name = "n" * 10_000 + ".txt"
    result = upload(client, b"long", name)
    assert result["name"].endswith(".txt")
    assert len(result["name"].encode()) <= MAX_NAME_BYTES
    assert client.get(path_of(result["download_url"])).content == b"long"
    key = user_key(client, "alice")
    drive = api_upload(client, key, ("é" * 10_000 + ".bin", b"drive"))[0]
    assert len(drive["name"].encode()) <= MAX_NAME_BYTES
    metadata = "filename " + base64.b64encode(name.encode()).decode()
    created = client.post(
        "/tus/",
        headers={
            **TUS,
            "Upload-Length": "3",
            "Upload-Metadata": metadata,
            "Content-Type": "application/offset+octet-stream",
        },
        content=b"tus",
    )
    assert created.status_code == 201, created.text
    finished = client.get(path_of(created.headers["satchel-download-url"]))
    assert finished.content == b"tus"
    disposition = finished.headers["content-disposition"]
    assert len(re.search(r'filename="([^"]*)"', disposition).group(1)) <= MAX_NAME_BYTES  # type: ignore[union-attr]


# -- registration --------------------------------------------------------------------------------


def test_registering_with_a_taken_email_answers_as_for_a_new_one(client: TestClient) -> None:
    def register(username: str, email: str) -> object:
        fields = {"username": username, "password": PASSWORD, "email": email}
        answer = client.post("/register", data=fields, headers={"X-CSRF-Token": csrf_of(client)})
        client.cookies.clear()
        return answer

    first = register("first", "owner@example.org")
    second = register("second", "owner@example.org")
    third = register("third", "new@example.org")
    for answer, name in ((first, "first"), (second, "second"), (third, "third")):
        assert answer.status_code == 201  # type: ignore[attr-defined]
        assert answer.json() == {"username": name}  # type: ignore[attr-defined]
    accounts = state_of(client).accounts
    assert accounts.get("first").email == "owner@example.org"
    assert accounts.get("second").email is None
    assert register("first", "other@example.org").status_code == 409  # type: ignore[attr-defined]


# -- the page CSP --------------------------------------------------------------------------------


def test_pages_admit_only_their_own_static_files_and_nonce(client: TestClient) -> None:
    for path in ("/", "/login", "/register"):
        page = client.get(path, headers=BROWSER)
        policy = dict(
            part.strip().split(" ", 1)
            for part in page.headers["content-security-policy"].split(";")
        )
        nonce = re.search(r"'nonce-([^']+)'", policy["script-src"]).group(1)  # type: ignore[union-attr]
        # This response's nonce and Satchel's own script folder: no path an upload can take.
        assert policy["script-src"] == f"'nonce-{nonce}' http://testserver/static/js/", path
        assert "'self'" not in policy["style-src"]
        assert "unsafe" not in policy["style-src"]
        assert policy["style-src"] == f"'nonce-{nonce}' http://testserver/static/"
        assert policy["default-src"] == "'none'"
        assert policy["frame-ancestors"] == "'none'"
        for tag in re.findall(r"<(?:script|style)\b[^>]*>", page.text):
            assert f'nonce="{nonce}"' in tag, (path, tag)
        again = client.get(path, headers=BROWSER).headers["content-security-policy"]
        assert nonce not in again  # a new nonce for every page
