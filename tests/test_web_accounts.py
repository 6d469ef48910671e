from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from satchel.cli import main
from satchel.config import Settings
from satchel.core.accounts import NewUser
from satchel.core.invites import InviteService
from satchel.errors import Forbidden
from satchel.web.app import create_app

BROWSER = {"Accept": "text/html,application/xhtml+xml", "User-Agent": "Mozilla/5.0"}
PASSWORD = "correct horse battery"
SECRET = re.compile(r"sat_[0-9A-Za-z]{40}")


@contextmanager
def app_client(settings: Settings, base_url: str = "http://testserver") -> Iterator[TestClient]:
    app = create_app(settings, migrate=False, run_jobs=False)
    with TestClient(app, base_url=base_url) as client:
        yield client


@pytest.fixture
def alice(client: TestClient) -> str:
    accounts = client.app.state.satchel.accounts  # type: ignore[attr-defined]
    accounts.create_user(NewUser("alice", PASSWORD))
    return "alice"


def csrf_of(client: TestClient) -> str:
    """The CSRF token of this client's cookie (GET /login hands one out)."""
    token = client.get("/login").json()["csrf_token"]
    assert client.cookies.get("satchel_csrf") == token
    return str(token)


def post_form(client: TestClient, path: str, **fields: Any) -> httpx.Response:
    data = {"csrf_token": csrf_of(client), **fields}
    return client.post(path, data=data, headers=BROWSER, follow_redirects=False)


def log_in(client: TestClient, username: str = "alice", password: str = PASSWORD, **fields: Any):  # type: ignore[no-untyped-def]
    return post_form(client, "/login", username=username, password=password, **fields)


def cookie_header(response: httpx.Response, name: str) -> str:
    found = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def account_json(client: TestClient) -> httpx.Response:
    return client.get("/account", headers={"Accept": "application/json"})


# -- registration ---------------------------------------------------------------------------


def test_register_open_logs_the_new_user_in(client: TestClient) -> None:
    page = client.get("/register", headers=BROWSER)
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.text
    assert 'name="invite"' not in page.text
    response = post_form(client, "/register", username="bob", password=PASSWORD, email="b@x.org")
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    assert "HttpOnly" in cookie_header(response, "satchel_session")
    info = account_json(client).json()
    assert info["username"] == "bob"
    assert info["email"] == "b@x.org"
    assert info["package"]["name"] == "free"


def test_register_json_client_gets_201_and_errors_as_json(client: TestClient) -> None:
    def register(username: str, password: str) -> httpx.Response:
        fields = {"username": username, "password": password}
        return client.post("/register", data=fields, headers={"X-CSRF-Token": csrf_of(client)})

    created = register("carol", PASSWORD)
    assert created.status_code == 201
    assert created.json() == {"username": "carol"}
    # Logging in gave the client a new CSRF token: the old one no longer matches.
    stale = client.post(
        "/register", data={}, headers={"X-CSRF-Token": created.request.headers["x-csrf-token"]}
    )
    assert stale.status_code == 403
    assert register("Carol", PASSWORD).status_code == 409
    short = register("dave", "short")
    assert short.status_code == 400
    assert "Password" in short.json()["error"]


def test_register_form_shows_the_error(client: TestClient) -> None:
    response = post_form(client, "/register", username="x", password=PASSWORD)
    assert response.status_code == 400
    assert "Username: 2 to 32" in response.text
    assert 'value="x"' in response.text


def test_registration_closed(settings: Settings) -> None:
    with app_client(settings.replace(registration="closed")) as client:
        assert client.get("/register").status_code == 403
        page = client.get("/register", headers=BROWSER)
        assert page.status_code == 403
        assert "Registration is closed" in page.text
        response = post_form(client, "/register", username="eve", password=PASSWORD)
        assert response.status_code == 403
        assert "Registration is closed" in response.text
        refused = client.post(
            "/register",
            data={"username": "eve", "password": PASSWORD},
            headers={"X-CSRF-Token": csrf_of(client)},
        )
        assert refused.json() == {"error": "Registration is closed"}
        assert client.app.state.satchel.accounts.find("eve") is None  # type: ignore[attr-defined]
        assert 'href="/register"' not in client.get("/login", headers=BROWSER).text


