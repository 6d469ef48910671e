"""The account pages as a browser gets them: what each form shows when it fails, the usage
meter, the secret of a new key shown once, its integrations, and escaping."""

from __future__ import annotations

import html
import json
import re

import httpx
import pytest
from starlette.testclient import TestClient
from tests.test_web_accounts import (
    BROWSER,
    PASSWORD,
    SECRET,
    account_json,
    app_client,
    csrf_of,
    log_in,
    post_form,
)

from satchel.config import Settings
from satchel.core.accounts import NewUser
from satchel.web.account.views import Usage, human_size, sharex_uploader

EVIL = '<script>alert("x")</script>'


def add_user(client: TestClient, username: str) -> None:
    client.app.state.satchel.accounts.create_user(NewUser(username, PASSWORD))  # type: ignore[attr-defined]


@pytest.fixture
def alice(client: TestClient) -> TestClient:
    """A client logged in as alice."""
    add_user(client, "alice")
    assert log_in(client).status_code == 303
    return client


def textarea(page: str, element_id: str) -> str:
    found = re.search(rf'<textarea id="{element_id}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, element_id
    return html.unescape(found.group(1))


def input_value(page: str, element_id: str) -> str:
    found = re.search(rf'<input type="text" id="{element_id}"[^>]*value="([^"]*)"', page)
    assert found, element_id
    return html.unescape(found.group(1))


def code_text(page: str, element_id: str) -> str:
    found = re.search(rf'<code id="{element_id}"[^>]*>([^<]*)</code>', page)
    assert found, element_id
    return html.unescape(found.group(1))


# -- sizes -----------------------------------------------------------------------------------


def test_sizes_read_as_people_write_them() -> None:
    assert human_size(0) == "0 B"
    assert human_size(1023) == "1023 B"
    assert human_size(1536) == "1.5 KB"
    assert human_size(5 << 30) == "5 GB"
    assert human_size(int(1.2 * (1 << 30))) == "1.2 GB"
    assert Usage(int(1.2 * (1 << 30)), 5 << 30).label == "1.2 GB of 5 GB"
    assert Usage(int(1.2 * (1 << 30)), 5 << 30).percent == 24
    assert Usage(7 << 30, 5 << 30).percent == 100
    assert Usage(2048, 0).label == "2 KB used (no limit)"


# -- register and log in ---------------------------------------------------------------------


def test_register_refuses_a_weak_or_repeated_wrong_password(client: TestClient) -> None:
    weak = post_form(
        client, "/register", username="bob", password="short", confirm_password="short"
    )
    assert weak.status_code == 400
    assert "Password: 8 to 1024 characters" in weak.text
    assert 'value="bob"' in weak.text
    assert 'value="short"' not in weak.text  # a password is never sent back
    mismatched = post_form(
        client, "/register", username="bob", password=PASSWORD, confirm_password=PASSWORD + "!"
    )
    assert mismatched.status_code == 400
    assert "The two passwords do not match" in mismatched.text
    assert client.app.state.satchel.accounts.find("bob") is None  # type: ignore[attr-defined]
    made = post_form(
        client, "/register", username="bob", password=PASSWORD, confirm_password=PASSWORD
    )
    assert made.status_code == 303


def test_register_page_asks_for_the_invite_only_in_invite_mode(settings: Settings) -> None:
    with app_client(settings.replace(registration="invite")) as client:
        page = client.get("/register?invite=abc%22def", headers=BROWSER).text
        assert 'name="invite" value="abc&#34;def"' in page
        assert "Registration here is by invitation" in page
        missing = post_form(client, "/register", username="bob", password=PASSWORD)
        assert missing.status_code == 400
        assert "An invite code is required to register" in missing.text
        code = client.app.state.satchel.invites.create()  # type: ignore[attr-defined]
        made = post_form(client, "/register", username="bob", password=PASSWORD, invite=code)
        assert made.status_code == 303


def test_wrong_password_is_said_on_the_login_page(client: TestClient) -> None:
    add_user(client, "alice")
    page = log_in(client, password="wrong password", next="/drive")
    assert page.status_code == 401
    assert 'role="alert"' in page.text
    assert "Wrong username or password" in page.text
    assert 'name="username" value="alice"' in page.text
    assert 'name="next" value="/drive"' in page.text
    assert log_in(client, next="/drive").headers["location"] == "/drive"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:x"]
)
def test_login_never_redirects_off_site(client: TestClient, target: str) -> None:
    add_user(client, "alice")
    form = client.get("/login", params={"next": target}, headers=BROWSER).text
    assert 'name="next" value="/account"' in form
    answer = log_in(client, next=target)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account"


