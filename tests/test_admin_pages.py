"""The /admin pages: who may see them, and every action as a form post (with its CSRF token,
answering 303 back) that changes what the core says, audited."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.helpers import bearer, log_in, path_of, upload, user_key
from tests.test_admin_cli import env_for

from satchel.cli import main
from satchel.config import Settings
from satchel.core.accounts import NewUser

HTML = {"Accept": "text/html"}


@pytest.fixture
def admin(client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    """An admin made as the operator does (`satchel admin create-user --admin`), logged in."""
    for name, value in env_for(settings).items():
        monkeypatch.setenv(name, value)
    assert main(["admin", "create-user", "root", "--password", "rootpassword", "--admin"]) == 0
    return log_in(client, "root")


def state_of(client: TestClient) -> Any:
    return client.app.state.satchel  # type: ignore[attr-defined]


def post(client: TestClient, path: str, token: str, **fields: str) -> Any:
    return client.post(
        path, data={"csrf_token": token, **fields}, headers=HTML, follow_redirects=False
    )


def events(client: TestClient, event: str) -> list[Any]:
    entries: list[Any] = state_of(client).audit.latest(100, event)
    return entries


def test_guests_go_to_the_login_and_users_get_403(client: TestClient) -> None:
    for path in ("/admin", "/admin/users", "/admin/audit"):
        answer = client.get(path, headers=HTML, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/login?next={path}"
    token = log_in(client, "alice")
    assert client.get("/admin", headers=HTML).status_code == 403
    alice = state_of(client).accounts.get("alice")
    answer = post(client, f"/admin/users/{alice.id}/api", token, api="off")
    assert answer.status_code == 403
    assert state_of(client).accounts.get("alice").api_enabled


def test_the_overview_counts_what_is_stored(client: TestClient, admin: str) -> None:
    upload(client, b"x" * 1000, name="a.bin")
    upload(client, b"y" * 24, name="b.bin")
    page = client.get("/admin", headers=HTML)
    assert page.status_code == 200
    assert "files stored" in page.text
    figures = state_of(client).admin.figures()
    assert (figures.files, figures.bytes_stored, figures.users, figures.admins) == (2, 1024, 1, 1)
    assert "1 KB" in page.text  # 1,024 bytes: binary multiples, as limits are set


def test_every_action_needs_the_csrf_token(client: TestClient, admin: str) -> None:
    bob = state_of(client).accounts.create_user(NewUser("bob", "password1"))
    client.headers.pop("X-CSRF-Token")
    for path, fields in (
        (f"/admin/users/{bob.id}/api", {"api": "off"}),
        (f"/admin/users/{bob.id}/disabled", {"disabled": "on"}),
        (f"/admin/users/{bob.id}/package", {"package": "premium"}),
        ("/admin/packages", {"name": "gold", "label": "Gold"}),
        ("/admin/invites", {"expires": "7d"}),
        ("/admin/uploads/1/remove", {}),
    ):
        answer = client.post(path, data=fields, headers=HTML, follow_redirects=False)
        assert answer.status_code == 403, path
        assert "CSRF" in answer.text
    bob = state_of(client).accounts.get("bob")
    assert (bob.api_enabled, bob.is_disabled, bob.package) == (True, False, "free")


def test_users_search_and_paging(client: TestClient, admin: str) -> None:
    accounts = state_of(client).accounts
    for n in range(30):
        accounts.create_user(NewUser(f"user{n:02d}", "password1", email=f"u{n}@example.org"))
    accounts.create_user(NewUser("odd_one", "password1", email="odd@example.net"))
    first = client.get("/admin/users", headers=HTML)
    assert "32 users" in first.text
    assert "Page 1 of 2" in first.text
    assert "user24" not in first.text
    second = client.get("/admin/users?page=2", headers=HTML)
    assert "user29" in second.text
    by_email = client.get("/admin/users?q=example.net", headers=HTML)
    assert "odd_one" in by_email.text
    assert "user01" not in by_email.text
    # % and _ match themselves.
    assert "1 user " in client.get("/admin/users?q=_", headers=HTML).text
    assert "0 users" in client.get("/admin/users?q=%25", headers=HTML).text


def test_package_disable_and_api_access(client: TestClient, admin: str) -> None:
    state = state_of(client)
    bob = state.accounts.create_user(NewUser("bob", "password1"))
    back = "/admin/users?q=bo"
    answer = post(client, f"/admin/users/{bob.id}/package", admin, package="premium", back=back)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/users?q=bo&done=package"
    assert state.accounts.get("bob").package == "premium"
    unknown = post(client, f"/admin/users/{bob.id}/package", admin, package="nope", back=back)
    # The page again, as it was (its search too), its forms still going back to it.
    assert 'name="back" value="/admin/users?q=bo"' in unknown.text
    assert 'name="q" value="bo"' in unknown.text
    assert unknown.status_code == 400
    assert "No package" in unknown.text

    assert post(client, f"/admin/users/{bob.id}/disabled", admin, disabled="on").status_code == 303
    assert state.accounts.get("bob").is_disabled
    assert post(client, f"/admin/users/{bob.id}/disabled", admin, disabled="off").status_code == 303
    assert not state.accounts.get("bob").is_disabled

    assert post(client, f"/admin/users/{bob.id}/api", admin, api="off").status_code == 303
    assert not state.accounts.get("bob").api_enabled
    names = [e.event for e in state.audit.latest(10, "admin.")]
    assert names == [
        "admin.user.api", "admin.user.enabled", "admin.user.disabled", "admin.user.package",
    ]  # fmt: skip
    assert all(
        e.actor == "root" and e.target == "user:bob" for e in state.audit.latest(4, "admin.")
    )


def test_an_admin_cannot_disable_themself(client: TestClient, admin: str) -> None:
    root = state_of(client).accounts.get("root")
    answer = post(client, f"/admin/users/{root.id}/disabled", admin, disabled="on")
    assert answer.status_code == 400
    assert "your own account" in answer.text
    assert not state_of(client).accounts.get("root").is_disabled


def test_api_access_off_refuses_apiv1_keys_and_v2_tokens(client: TestClient, admin: str) -> None:
    key = user_key(client, "carol", "read")
    state = state_of(client)
    carol = state.accounts.get("carol")
    key1, key2 = state.v2auth.generate_keys(carol.id)
    v2 = client.post("/api/v2/authorize", data={"key1": key1, "key2": key2}).json()["data"]
    assert client.get("/apiv1/files", headers=bearer(key)).status_code == 200
    post(client, f"/admin/users/{carol.id}/api", admin, api="off")
    refused = client.get("/apiv1/files", headers=bearer(key))
    assert refused.status_code == 403
    assert refused.json()["error"] == "API access is disabled for this account"
    info = client.get("/api/v2/account/info", params=v2).json()
    assert info["_status"] == "error"
    again = client.post("/api/v2/authorize", data={"key1": key1, "key2": key2}).json()
    assert again["_status"] == "error"
    post(client, f"/admin/users/{carol.id}/api", admin, api="on")
    assert client.get("/apiv1/files", headers=bearer(key)).status_code == 200


def test_packages_are_created_and_edited(client: TestClient, admin: str) -> None:
    state = state_of(client)
    fields = {"label": "Gold", "max_upload_size": "2GiB", "max_storage_bytes": "100GB"}
    answer = post(client, "/admin/packages", admin, name="gold", **fields, concurrent_uploads="3")
    assert answer.status_code == 303
    gold = state.accounts.packages["gold"]
    assert (gold.label, gold.max_upload_size, gold.max_storage_bytes) == ("Gold", 2 << 30, 10**11)
    assert gold.id > max(p.id for p in state.admin.packages() if p.name != "gold")
    # Editing keeps what is not sent; users can be moved to the new package.
    post(client, "/admin/packages", admin, name="free", label="Free forever", can_upload_given="1")
    free = state.accounts.packages["free"]
    assert (free.label, free.max_upload_size, free.can_upload) == ("Free forever", 5 << 30, False)
    bob = state.accounts.create_user(NewUser("bob", "password1"))
    post(client, f"/admin/users/{bob.id}/package", admin, package="gold")
    assert state.accounts.package_of(state.accounts.get("bob")).label == "Gold"
    page = client.get("/admin/packages?edit=gold", headers=HTML)
    assert 'value="2GiB"' in page.text
    assert "Edit “Gold”" in page.text
    bad = post(client, "/admin/packages", admin, name="gold", max_upload_size="lots")
    assert bad.status_code == 400
    assert "not a size" in bad.text
    assert post(client, "/admin/packages", admin, name="guest", label="x").status_code == 400
    assert post(client, "/admin/packages", admin, name="gold", label=" ").status_code == 400
    assert post(client, "/admin/packages", admin, name="a/b", label="x").status_code == 400
    saved = [e.target for e in state.audit.latest(10, "admin.package.saved")]
    assert saved == ["package:free", "package:gold"]


def test_invites_are_created_listed_and_revoked(client: TestClient, admin: str) -> None:
    state = state_of(client)
    created = post(client, "/admin/invites", admin, expires="1d")
    assert created.status_code == 200
    code = created.text.split('id="invite-code" value="', 1)[1].split('"', 1)[0]
    assert len(code) == 24
    invites = state.admin.invite_list()
    assert len(invites) == 1
    assert invites[0].expires_at is not None
    listed = client.get("/admin/invites", headers=HTML).text
    assert f"#{invites[0].id}" in listed
    assert code not in listed
    answer = post(client, f"/admin/invites/{invites[0].id}/revoke", admin)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/invites?done=revoked"
    assert state.admin.invite_list() == []
    assert post(client, "/admin/invites/999/revoke", admin).status_code == 404
    assert post(client, "/admin/invites", admin, expires="forever").status_code == 400
    assert [e.event for e in state.audit.latest(5, "admin.invite.")] == [
        "admin.invite.revoked",
        "admin.invite.created",
    ]


def test_recent_uploads_and_remove(client: TestClient, admin: str) -> None:
    kept = upload(client, b"keep me", name="kept.txt")
    gone = upload(client, b"remove me", name="<i>bad.txt")
    page = client.get("/admin/uploads", headers=HTML).text
    assert page.index("&lt;i&gt;bad.txt") < page.index("kept.txt")  # newest first
    assert "<i>bad" not in page
    record = state_of(client).files.lookup(path_of(gone["download_url"]).split("/")[2])
    answer = post(client, f"/admin/uploads/{record.id}/remove", admin, back="/admin/uploads?page=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/uploads?page=1&done=removed"
    assert client.get(path_of(gone["download_url"])).status_code == 404
    assert client.get(path_of(kept["download_url"])).status_code == 200
    assert post(client, f"/admin/uploads/{record.id}/remove", admin).status_code == 404
    [removed] = events(client, "admin.file.removed")
    assert removed.target.startswith(f"file:{record.id} ")
    assert removed.ip == "testclient"


def test_back_never_leaves_the_admin_pages(client: TestClient, admin: str) -> None:
    bob = state_of(client).accounts.create_user(NewUser("bob", "password1"))
    for back in ("https://evil.example/", "//evil.example", "/account"):
        answer = post(client, f"/admin/users/{bob.id}/api", admin, api="off", back=back)
        assert answer.headers["location"] == "/admin/users?done=api"
    # The page's own query comes back as it was sent; an old notice does not.
    back = "/admin/users?q=a+b%25&page=2&done=package"
    answer = post(client, f"/admin/users/{bob.id}/api", admin, api="on", back=back)
    assert answer.headers["location"] == "/admin/users?q=a+b%25&page=2&done=api"


def test_the_audit_page_filters(client: TestClient, admin: str) -> None:
    state = state_of(client)
    bob = state.accounts.create_user(NewUser("bob", "password1"))
    post(client, f"/admin/users/{bob.id}/api", admin, api="off")
    state.accounts.authenticate("bob", "wrong password", "10.0.0.9")
    page = client.get("/admin/audit?event=login.failed", headers=HTML).text
    assert "10.0.0.9" in page
    assert "admin.user.api</code>" not in page
    by_user = client.get("/admin/audit?user=bob", headers=HTML).text
    assert "admin.user.api" in by_user
    assert "login.failed" in by_user
    assert "No user" in client.get("/admin/audit?user=nobody", headers=HTML).text
    family = client.get("/admin/audit?event=admin.", headers=HTML).text
    assert "admin.user.api</code>" in family
    assert "login.failed</code>" not in family