def test_registration_by_invite(settings: Settings) -> None:
    with app_client(settings.replace(registration="invite")) as client:
        invites = InviteService(client.app.state.satchel.db)  # type: ignore[attr-defined]
        code = invites.create(timedelta(days=1))
        assert 'name="invite"' in client.get("/register", headers=BROWSER).text
        missing = post_form(client, "/register", username="fred", password=PASSWORD)
        assert missing.status_code == 400
        assert "invite code is required" in missing.text
        wrong = post_form(client, "/register", username="fred", password=PASSWORD, invite="nope")
        assert wrong.status_code == 403
        assert "not valid" in wrong.text
        # A registration that fails for another reason does not spend the code.
        bad_name = post_form(client, "/register", username="?", password=PASSWORD, invite=code)
        assert bad_name.status_code == 400
        ok = post_form(client, "/register", username="fred", password=PASSWORD, invite=code)
        assert ok.status_code == 303
        client.cookies.clear()
        again = post_form(client, "/register", username="gina", password=PASSWORD, invite=code)
        assert again.status_code == 403
        assert "already been used" in again.text
        expired = invites.create(timedelta(seconds=-1))
        late = post_form(client, "/register", username="gina", password=PASSWORD, invite=expired)
        assert late.status_code == 403
        assert "expired" in late.text


def test_an_invite_is_used_once(client: TestClient, alice: str) -> None:
    invites = InviteService(client.app.state.satchel.db)  # type: ignore[attr-defined]
    code = invites.create(None)
    assert invites.use(f" {code} ", 1) > 0
    with pytest.raises(Forbidden, match="already been used"):
        invites.use(code, 2)