def test_every_account_form_needs_its_csrf_token(alice: TestClient) -> None:
    created = post_form(alice, "/account/keys", label="k", read="on")
    [key] = account_json(alice).json()["keys"]
    assert created.status_code == 200
    for path in ("/account/v2-keys", f"/account/keys/{key['id']}/revoke", "/account/password"):
        refused = alice.post(path, data={}, headers=BROWSER, follow_redirects=False)
        assert refused.status_code == 403, path
        assert "CSRF token missing or wrong" in refused.text
    assert len(account_json(alice).json()["keys"]) == 1
    assert account_json(alice).json()["api_v2_key1"] is None


# -- password change -------------------------------------------------------------------------


def test_password_change_errors_are_shown_beside_its_form(alice: TestClient) -> None:
    def change(current: str, new: str, again: str) -> httpx.Response:
        return post_form(
            alice,
            "/account/password",
            current_password=current,
            new_password=new,
            confirm_password=again,
        )

    wrong = change("not it", "new password 1", "new password 1")
    assert wrong.status_code == 400
    assert re.search(r'id="change_password-error">The current password is wrong<', wrong.text)
    weak = change(PASSWORD, "tiny", "tiny")
    assert weak.status_code == 400
    assert "Password: 8 to 1024 characters" in weak.text
    mismatched = change(PASSWORD, "new password 1", "new password 2")
    assert mismatched.status_code == 400
    assert "The two passwords do not match" in mismatched.text
    changed = change(PASSWORD, "new password 1", "new password 1")
    assert changed.status_code == 303
    alice.cookies.clear()
    assert log_in(alice, password="new password 1").status_code == 303


# -- the usage meter -------------------------------------------------------------------------


def test_usage_meter_counts_the_drive(alice: TestClient) -> None:
    uploaded = alice.post(
        "/upload",
        data={"is_temp": "false", "csrf_token": alice.cookies["satchel_csrf"]},
        files={"files": ("a.txt", b"x" * 1536)},
    )
    assert uploaded.status_code == 200, uploaded.text
    page = alice.get("/account", headers=BROWSER).text
    assert re.search(r'<meter id="usage-meter" min="0" max="53687091200" value="1536"', page)
    assert "1.5 KB of 50 GB" in page
    assert 'aria-labelledby="usage-label"' in page


def test_an_unlimited_package_has_no_meter(alice: TestClient) -> None:
    alice.app.state.satchel.accounts.set_package("alice", "premium")  # type: ignore[attr-defined]
    page = alice.get("/account", headers=BROWSER).text
    assert "Premium Account" in page
    assert "0 B used (no limit)" in page
    assert "<meter" not in page


# -- API keys --------------------------------------------------------------------------------


def test_the_secret_is_shown_once_and_never_listed(alice: TestClient) -> None:
    created = post_form(alice, "/account/keys", label="ci", read="on", write="on")
    assert created.status_code == 200  # the page itself: no redirect, no secret in a URL
    assert "location" not in created.headers
    assert created.headers["cache-control"] == "no-store"
    secret = input_value(created.text, "new-key-secret")
    assert SECRET.fullmatch(secret)
    assert 'data-copy="new-key-secret"' in created.text
    assert "only time it is shown" in created.text
    later = alice.get("/account", headers=BROWSER)
    assert not SECRET.search(later.text)
    assert secret[:8] + "…" in later.text  # the hint
    assert "sat_YOUR_KEY" in later.text
    assert secret not in json.dumps(account_json(alice).json())
    listed = alice.get("/apiv1/files", headers={"Authorization": f"Bearer {secret}"})
    assert listed.status_code == 200


def test_the_new_key_comes_with_curl_lines_and_a_sharex_uploader(alice: TestClient) -> None:
    created = post_form(alice, "/account/keys", label="shots", write="on").text
    secret = input_value(created, "new-key-secret")
    assert input_value(created, "curl-upload") == (
        f"curl -H 'Authorization: Bearer {secret}' -F is_temp=false -F public=true "
        "-F files=@photo.png http://testserver/upload"
    )
    assert "lacks" not in created
    assert "(needs <code>read</code>)" in created
    sharex = json.loads(textarea(created, "sharex-config"))
    assert sharex == json.loads(sharex_uploader("http://testserver", secret, "shots"))
    assert sharex["Headers"] == {"Authorization": f"Bearer {secret}"}
    assert sharex["URL"] == "{json:download_url}"
    assert 'data-filename="satchel-testserver.sxcu"' in created
    # What ShareX sends gives a public link that anyone opens.
    alice.cookies.clear()
    sent = alice.post(
        sharex["RequestURL"],
        headers=sharex["Headers"],
        data=sharex["Arguments"],
        files={sharex["FileFormName"]: ("shot.png", b"\x89PNG pixels")},
    )
    assert sent.status_code == 200, sent.text
    assert alice.get(sent.json()["download_url"]).content == b"\x89PNG pixels"


