from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from satchel.cli import main
from satchel.config import Settings
from satchel.core.accounts import AccountService, NewUser
from satchel.core.apikeys import ApiKeyService, KeyChanges, hash_secret
from satchel.db.engine import Database
from satchel.db.models import ApiKey, User
from satchel.errors import BadRequest, Forbidden, NotFound, Unauthorized
from satchel.services import guess_limiter


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.sqlalchemy_url)
    yield database
    database.dispose()


@pytest.fixture
def users(db: Database, settings: Settings) -> tuple[User, User]:
    accounts = AccountService(
        db, settings.packages, settings.default_package, guess_limiter(settings, db)
    )
    return accounts.create_user(NewUser("alice", "password1")), accounts.create_user(
        NewUser("bob", "password1")
    )


def test_secret_shown_once_and_only_a_hash_stored(db: Database, users: tuple[User, User]) -> None:
    created = ApiKeyService(db).create(users[0], "laptop", {"read": True}, [])
    assert re.fullmatch(r"sat_[0-9A-Za-z]{40}", created.secret)
    with db.read() as session:
        stored = session.get(ApiKey, created.key.id)
    assert stored is not None
    assert stored.secret_hash == hash_secret(created.secret)
    assert created.secret not in repr(vars(stored))
    assert stored.permissions == {
        "read": True, "download": False, "write": False, "delete": False, "restore": False, "manage_keys": False,
    }  # fmt: skip


def test_authentication_errors_are_distinct(
    db: Database, users: tuple[User, User], settings: Settings
) -> None:
    keys = ApiKeyService(db)
    created = keys.create(users[0], "", {"read": True}, ["192.0.2.0/24"])
    header = f"Bearer {created.secret}"
    user, _key = keys.authenticate(header, "192.0.2.77", "read")
    assert user.username == "alice"
    cases = [
        (None, "192.0.2.1", "read", Unauthorized, "Missing API key"),
        ("Basic abc", "192.0.2.1", "read", Unauthorized, "Invalid API key"),
        ("Bearer sat_" + "x" * 40, "192.0.2.1", "read", Unauthorized, "Invalid API key"),
        (header, "198.51.100.1", "read", Forbidden, "not allowed from your IP"),
        (header, "192.0.2.1", "write", Forbidden, "lacks the 'write' permission"),
    ]
    for authorization, ip, permission, error, message in cases:
        with pytest.raises(error, match=message):
            keys.authenticate(authorization, ip, permission)
    AccountService(db, settings.packages, "free", guess_limiter(settings, db)).set_api_access(
        "alice", False
    )
    with pytest.raises(Forbidden, match="API access is disabled"):
        keys.authenticate(header, "192.0.2.1", "read")
    AccountService(db, settings.packages, "free", guess_limiter(settings, db)).set_api_access(
        "alice", True
    )
    keys.revoke(users[0], created.key.id)
    with pytest.raises(Unauthorized, match="revoked"):
        keys.authenticate(header, "192.0.2.1", "read")


def test_last_use_is_recorded(db: Database, users: tuple[User, User]) -> None:
    keys = ApiKeyService(db)
    created = keys.create(users[0], "", {"read": True}, [])
    keys.authenticate(f"Bearer {created.secret}", "203.0.113.5", "read")
    listed = keys.list(users[0])[0]
    assert listed.last_used_ip == "203.0.113.5"
    assert listed.last_used_at is not None


def test_at_most_ten_active_keys(db: Database, users: tuple[User, User]) -> None:
    keys = ApiKeyService(db)
    made = [keys.create(users[0], f"k{n}", {}, []) for n in range(10)]
    with pytest.raises(BadRequest, match="At most 10 active"):
        keys.create(users[0], "eleventh", {}, [])
    keys.revoke(users[0], made[0].key.id)
    keys.create(users[0], "eleventh", {}, [])
    assert len(keys.list(users[0])) == 10
    keys.create(users[1], "bob's own", {}, [])  # the limit is per user


@pytest.mark.parametrize(
    ("ips", "message"),
    [
        (["10.0.0.0/16"], "wider than /24"),
        (["2001:db8::1"], "Not an IPv4"),
        (["not-an-ip"], "Not an IPv4"),
        ([f"192.0.2.{n}" for n in range(11)], "At most 10"),
    ],
)
def test_allow_list_rules(
    db: Database, users: tuple[User, User], ips: list[str], message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        ApiKeyService(db).create(users[0], "", {}, ips)


def test_permission_rules(db: Database, users: tuple[User, User]) -> None:
    keys = ApiKeyService(db)
    with pytest.raises(BadRequest, match="Unknown permission"):
        keys.create(users[0], "", {"admin": True}, [])
    with pytest.raises(BadRequest, match="true or false"):
        keys.create(users[0], "", {"read": "yes"}, [])


def test_update_and_other_users_keys(db: Database, users: tuple[User, User]) -> None:
    keys = ApiKeyService(db)
    created = keys.create(users[0], "old", {"read": True}, [])
    updated = keys.update(
        users[0], created.key.id, KeyChanges(label="new", allowed_ips=["192.0.2.9"])
    )
    assert (updated.label, updated.allowed_ips, updated.permissions["read"]) == (
        "new",
        ["192.0.2.9"],
        True,
    )
    with pytest.raises(NotFound):
        keys.update(users[1], created.key.id, KeyChanges(label="mine now"))
    with pytest.raises(NotFound):
        keys.revoke(users[1], created.key.id)
    assert keys.list(users[1]) == []


def test_create_api_key_cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SATCHEL_DATA_DIR", str(settings.data_path))
    monkeypatch.setenv("SATCHEL_DATABASE_URL", settings.sqlalchemy_url)
    assert main(["admin", "create-user", "carol", "--password", "password1"]) == 0
    assert (
        main(
            [
                "admin",
                "create-api-key",
                "carol",
                "--permissions",
                "read,write",
                "--allow-ip",
                "192.0.2.0/24",
                "--label",
                "ci",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].endswith("permissions read,write")
    assert re.fullmatch(r"sat_[0-9A-Za-z]{40}", lines[-1])
    db = Database(settings.sqlalchemy_url)
    try:
        user, key = ApiKeyService(db).authenticate(f"Bearer {lines[-1]}", "192.0.2.3", "write")
        assert (user.username, key.label) == ("carol", "ci")
    finally:
        db.dispose()
    assert main(["admin", "create-api-key", "carol", "--allow-ip", "10.0.0.0/8"]) == 1
    assert "wider than /24" in capsys.readouterr().err