def test_create_invite_command_prints_a_usable_code(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SATCHEL_DATA_DIR", str(settings.data_path))
    monkeypatch.setenv("SATCHEL_DATABASE_URL", settings.sqlalchemy_url)
    assert main(["admin", "create-invite", "--expires", "2d"]) == 0
    code = capsys.readouterr().out.strip().splitlines()[-1]
    with app_client(settings.replace(registration="invite")) as client:
        response = post_form(client, "/register", username="hank", password=PASSWORD, invite=code)
        assert response.status_code == 303
        assert account_json(client).json()["username"] == "hank"


def test_invites_are_listed_and_revoked_from_the_cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SATCHEL_DATA_DIR", str(settings.data_path))
    monkeypatch.setenv("SATCHEL_DATABASE_URL", settings.sqlalchemy_url)
    assert main(["admin", "list-invites"]) == 0
    assert capsys.readouterr().out.strip() == "no invites"
    codes = []
    for expires in ("2d", "0"):
        assert main(["admin", "create-invite", "--expires", expires]) == 0
        codes.append(capsys.readouterr().out.strip().splitlines()[-1])
    with app_client(settings.replace(registration="invite")) as client:
        used = post_form(client, "/register", username="ida", password=PASSWORD, invite=codes[0])
        assert used.status_code == 303
    assert main(["admin", "list-invites"]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [(line[0], line[2], line[3].split()[0]) for line in lines] == [
        ("2", "never", "open"),
        ("1", lines[1][2], "used"),
    ]
    assert lines[1][3].endswith("by ida")

    assert main(["admin", "revoke-invite", "2"]) == 0
    assert "invite 2 revoked" in capsys.readouterr().out
    with app_client(settings.replace(registration="invite")) as client:
        refused = post_form(client, "/register", username="jo", password=PASSWORD, invite=codes[1])
        assert refused.status_code == 403
        assert "not valid" in refused.text
    assert main(["admin", "revoke-invite", "1"]) == 1
    assert "used already" in capsys.readouterr().err
    assert main(["admin", "revoke-invite", "99"]) == 1
    assert "No such invite" in capsys.readouterr().err
    assert main(["admin", "audit", "--event", "admin.invite."]) == 0
    assert capsys.readouterr().out.count("admin.invite.revoked") == 1


def test_create_invite_command_refuses_a_bad_duration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["admin", "create-invite", "--expires", "soon"])
    assert exit_info.value.code == 2
    assert "not a duration" in capsys.readouterr().err


# -- logging in and out ----------------------------------------------------------------------


def test_login_sets_a_session_cookie(client: TestClient, settings: Settings, alice: str) -> None:
    assert 'name="csrf_token"' in client.get("/login", headers=BROWSER).text
    response = log_in(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    cookie = cookie_header(response, "satchel_session")
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert f"max-age={settings.session_lifetime}" in attributes
    assert "secure" not in attributes
    csrf_cookie = cookie_header(response, "satchel_csrf").lower()
    assert "samesite=strict" in csrf_cookie
    assert "httponly" in csrf_cookie
    assert account_json(client).json()["username"] == "alice"


def test_cookies_are_secure_behind_https(settings: Settings) -> None:
    https = settings.replace(public_url="https://files.example")
    with app_client(https, base_url="https://testserver") as client:
        client.app.state.satchel.accounts.create_user(NewUser("alice", PASSWORD))  # type: ignore[attr-defined]
        response = log_in(client)
        assert response.status_code == 303
        assert "secure" in cookie_header(response, "satchel_session").lower().split("; ")
        assert "secure" in cookie_header(response, "satchel_csrf").lower().split("; ")


def test_login_as_json_client(client: TestClient, alice: str) -> None:
    token = csrf_of(client)
    response = client.post(
        "/login",
        json={"username": "ALICE", "password": PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 200
    assert response.json() == {"username": "alice"}
    assert account_json(client).status_code == 200


def test_wrong_password_or_user_is_401(client: TestClient, alice: str) -> None:
    for username, password in (("alice", "wrong password"), ("nobody", PASSWORD)):
        token = csrf_of(client)
        response = client.post(
            "/login",
            data={"username": username, "password": password},
            headers={"X-CSRF-Token": token},
        )
        assert response.status_code == 401
        assert response.json() == {"error": "Wrong username or password"}
        assert "satchel_session" not in response.headers.get("set-cookie", "")
    page = log_in(client, password="wrong password")
    assert page.status_code == 401
    assert "Wrong username or password" in page.text
    assert 'value="alice"' in page.text
    assert account_json(client).status_code == 401


def test_login_attempts_are_rate_limited(settings: Settings) -> None:
    limited = settings.replace(rate_limits_enabled=True, rate_limit_storage="memory://")
    with app_client(limited) as client:
        client.app.state.satchel.accounts.create_user(NewUser("alice", PASSWORD))  # type: ignore[attr-defined]
        for _ in range(10):
            assert log_in(client, password="guess guess").status_code == 401
        response = log_in(client)  # even the right password waits now
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        token = csrf_of(client)
        json_answer = client.post(
            "/login",
            data={"username": "alice", "password": PASSWORD},
            headers={"X-CSRF-Token": token},
        )
        assert json_answer.status_code == 429
        assert json_answer.json()["error"].startswith("Too many requests")
        registering = post_form(client, "/register", username="bob", password=PASSWORD)
        assert registering.status_code == 429


def test_next_is_followed_only_to_local_paths(client: TestClient, alice: str) -> None:
    assert log_in(client, next="/manage/abc").headers["location"] == "/manage/abc"
    for evil in ("//evil.com", "https://evil.com/", "/\\evil.com", "evil.com", "/\t/evil.com"):
        client.cookies.clear()
        assert log_in(client, next=evil).headers["location"] == "/account", evil
    client.cookies.clear()
    page = client.get("/login", params={"next": "//evil.com"}, headers=BROWSER)
    assert 'name="next" value="/account"' in page.text
    page = client.get("/login", params={"next": "/account?x=1"}, headers=BROWSER)
    assert 'name="next" value="/account?x=1"' in page.text


def test_a_logged_in_browser_skips_the_login_form(client: TestClient, alice: str) -> None:
    log_in(client)
    response = client.get("/login", headers=BROWSER, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


def test_logout_ends_the_session(client: TestClient, settings: Settings, alice: str) -> None:
    log_in(client)
    old_session = client.cookies["satchel_session"]
    response = post_form(client, "/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert 'satchel_session=""' in cookie_header(response, "satchel_session")
    assert account_json(client).status_code == 401
    with app_client(settings) as other:
        other.cookies.set("satchel_session", old_session)
        assert account_json(other).status_code == 401


def test_nav_follows_the_login(client: TestClient, alice: str) -> None:
    page = client.get("/", headers=BROWSER).text
    assert 'href="/login"' in page
    assert 'href="/register"' in page
    assert 'action="/logout"' not in page
    log_in(client)
    page = client.get("/", headers=BROWSER).text
    assert 'href="/account"' in page
    assert f'name="csrf_token" value="{client.cookies["satchel_csrf"]}"' in page
    assert 'href="/login"' not in page


# -- CSRF ------------------------------------------------------------------------------------


def test_posts_without_the_csrf_token_are_refused(client: TestClient, alice: str) -> None:
    log_in(client)
    posts = [
        ("/logout", {}),
        ("/account/password", {"current_password": PASSWORD, "new_password": "x" * 12}),
        ("/account/keys", {"label": "k", "read": "on"}),
        ("/login", {"username": "alice", "password": PASSWORD}),
        ("/register", {"username": "mallory", "password": PASSWORD}),
    ]
    for path, fields in posts:
        for token in (None, "wrong", ""):
            data = fields if token is None else {**fields, "csrf_token": token}
            response = client.post(path, data=data, follow_redirects=False)
            assert response.status_code == 403, (path, token)
            assert response.json() == {"error": "CSRF token missing or wrong"}
    # A browser sees the form again, with a token that works.
    page = client.post("/login", data={"username": "alice", "password": PASSWORD}, headers=BROWSER)
    assert page.status_code == 403
    assert "CSRF token missing or wrong" in page.text
    assert account_json(client).json()["keys"] == []
    assert client.app.state.satchel.accounts.find("mallory") is None  # type: ignore[attr-defined]


def test_a_token_without_its_cookie_is_refused(client: TestClient, alice: str) -> None:
    log_in(client)
    token = client.cookies["satchel_csrf"]
    del client.cookies["satchel_csrf"]
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 403
    assert account_json(client).status_code == 200


# -- the account page ------------------------------------------------------------------------


def test_account_page_requires_login(client: TestClient) -> None:
    response = client.get("/account", headers=BROWSER, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account"
    assert account_json(client).json() == {"error": "Login required"}
    assert account_json(client).status_code == 401
    for path in ("/account/keys", "/account/password", "/account/keys/1/revoke"):
        assert client.post(path, data={}).status_code == 401


def test_account_page_shows_package_and_storage(client: TestClient, alice: str) -> None:
    log_in(client)
    page = client.get("/account", headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "Free Account" in page.text
    assert "0 B of 50 GB" in page.text
    assert re.search(r"<meter[^>]*max=\"53687091200\" value=\"0\"", page.text)
    assert "Largest upload" in page.text
    info = account_json(client).json()
    assert info["storage"] == {"used_bytes": 0, "quota_bytes": 50 << 30}
    assert info["package"]["max_upload_size"] == 5 << 30


def test_keys_are_created_and_revoked_from_the_account_page(client: TestClient, alice: str) -> None:
    log_in(client)
    page = post_form(client, "/account/keys", label="backup", read="on", manage_keys="on")
    assert page.status_code == 200
    [secret] = set(SECRET.findall(page.text))
    assert secret not in client.get("/account", headers=BROWSER).text
    bearer = {"Authorization": f"Bearer {secret}"}
    listed = client.get("/apiv1/keys", headers=bearer)
    assert listed.status_code == 200
    [key] = listed.json()["keys"]
    assert key["label"] == "backup"
    assert key["allowed_ips"] == []
    assert [name for name, on in key["permissions"].items() if on] == ["read", "manage_keys"]
    assert key["hint"] in client.get("/account", headers=BROWSER).text

    # Without manage_keys (and from an address it does not allow) the key is refused.
    page = post_form(client, "/account/keys", read="on", allowed_ips="192.0.2.7\n\n10.0.0.0/24\n")
    [other] = set(SECRET.findall(page.text))
    assert (
        client.get("/apiv1/keys", headers={"Authorization": f"Bearer {other}"}).status_code == 403
    )
    keys = client.get("/apiv1/keys", headers=bearer).json()["keys"]
    assert keys[1]["allowed_ips"] == ["192.0.2.7", "10.0.0.0/24"]
    assert keys[1]["permissions"]["manage_keys"] is False

    revoked = post_form(client, f"/account/keys/{key['id']}/revoke")
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/account?done=revoked"
    assert client.get("/apiv1/keys", headers=bearer).status_code == 401
    assert post_form(client, f"/account/keys/{key['id']}/revoke").status_code == 404
    assert post_form(client, "/account/keys/abc/revoke").status_code == 404
    assert "API key revoked" in client.get("/account?done=revoked", headers=BROWSER).text


def test_key_form_errors_are_shown(client: TestClient, alice: str) -> None:
    log_in(client)
    page = post_form(client, "/account/keys", label="wide", read="on", allowed_ips="10.0.0.0/8")
    assert page.status_code == 400
    assert "wider than /24" in page.text
    assert not SECRET.search(page.text)


def test_an_api_key_does_not_open_the_account_page(client: TestClient, alice: str) -> None:
    log_in(client)
    secret = SECRET.findall(post_form(client, "/account/keys", manage_keys="on").text)[0]
    client.cookies.clear()
    response = client.get("/account", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401


def test_password_change_ends_the_other_sessions(
    client: TestClient, settings: Settings, alice: str
) -> None:
    log_in(client)
    with app_client(settings) as elsewhere:
        log_in(elsewhere)
        assert account_json(elsewhere).status_code == 200
        wrong = post_form(
            client, "/account/password", current_password="nope", new_password="new password 1"
        )
        assert wrong.status_code == 400
        assert "The current password is wrong" in wrong.text
        assert account_json(elsewhere).status_code == 200
        changed = post_form(
            client, "/account/password", current_password=PASSWORD, new_password="new password 1"
        )
        assert changed.status_code == 303
        assert changed.headers["location"] == "/account?done=password"
        assert account_json(elsewhere).status_code == 401
        assert account_json(client).status_code == 200
        assert "Password changed" in client.get(changed.headers["location"], headers=BROWSER).text
        elsewhere.cookies.clear()
        assert log_in(elsewhere).status_code == 401
        assert log_in(elsewhere, password="new password 1").status_code == 303
