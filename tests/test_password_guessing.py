"""Wrong passwords count against the file, folder or account and the client (10 a minute by
default), in the database so that every worker sees them; credentials end with a password
change; folder passwords are never kept as a bare MD5."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from tests.helpers import path_of, upload, user_key
from tests.test_apiv2 import V2
from tests.test_web_accounts import (
    BROWSER,
    PASSWORD,
    csrf_of,
    log_in,
)

from satchel.config import Settings
from satchel.core import access as access_module
from satchel.core.access import AccessRules
from satchel.core.accounts import NewUser
from satchel.core.actors import Guest
from satchel.core.guesses import GuessLimiter
from satchel.db.engine import Database
from satchel.db.models import Folder
from satchel.errors import RateLimited, WrongPassword
from satchel.services import guess_limiter
from satchel.web.state import SESSION_COOKIE


@pytest.fixture
def v2(client: TestClient) -> V2:
    return V2(client)


@pytest.fixture
def alice(client: TestClient) -> str:
    client.app.state.satchel.accounts.create_user(NewUser("alice", PASSWORD))  # type: ignore[attr-defined]
    return "alice"


def test_wrong_file_passwords_are_stopped_after_ten(client: TestClient) -> None:
    result = upload(client, b"guarded", password="right one")
    url = path_of(result["download_url"])
    for _ in range(10):
        assert client.get(url, params={"pw": "guess"}).status_code == 403
    blocked = client.get(url, params={"pw": "guess"})
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= 61
    # While the file is under attack, even its right password waits.
    assert client.get(url, params={"pw": "right one"}).status_code == 429


def test_the_limit_counts_per_file_for_any_client(client: TestClient) -> None:
    """A logged-in user may download 2,000 times a minute, but not guess more."""
    result = upload(client, b"guarded", password="right one")
    url = path_of(result["download_url"])
    fresh = upload(client, b"other", password="pw")
    for _ in range(10):
        assert client.get(url, params={"pw": "guess"}).status_code == 403
    # Someone else, logged in: the file under attack waits, another file does not.
    state = client.app.state.satchel  # type: ignore[attr-defined]
    user_key(client, "mallory")
    session = state.sessions.create(state.accounts.find("mallory"), "192.0.2.9")
    client.cookies.set(SESSION_COOKIE, session)
    assert client.get(url, params={"pw": "guess"}).status_code == 429
    assert client.get(path_of(fresh["download_url"]), params={"pw": "pw"}).content == b"other"


def test_failures_are_shared_by_every_process(settings: Settings) -> None:
    first, second = (Database(settings.sqlalchemy_url) for _ in range(2))
    try:
        one = GuessLimiter(first, 3, timedelta(minutes=1))
        two = GuessLimiter(second, 3, timedelta(minutes=1))
        one.claim("file:1", "ip:192.0.2.1")
        two.claim("file:1", "ip:192.0.2.2")
        right = one.claim("file:1", "ip:192.0.2.3")
        one.right(right)  # a right guess is no failure
        one.claim("file:1", "ip:192.0.2.3")
        for limiter in (one, two):
            with pytest.raises(RateLimited):
                limiter.claim("file:1", "ip:192.0.2.9")
        two.claim("file:2", "ip:192.0.2.1")  # other scopes are free
    finally:
        first.dispose()
        second.dispose()


def test_guesses_sent_at_once_are_compared_no_more_than_the_limit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forty wrong passwords for one file at the same moment, from forty addresses, through
    two processes' databases: each is claimed before its slow comparison, so no more than the
    limit (10) are ever compared, and the rest get 429."""
    compared = []

    def slow_verify(stored: str, password: str) -> bool:
        compared.append(password)
        time.sleep(0.2)  # Argon2 takes its time: the others arrive meanwhile
        return False

    monkeypatch.setattr(access_module, "verify_password", slow_verify)
    databases = [Database(settings.sqlalchemy_url) for _ in range(2)]
    rules = [AccessRules(db, guess_limiter(settings, db), None, None) for db in databases]  # type: ignore[arg-type]
    start = threading.Barrier(40)
    outcomes: list[str] = []

    def guess(n: int) -> None:
        start.wait()
        try:
            rules[n % 2].check_password("stored", f"guess {n}", "file:7", Guest(f"192.0.2.{n}"))
        except (WrongPassword, RateLimited) as exc:
            outcomes.append(type(exc).__name__)

    try:
        threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for db in databases:
            db.dispose()
    assert len(outcomes) == 40
    assert len(compared) <= 10
    assert outcomes.count("WrongPassword") == len(compared)
    assert outcomes.count("RateLimited") == 40 - len(compared)


def test_wrong_folder_passwords_are_stopped(v2: V2) -> None:
    md5 = hashlib.md5(b"open sesame").hexdigest()  # noqa: S324 - the reference's format
    folder = v2.ok("folder/create", folder_name="Vault", is_public=1, access_password=md5)
    entry = v2.upload(b"inside", "in.txt", folder_id=folder["data"]["id"]).json()
    link = "/" + entry["data"][0]["url"].split("/", 3)[3]
    client = v2.client
    for _ in range(10):
        assert client.get(link, params={"pw": "nope"}).status_code == 403
    assert client.get(link, params={"pw": "nope"}).status_code == 429
    page = "/" + folder["data"]["url_folder"].split("/", 3)[3]
    token = csrf_of(client)
    form = client.post(page, data={"password": "nope", "csrf_token": token}, headers=BROWSER)
    assert form.status_code == 429


def test_folder_passwords_are_kept_only_as_a_slow_salted_hash(v2: V2) -> None:
    md5 = hashlib.md5(b"pw").hexdigest()  # noqa: S324 - the reference's format
    created = v2.ok("folder/create", folder_name="F", access_password=md5)["data"]
    assert created["accessPassword"] == md5  # echoed in the answer that set it
    state = v2.client.app.state.satchel  # type: ignore[attr-defined]
    with state.db.read() as session:
        stored = session.scalar(select(Folder.access_password_hash))
    assert stored is not None
    assert stored.startswith("$argon2")
    assert md5 not in stored


def test_wrong_logins_are_stopped(client: TestClient, alice: str) -> None:
    """Counted in the database, not by the per-process request limiter (off in these tests)."""
    for _ in range(10):
        assert log_in(client, alice, "guess").status_code == 401
    blocked = log_in(client, alice, PASSWORD)
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"]


def test_a_password_change_ends_v2_tokens_and_other_sessions(v2: V2) -> None:
    client = v2.client
    state = client.app.state.satchel  # type: ignore[attr-defined]
    user = v2.user
    elsewhere = state.sessions.create(user, "192.0.2.7")
    assert v2.call("account/info").json()["_status"] == "success"
    state.accounts.change_password(user.username, "password1", "another password")
    assert v2.call("account/info").json()["_status"] == "error"
    assert state.sessions.user_for(elsewhere) is None


def test_disabling_an_account_ends_its_sessions_and_tokens(v2: V2) -> None:
    state = v2.client.app.state.satchel  # type: ignore[attr-defined]
    session = state.sessions.create(v2.user, "192.0.2.7")
    state.accounts.set_disabled(v2.user.username, True)
    state.accounts.set_disabled(v2.user.username, False)
    # Enabled again, but what was issued before stays ended.
    assert state.sessions.user_for(session) is None
    assert v2.call("account/info").json()["_status"] == "error"
