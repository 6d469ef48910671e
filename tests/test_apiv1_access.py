"""Every /apiv1 endpoint: each 401/403 reason, allow-lists and proxies, and isolation between
users (another user's ids behave exactly like ids that do not exist)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.helpers import ALL_PERMISSIONS, api_upload, bearer, make_folder, user_key

from satchel.config import Settings, load_settings
from satchel.web.app import create_app
from satchel.web.state import AppState

# (method, path, permission): the "ALL ENDPOINTS" table of the reference.
ENDPOINTS = [
    ("GET", "/apiv1/keys", "manage_keys"),
    ("POST", "/apiv1/keys", "manage_keys"),
    ("PATCH", "/apiv1/keys/{key}", "manage_keys"),
    ("DELETE", "/apiv1/keys/{key}", "manage_keys"),
    ("POST", "/apiv1/upload", "write"),
    ("GET", "/apiv1/download/{file}", "download"),
    ("GET", "/apiv1/files", "read"),
    ("GET", "/apiv1/files/{folder}", "read"),
    ("GET", "/apiv1/files/{file}/properties", "read"),
    ("DELETE", "/apiv1/files/{file}", "delete"),
    ("POST", "/apiv1/folders", "write"),
    ("DELETE", "/apiv1/folders/{folder}", "delete"),
    ("GET", "/apiv1/search?q=a", "read"),
    ("GET", "/apiv1/trash", "read"),
    ("POST", "/apiv1/trash/{trashed}/restore", "restore"),
    ("DELETE", "/apiv1/trash/{trashed}", "delete"),
    ("DELETE", "/apiv1/trash/empty", "delete"),
]
IDS = {"key": 1, "file": 1, "folder": 1, "trashed": 1}


def call(
    client: TestClient, method: str, path: str, headers: dict[str, str], ids: dict[str, int]
) -> Any:
    url = path.format(**ids)
    if url == "/apiv1/upload":
        return client.post(url, files={"file": ("x.txt", b"x")}, headers=headers)
    body: dict[str, Any] | None = None
    if method in ("POST", "PATCH") and "restore" not in url:
        body = {"name": "new folder"} if "folders" in url else {"label": "x"}
    return client.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "permission"), ENDPOINTS)
def test_every_endpoint_refuses_missing_invalid_and_revoked_keys(
    client: TestClient, method: str, path: str, permission: str
) -> None:
    state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
    missing = call(client, method, path, {}, IDS)
    assert missing.status_code == 401
    assert missing.json() == {"error": "Missing API key: send Authorization: Bearer <key>"}
    invalid = call(client, method, path, bearer("sat_" + "x" * 40), IDS)
    assert (invalid.status_code, invalid.json()) == (401, {"error": "Invalid API key"})
    basic = call(client, method, path, {"Authorization": "Basic dXNlcjpwYXNz"}, IDS)
    assert (basic.status_code, basic.json()) == (401, {"error": "Invalid API key"})
    key = user_key(client, "alice")
    user = state.accounts.get("alice")
    [active] = [k for k in state.apikeys.list(user) if k.hint == key[:8]]
    state.apikeys.revoke(user, active.id)
    revoked = call(client, method, path, bearer(key), IDS)
    assert revoked.status_code == 401
    assert revoked.json() == {"error": "This API key has been revoked"}


@pytest.mark.parametrize(("method", "path", "permission"), ENDPOINTS)
def test_every_endpoint_needs_its_permission(
    client: TestClient, method: str, path: str, permission: str
) -> None:
    others = [p for p in ALL_PERMISSIONS if p != permission]
    lacking = user_key(client, "alice", *others)
    response = call(client, method, path, bearer(lacking), IDS)
    assert response.status_code == 403
    assert response.json() == {"error": f"This API key lacks the '{permission}' permission"}
    granted = user_key(client, "alice", permission)
    allowed = call(client, method, path, bearer(granted), IDS)
    assert allowed.status_code not in (401, 403), allowed.text


@pytest.mark.parametrize(("method", "path", "permission"), ENDPOINTS)
def test_every_endpoint_answers_403_when_api_access_is_off(
    client: TestClient, method: str, path: str, permission: str
) -> None:
    state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
    key = user_key(client, "alice")
    state.accounts.set_api_access("alice", False)
    response = call(client, method, path, bearer(key), IDS)
    assert response.status_code == 403
    assert response.json() == {"error": "API access is disabled for this account"}
    state.accounts.set_api_access("alice", True)
    state.accounts.set_disabled("alice", True)
    assert call(client, method, path, bearer(key), IDS).status_code == 403


def keyed(client: TestClient, allowed_ips: list[str]) -> str:
    manager = user_key(client, "alice", "manage_keys", "read")
    created = client.post(
        "/apiv1/keys",
        json={"permissions": {"read": True}, "allowed_ips": allowed_ips},
        headers=bearer(manager),
    )
    assert created.status_code == 201, created.text
    secret: str = created.json()["key"]
    return secret


def test_key_allowed_only_for_another_subnet(client: TestClient) -> None:
    secret = keyed(client, ["198.51.100.0/24", "192.0.2.7"])
    inside = TestClient(client.app, client=("198.51.100.200", 5000))
    assert inside.get("/apiv1/files", headers=bearer(secret)).status_code == 200
    single = TestClient(client.app, client=("192.0.2.7", 5000))
    assert single.get("/apiv1/files", headers=bearer(secret)).status_code == 200
    for outside in ("198.51.101.1", "192.0.2.8", "203.0.113.5"):
        other = TestClient(client.app, client=(outside, 5000))
        response = other.get("/apiv1/files", headers=bearer(secret))
        assert response.status_code == 403, outside
        assert response.json() == {"error": "This API key is not allowed from your IP address"}


def test_allow_list_wider_than_24_is_refused(client: TestClient) -> None:
    manager = user_key(client, "alice", "manage_keys")
    for wide in (["10.0.0.0/16"], ["10.0.0.0/23"], ["0.0.0.0/0"]):
        response = client.post("/apiv1/keys", json={"allowed_ips": wide}, headers=bearer(manager))
        assert response.status_code == 400
        assert "wider than /24" in response.json()["error"]
    too_many = [f"192.0.2.{n}" for n in range(11)]
    response = client.post("/apiv1/keys", json={"allowed_ips": too_many}, headers=bearer(manager))
    assert response.status_code == 400
    ipv6 = client.post("/apiv1/keys", json={"allowed_ips": ["::1"]}, headers=bearer(manager))
    assert ipv6.status_code == 400


def test_eleventh_key(client: TestClient) -> None:
    manager = user_key(client, "alice", "manage_keys")
    for _ in range(9):
        assert client.post("/apiv1/keys", json={}, headers=bearer(manager)).status_code == 201
    response = client.post("/apiv1/keys", json={}, headers=bearer(manager))
    assert response.status_code == 400
    assert "At most 10 active" in response.json()["error"]
    # Revoking one makes room again.
    keys = client.get("/apiv1/keys", headers=bearer(manager)).json()["keys"]
    client.delete(f"/apiv1/keys/{keys[-1]['id']}", headers=bearer(manager))
    assert client.post("/apiv1/keys", json={}, headers=bearer(manager)).status_code == 201


@pytest.fixture
def proxied_settings(settings: Settings) -> Settings:
    return load_settings(
        environ={}, overrides={**settings.values, "trusted_proxies": ["10.9.0.0/24"]}
    )


@pytest.fixture
def proxied(proxied_settings: Settings) -> Iterator[TestClient]:
    app = create_app(proxied_settings, migrate=False, run_jobs=False)
    with TestClient(app, client=("10.9.0.2", 4000)) as test_client:
        yield test_client


def test_forwarded_for_counts_only_from_trusted_proxies(proxied: TestClient) -> None:
    secret = keyed(proxied, ["198.51.100.0/24"])
    via_proxy = {**bearer(secret), "X-Forwarded-For": "198.51.100.9"}
    assert proxied.get("/apiv1/files", headers=via_proxy).status_code == 200
    # The same header from a peer that is not a configured proxy is ignored.
    direct = TestClient(proxied.app, client=("203.0.113.50", 4000))
    spoofed = direct.get("/apiv1/files", headers=via_proxy)
    assert spoofed.status_code == 403
    assert spoofed.json() == {"error": "This API key is not allowed from your IP address"}
    # A client that prepends its own entry behind the proxy gains nothing either.
    chained = {**bearer(secret), "X-Forwarded-For": "198.51.100.9, 203.0.113.50"}
    assert proxied.get("/apiv1/files", headers=chained).status_code == 403


def test_last_use_is_recorded(client: TestClient) -> None:
    key = user_key(client, "alice", "read", "manage_keys")
    other = TestClient(client.app, client=("192.0.2.44", 5000))
    other.get("/apiv1/files", headers=bearer(key))
    listed = client.get("/apiv1/keys", headers=bearer(key)).json()["keys"]
    assert listed[0]["last_used_at"] is not None


def test_users_cannot_reach_each_others_things(client: TestClient) -> None:
    alice = user_key(client, "alice")
    bob = user_key(client, "bob")
    folder = make_folder(client, alice, "private")
    [record] = api_upload(client, alice, ("secret.txt", b"alice only"), folder_id=folder)
    [trashed] = api_upload(client, alice, ("old.txt", b"old"))
    trashed_folder = make_folder(client, alice, "old folder")
    client.delete(f"/apiv1/files/{trashed['id']}", headers=bearer(alice))
    client.delete(f"/apiv1/folders/{trashed_folder}", headers=bearer(alice))
    alice_key_id = client.get("/apiv1/keys", headers=bearer(alice)).json()["keys"][0]["id"]
    # Bob owns things with other ids, so that a 404 is not just an empty database.
    make_folder(client, bob, "bobs")
    api_upload(client, bob, ("bob.txt", b"b"))

    ids = {"key": alice_key_id, "file": record["id"], "folder": folder, "trashed": trashed["id"]}
    for method, path, _permission in ENDPOINTS:
        if "{" not in path:
            continue
        response = call(client, method, path, bearer(bob), ids)
        assert response.status_code == 404, (method, path, response.text)
    as_bob = client.post(f"/apiv1/trash/{trashed_folder}/restore?type=folder", headers=bearer(bob))
    assert as_bob.status_code == 404
    upload_into = client.post(
        "/apiv1/upload",
        files={"file": ("x.txt", b"x")},
        data={"folder_id": str(folder)},
        headers=bearer(bob),
    )
    assert upload_into.status_code == 404
    nested = client.post(
        "/apiv1/folders", json={"name": "in", "parent_id": folder}, headers=bearer(bob)
    )
    assert nested.status_code == 404

    # Nothing of Alice's shows in Bob's listings, search or trash, or changes his empty-trash.
    assert "secret" not in client.get("/apiv1/files", headers=bearer(bob)).text
    assert client.get("/apiv1/search?q=secret", headers=bearer(bob)).json()["files"] == []
    assert client.get("/apiv1/search?q=private", headers=bearer(bob)).json()["folders"] == []
    bob_trash = client.get("/apiv1/trash", headers=bearer(bob)).json()
    assert bob_trash["files"] == []
    assert bob_trash["folders"] == []
    assert client.delete("/apiv1/trash/empty", headers=bearer(bob)).json()["deleted_files"] == 0
    assert [k["id"] for k in client.get("/apiv1/keys", headers=bearer(bob)).json()["keys"]] != [
        alice_key_id
    ]

    # Alice still has everything.
    got = client.get(f"/apiv1/download/{record['id']}", headers=bearer(alice))
    assert got.content == b"alice only"
    trash = client.get("/apiv1/trash", headers=bearer(alice)).json()
    assert [f["name"] for f in trash["files"]] == ["old.txt"]
    assert [f["name"] for f in trash["folders"]] == ["old folder"]
    assert client.get("/apiv1/keys", headers=bearer(alice)).status_code == 200


def test_a_key_grants_no_more_than_it_holds(client: TestClient) -> None:
    manager = user_key(client, "alice", "manage_keys", "read")
    wider = client.post(
        "/apiv1/keys", json={"permissions": {"read": True, "delete": True}}, headers=bearer(manager)
    )
    assert wider.status_code == 403
    assert wider.json() == {"error": "A key can only grant permissions it has itself (not delete)"}
    narrow = client.post(
        "/apiv1/keys",
        json={"permissions": {"read": True}, "allowed_ips": ["192.0.2.0/24"]},
        headers=bearer(manager),
    )
    assert narrow.status_code == 201
    own_id = client.get("/apiv1/keys", headers=bearer(manager)).json()["keys"][0]["id"]
    self_raise = client.patch(
        f"/apiv1/keys/{own_id}",
        json={"permissions": {"manage_keys": True, "write": True}},
        headers=bearer(manager),
    )
    assert self_raise.status_code == 403
    unknown = client.patch(f"/apiv1/keys/{own_id}", json={"bogus": 1}, headers=bearer(manager))
    assert unknown.status_code == 400
    assert "Unknown field(s): bogus" in unknown.json()["error"]


def test_a_bound_key_creates_only_keys_bound_inside_its_list(client: TestClient) -> None:
    keyed_manager = user_key(client, "alice", "manage_keys", "read")
    created = client.post(
        "/apiv1/keys",
        json={"permissions": {"manage_keys": True, "read": True}, "allowed_ips": ["192.0.2.0/24"]},
        headers=bearer(keyed_manager),
    ).json()["key"]
    inside = TestClient(client.app, client=("192.0.2.10", 5000))
    for allowed, status in (([], 403), (["198.51.100.0/24"], 403), (["192.0.2.128/25"], 201)):
        response = inside.post(
            "/apiv1/keys",
            json={"permissions": {"read": True}, "allowed_ips": allowed},
            headers=bearer(created),
        )
        assert response.status_code == status, (allowed, response.text)


def test_401_names_the_scheme(client: TestClient) -> None:
    response = client.get("/apiv1/files")
    assert response.headers["www-authenticate"] == 'Bearer realm="satchel"'
