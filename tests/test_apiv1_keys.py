"""/apiv1/keys over HTTP, with the reference's request bodies."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from satchel.core.accounts import NewUser
from satchel.web.state import AppState


def make_user_key(client: TestClient, name: str, **permissions: bool) -> str:
    state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
    user = state.accounts.find(name) or state.accounts.create_user(NewUser(name, "password1"))
    return state.apikeys.create(user, "bootstrap", permissions, []).secret


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_create_list_patch_revoke(client: TestClient) -> None:
    admin_key = make_user_key(client, "alice", manage_keys=True, read=True, write=True)
    body = {
        "label": "backup script",
        "permissions": {"read": True, "write": True},
        "allowed_ips": ["192.0.2.0/24"],
    }
    created = client.post("/apiv1/keys", json=body, headers=auth(admin_key))
    assert created.status_code == 201
    new = created.json()
    assert new["key"].startswith("sat_")
    assert new["permissions"]["write"] is True
    assert new["permissions"]["delete"] is False
    assert new["allowed_ips"] == ["192.0.2.0/24"]
    listed = client.get("/apiv1/keys", headers=auth(admin_key)).json()["keys"]
    assert [k["label"] for k in listed] == ["bootstrap", "backup script"]
    assert all("key" not in k for k in listed)  # the secret is never shown again
    patched = client.patch(
        f"/apiv1/keys/{new['id']}", json={"permissions": {"read": True}}, headers=auth(admin_key)
    )
    assert patched.status_code == 200
    assert patched.json()["permissions"]["write"] is False
    assert patched.json()["label"] == "backup script"  # absent fields stay
    assert client.delete(f"/apiv1/keys/{new['id']}", headers=auth(admin_key)).json() == {
        "success": True
    }
    revoked = client.get("/apiv1/keys", headers=auth(new["key"]))
    assert revoked.status_code == 401
    assert revoked.json() == {"error": "This API key has been revoked"}


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "Missing API key: send Authorization: Bearer <key>"),
        ({"Authorization": "Bearer nonsense"}, 401, "Invalid API key"),
        ({"Authorization": "Bearer sat_" + "A" * 40}, 401, "Invalid API key"),
    ],
)
def test_unauthenticated(
    client: TestClient, headers: dict[str, str], status: int, message: str
) -> None:
    response = client.get("/apiv1/keys", headers=headers)
    assert response.status_code == status
    assert response.json() == {"error": message}


def test_permission_and_ip_rules(client: TestClient) -> None:
    read_only = make_user_key(client, "bob", read=True)
    response = client.get("/apiv1/keys", headers=auth(read_only))
    assert response.status_code == 403
    assert response.json() == {"error": "This API key lacks the 'manage_keys' permission"}
    manager = make_user_key(client, "bob", manage_keys=True)
    elsewhere = client.post(
        "/apiv1/keys",
        json={"permissions": {"manage_keys": True}, "allowed_ips": ["198.51.100.0/24"]},
        headers=auth(manager),
    ).json()["key"]
    blocked = client.get(
        "/apiv1/keys", headers=auth(elsewhere)
    )  # the test client is 'testclient', not in the list
    assert blocked.status_code == 403
    assert blocked.json() == {"error": "This API key is not allowed from your IP address"}
    wide = client.post("/apiv1/keys", json={"allowed_ips": ["10.0.0.0/16"]}, headers=auth(manager))
    assert wide.status_code == 400
    assert "wider than /24" in wide.json()["error"]


def test_eleventh_key_is_refused(client: TestClient) -> None:
    manager = make_user_key(client, "carol", manage_keys=True)
    for n in range(9):
        assert (
            client.post("/apiv1/keys", json={"label": f"k{n}"}, headers=auth(manager)).status_code
            == 201
        )
    eleventh = client.post("/apiv1/keys", json={"label": "k10"}, headers=auth(manager))
    assert eleventh.status_code == 400
    assert "At most 10 active" in eleventh.json()["error"]


def test_another_users_key_ids_are_not_found(client: TestClient) -> None:
    alice = make_user_key(client, "alice", manage_keys=True)
    bob = make_user_key(client, "bob", manage_keys=True)
    bobs_key = client.get("/apiv1/keys", headers=auth(bob)).json()["keys"][0]["id"]
    assert (
        client.patch(
            f"/apiv1/keys/{bobs_key}", json={"label": "x"}, headers=auth(alice)
        ).status_code
        == 404
    )
    assert client.delete(f"/apiv1/keys/{bobs_key}", headers=auth(alice)).status_code == 404
    assert client.get("/apiv1/keys", headers=auth(bob)).status_code == 200


def test_bad_bodies(client: TestClient) -> None:
    manager = make_user_key(client, "dave", manage_keys=True)
    for body, message in (
        (b"not json", "Invalid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"permissions": {"root": true}}', "Unknown permission"),
        (b'{"permissions": ["read"]}', "object"),
        (b'{"allowed_ips": "192.0.2.1"}', "list"),
    ):
        response = client.post(
            "/apiv1/keys",
            content=body,
            headers={**auth(manager), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, body
        assert message in response.json()["error"]