def test_a_bad_allow_list_is_explained_and_the_form_kept(alice: TestClient) -> None:
    page = post_form(
        alice, "/account/keys", label="office", read="on", allowed_ips="192.0.2.1\nnot-an-ip"
    )
    assert page.status_code == 400
    assert re.search(
        r'id="create_key-error">Not an IPv4 address or CIDR block: &#39;not-an-ip&#39;<', page.text
    )
    assert 'name="label" maxlength="100" value="office"' in page.text
    assert re.search(r'name="read" value="on" checked', page.text)
    assert not re.search(r'name="write" value="on" checked', page.text)
    assert "192.0.2.1\nnot-an-ip</textarea>" in page.text
    assert account_json(alice).json()["keys"] == []
    too_many = "\n".join(f"192.0.2.{n}" for n in range(11))
    page = post_form(alice, "/account/keys", read="on", allowed_ips=too_many)
    assert "At most 10 allowed IP addresses or networks" in page.text


def test_labels_are_escaped_everywhere(alice: TestClient) -> None:
    created = post_form(alice, "/account/keys", label=EVIL, read="on").text
    later = alice.get("/account", headers=BROWSER).text
    for page in (created, later):
        assert EVIL not in page
        assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in later
    assert 'data-confirm="Revoke the key &lt;script&gt;' in later


def test_another_users_key_cannot_be_revoked(client: TestClient, settings: Settings) -> None:
    add_user(client, "alice")
    add_user(client, "bob")
    log_in(client)
    secret = input_value(post_form(client, "/account/keys", read="on").text, "new-key-secret")
    [key] = account_json(client).json()["keys"]
    with app_client(settings) as bob:
        log_in(bob, username="bob")
        refused = post_form(bob, f"/account/keys/{key['id']}/revoke")
        assert refused.status_code == 404
        assert "API key not found" in refused.text
        missing = post_form(bob, "/account/keys/999999/revoke")
        assert missing.status_code == 404
    assert client.get("/apiv1/files", headers={"Authorization": f"Bearer {secret}"}).is_success


def test_revoke_asks_first_and_then_the_key_stops(alice: TestClient) -> None:
    secret = input_value(post_form(alice, "/account/keys", read="on").text, "new-key-secret")
    [key] = account_json(alice).json()["keys"]
    page = alice.get("/account", headers=BROWSER).text
    assert f'action="/account/keys/{key["id"]}/revoke" data-confirm="Revoke the key' in page
    done = post_form(alice, f"/account/keys/{key['id']}/revoke")
    assert done.headers["location"] == "/account?done=revoked"
    assert (
        alice.get("/apiv1/files", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    )
    assert "No API keys yet." in alice.get("/account", headers=BROWSER).text


# -- /api/v2 keys ----------------------------------------------------------------------------


def test_v2_key_pair_is_shown_once_and_regenerated(alice: TestClient) -> None:
    first = alice.get("/account", headers=BROWSER).text
    assert "No /api/v2 key pair yet." in first
    assert ">Create key pair</button>" in first
    made = post_form(alice, "/account/v2-keys")
    assert made.status_code == 200
    key1, key2 = code_text(made.text, "v2-key1"), code_text(made.text, "v2-key2")
    assert re.fullmatch(r"[0-9a-f]{64}", key2)
    later = alice.get("/account", headers=BROWSER).text
    assert key1 in later
    assert key2 not in later
    assert ">Regenerate key pair</button>" in later
    assert 'data-confirm="Make a new key pair?' in later

    def authorize(one: str, two: str) -> str:
        answer = alice.post("/api/v2/authorize", data={"key1": one, "key2": two})
        return str(answer.json()["_status"])

    assert authorize(key1, key2) == "success"
    post_form(alice, "/account/v2-keys")
    assert authorize(key1, key2) == "error"


def test_csrf_token_is_on_every_account_form(alice: TestClient) -> None:
    post_form(alice, "/account/keys", read="on")
    page = alice.get("/account", headers=BROWSER).text
    forms = re.findall(r'<form method="post".*?</form>', page, re.S)
    assert len(forms) >= 5  # log out, revoke, create key, v2 keys, password
    token = alice.cookies["satchel_csrf"]
    for form in forms:
        assert f'name="csrf_token" value="{token}"' in form
    assert csrf_of(alice)
