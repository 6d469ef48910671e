"""The audit log: security events land in the table with actor, address and target, never a
secret; `satchel admin audit` prints them newest first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from tests.helpers import api_upload, bearer, log_in, make_folder, token_of, upload
from tests.test_admin_cli import env_for

from satchel.cli import main
from satchel.config import Settings
from satchel.core.accounts import NewUser
from satchel.core.audit import AuditLog, clean
from satchel.db.models import AuditEvent, utcnow
from satchel.services import build_services
from satchel.web.csrf import CSRF_COOKIE

PASSWORD = "correct horse battery"
NEW_PASSWORD = "another long secret"


def state_of(client: TestClient) -> Any:
    return client.app.state.satchel  # type: ignore[attr-defined]


def rows(client: TestClient) -> list[AuditEvent]:
    with state_of(client).db.read() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def browser_login(client: TestClient, username: str, password: str) -> int:
    client.cookies.set(CSRF_COOKIE, "t" * 43)
    answer = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": "t" * 43},
        headers={"Accept": "application/json"},
    )
    return answer.status_code


def test_logins_logouts_and_password_changes(client: TestClient) -> None:
    state = state_of(client)
    dave = state.accounts.create_user(NewUser("dave", PASSWORD))
    assert browser_login(client, "dave", "not the password") == 401
    assert browser_login(client, "nobody", PASSWORD) == 401
    assert browser_login(client, "dave", PASSWORD) == 200
    # The login set a fresh CSRF cookie; send that one back.
    fresh = [c.value for c in client.cookies.jar if c.name == CSRF_COOKIE and c.value != "t" * 43]
    client.cookies.set(CSRF_COOKIE, fresh[-1])
    client.headers["X-CSRF-Token"] = fresh[-1]
    changed = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"Accept": "application/json"},
    )
    assert changed.status_code == 200, changed.text
    assert client.post("/logout", headers={"Accept": "application/json"}).status_code == 200
    got = [(r.event, r.actor_id, r.target, r.detail, r.ip) for r in rows(client)]
    assert got == [
        ("login.failed", None, "user:dave", "wrong password", "testclient"),
        # A name that is no account is not written: it may be a password typed in the wrong field.
        ("login.failed", None, "user:(no such user)", "no such user", "testclient"),
        ("login", dave.id, "user:dave", "", "testclient"),
        ("password.changed", dave.id, "user:dave", "", "testclient"),
        ("logout", dave.id, f"user:{dave.id}", "", "testclient"),
    ]


def test_keys_and_deletions(client: TestClient) -> None:
    state = state_of(client)
    token = log_in(client, "erin")
    erin = state.accounts.get("erin")
    created = client.post(
        "/account/keys", data={"label": "ci", "read": "on", "write": "on", "delete": "on",
                               "restore": "on", "csrf_token": token},
        headers={"Accept": "application/json"},
    )  # fmt: skip
    assert created.status_code == 201
    secret = created.json()["key"]
    folder = make_folder(client, secret, "docs")
    [kept] = api_upload(client, secret, ("a.txt", b"a"), folder_id=folder)
    assert client.delete(f"/apiv1/folders/{folder}", headers=bearer(secret)).status_code == 200
    assert (
        client.delete(f"/apiv1/trash/{folder}?type=folder", headers=bearer(secret)).status_code
        == 200
    )
    guest = upload(client)
    guest_id = state.files.lookup(guest["download_url"].split("/")[4]).id
    assert client.post(f"/delete/{token_of(guest)}").status_code == 200
    state.v2auth.generate_keys(erin.id)
    client.post(f"/account/keys/{created.json()['id']}/revoke", data={"csrf_token": token})
    got = [(r.event, r.actor_id, r.target) for r in rows(client)]
    key_id = created.json()["id"]
    assert got == [
        ("apikey.created", erin.id, f"apikey:{key_id}"),
        ("folder.deleted", erin.id, f"folder:{folder}"),
        ("trash.deleted", erin.id, f"user:{erin.id}"),
        ("file.deleted", erin.id, f"file:{guest_id}"),  # by its link, signed in
        ("v2keys.changed", erin.id, f"user:{erin.id}"),
        ("apikey.revoked", erin.id, f"apikey:{key_id}"),
    ]
    assert kept["id"] is not None
    assert rows(client)[0].detail == secret[:8] + "…"


def test_no_secret_ever_lands_in_the_table(client: TestClient) -> None:
    """Every credential made or used here, looked for in every column of every row."""
    state = state_of(client)
    user = state.accounts.create_user(NewUser("frank", PASSWORD))
    secrets_seen = [PASSWORD, NEW_PASSWORD]
    browser_login(client, "frank", "wrong: " + PASSWORD)
    assert browser_login(client, "frank", PASSWORD) == 200
    secrets_seen += [c.value for c in client.cookies.jar if c.name == "satchel_session"]
    created = state.apikeys.create(user, "x", {"read": True}, [])
    secrets_seen.append(created.secret)
    state.apikeys.revoke(user, created.key.id)
    key1, key2 = state.v2auth.generate_keys(user.id)
    secrets_seen.append(key2)
    v2 = client.post("/api/v2/authorize", data={"key1": key1, "key2": key2}).json()
    secrets_seen.append(v2["data"]["access_token"])
    state.accounts.change_password("frank", PASSWORD, NEW_PASSWORD)
    guest = upload(client)
    secrets_seen.append(token_of(guest))
    client.post(f"/delete/{token_of(guest)}")
    admin = state.accounts.create_user(NewUser("root", PASSWORD, is_admin=True))
    secrets_seen.append(state.admin.create_invite(admin, None))
    # A caller slipping a key into a detail still leaves it out.
    from satchel.core.audit import Event, record

    record(state.db, Event.LOGIN_FAILED, None, "user:x", f"typed {created.secret} as name")
    stored = rows(client)
    assert len(stored) >= 8
    text = "\n".join(f"{r.event} {r.actor_id} {r.ip} {r.target} {r.detail}" for r in stored)
    for secret in secrets_seen:
        assert secret not in text
    assert "[hidden]" in text


def test_detail_is_short_and_one_line() -> None:
    assert clean("a\nb\tc") == "a b c"
    assert len(clean("x " * 500)) == 255
    assert clean("sat_" + "A" * 40) == "[hidden]"


def test_the_cli_prints_the_log_newest_first(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    state = state_of(client)
    state.accounts.create_user(NewUser("gina", PASSWORD))
    state.accounts.create_user(NewUser("hank", PASSWORD))
    state.accounts.authenticate("gina", "wrong one!", "192.0.2.7")
    state.accounts.authenticate("gina", PASSWORD, "192.0.2.7")
    state.accounts.authenticate("hank", PASSWORD, "192.0.2.8")
    for name, value in env_for(settings).items():
        monkeypatch.setenv(name, value)
    assert main(["admin", "audit"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[1] for line in lines] == ["login", "login", "login.failed"]
    assert lines[0].split("\t")[2:5] == ["hank", "192.0.2.8", "user:hank"]
    assert main(["admin", "audit", "--user", "gina", "--event", "login.failed"]) == 0
    [line] = capsys.readouterr().out.strip().splitlines()
    assert line.split("\t")[1:6] == [
        "login.failed",
        "-",
        "192.0.2.7",
        "user:gina",
        "wrong password",
    ]
    assert main(["admin", "audit", "--limit", "1"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1
    assert main(["admin", "audit", "--user", "nobody"]) == 1
    assert "No user" in capsys.readouterr().err


def test_the_cli_s_admin_commands_are_audited(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The operator at the command line acts through the same core as the pages: audited,
    with no actor and no address."""
    state_of(client).accounts.create_user(NewUser("ivy", PASSWORD))
    for name, value in env_for(settings).items():
        monkeypatch.setenv(name, value)
    assert main(["admin", "set-package", "ivy", "premium"]) == 0
    assert main(["admin", "set-api-access", "ivy", "off"]) == 0
    assert main(["admin", "disable-user", "ivy"]) == 0
    assert main(["admin", "create-invite", "--expires", "2d"]) == 0
    code = capsys.readouterr().out.strip().splitlines()[-1]
    got = [(r.event, r.actor_id, r.ip, r.target, r.detail) for r in rows(client)]
    assert got == [
        ("admin.user.package", None, None, "user:ivy", "premium (satchel admin)"),
        ("admin.user.api", None, None, "user:ivy", "off (satchel admin)"),
        ("admin.user.disabled", None, None, "user:ivy", "(satchel admin)"),
        ("admin.invite.created", None, None, "invite", "valid 2 days (satchel admin)"),
    ]
    assert code not in str(got)


def test_events_older_than_the_retention_are_pruned_by_the_jobs(settings: Settings) -> None:
    services = build_services(settings.replace(audit_retention=30 * 86400))
    try:
        now = utcnow()
        with services.db.write() as session:
            for days in (400, 31, 29, 0):
                session.add(
                    AuditEvent(at=now - timedelta(days=days), event="login", target=f"{days}")
                )
        (prune,) = (job for job in services.jobs.jobs if job.name == "prune_audit")
        assert prune.run() == "deleted 2 audit event(s)"
        with services.db.read() as session:
            kept = sorted(session.scalars(select(AuditEvent.target)))
        assert kept == ["0", "29"]
        # 0 keeps every event.
        forever = AuditLog(services.db, clock=lambda: now + timedelta(days=3650))
        assert forever.prune(timedelta(0)) == 0
        assert forever.prune(timedelta(days=1)) == 2
    finally:
        services.close()
