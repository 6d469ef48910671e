from __future__ import annotations

from pathlib import Path

import pytest

from satchel.cli import main
from satchel.config import ConfigError, Settings, load_settings
from satchel.core.accounts import AccountService, NewUser
from satchel.db.engine import Database
from satchel.errors import BadRequest, Conflict, NotFound
from satchel.services import guess_limiter


@pytest.fixture
def accounts(settings: Settings) -> AccountService:
    db = Database(settings.sqlalchemy_url)
    yield AccountService(
        db, settings.packages, settings.default_package, guess_limiter(settings, db)
    )  # type: ignore[misc]
    db.dispose()


def test_create_and_authenticate(accounts: AccountService) -> None:
    user = accounts.create_user(NewUser("Alice", "correct horse", "Alice@Example.org"))
    assert (user.username, user.email, user.package) == ("Alice", "alice@example.org", "free")
    assert user.password_hash.startswith("$argon2")
    assert accounts.authenticate("alice", "correct horse", "192.0.2.1") is not None
    assert accounts.get("ALICE").last_login_ip == "192.0.2.1"
    assert accounts.authenticate("alice", "wrong password") is None
    assert accounts.authenticate("nobody", "correct horse") is None


def test_names_and_emails_are_unique_regardless_of_case(accounts: AccountService) -> None:
    accounts.create_user(NewUser("bob", "password1", "bob@example.org"))
    with pytest.raises(Conflict):
        accounts.create_user(NewUser("BOB", "password1"))
    with pytest.raises(Conflict):
        accounts.create_user(NewUser("robert", "password1", "BOB@example.org"))


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (NewUser("x", "password1"), "Username"),
        (NewUser("../etc", "password1"), "Username"),
        (NewUser("ok-name", "short"), "Password"),
        (NewUser("ok-name", "password1", "not-an-email"), "Email"),
        (NewUser("ok-name", "password1", package="gold"), "No package"),
    ],
)
def test_bad_accounts_are_refused(accounts: AccountService, new: NewUser, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        accounts.create_user(new)


def test_packages_disable_and_api_access(accounts: AccountService) -> None:
    accounts.create_user(NewUser("carol", "password1"))
    assert accounts.set_package("carol", "premium").package == "premium"
    assert accounts.package_of(accounts.get("carol")).max_storage_bytes == 0
    assert accounts.set_api_access("carol", False).api_enabled is False
    assert accounts.set_disabled("carol", True).is_disabled is True
    assert accounts.authenticate("carol", "password1") is None
    assert accounts.set_disabled("carol", False).is_disabled is False
    assert accounts.authenticate("carol", "password1") is not None
    with pytest.raises(NotFound):
        accounts.set_package("nobody", "free")


def test_change_password(accounts: AccountService) -> None:
    accounts.create_user(NewUser("dave", "password1"))
    with pytest.raises(BadRequest, match="current password"):
        accounts.change_password("dave", "wrong one", "password2")
    accounts.change_password("dave", "password1", "password2")
    assert accounts.authenticate("dave", "password2") is not None


def test_admins_get_the_admin_package(accounts: AccountService) -> None:
    admin = accounts.create_user(NewUser("root-user", "password1", is_admin=True))
    assert (admin.is_admin, admin.package) == (True, "admin")
    assert accounts.package_of(admin).max_upload_size == 0  # 0 = unlimited


def test_admin_cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SATCHEL_DATA_DIR", str(settings.data_path))
    monkeypatch.setenv("SATCHEL_DATABASE_URL", settings.sqlalchemy_url)
    assert (
        main(
            ["admin", "create-user", "erin", "--password", "password1", "--email", "e@example.org"]
        )
        == 0
    )
    assert main(["admin", "set-package", "erin", "premium"]) == 0
    assert main(["admin", "set-api-access", "erin", "off"]) == 0
    assert main(["admin", "disable-user", "erin"]) == 0
    assert main(["admin", "list-users"]) == 0
    out = capsys.readouterr().out
    assert "created 1\terin\te@example.org\tfree\tapi on" in out
    assert out.strip().splitlines()[-1] == "1\terin\te@example.org\tpremium\tdisabled, api off"
    assert main(["admin", "create-user", "erin", "--password", "password1"]) == 1
    assert "taken" in capsys.readouterr().err
    assert main(["admin", "set-package", "erin", "gold"]) == 1


def test_packages_from_toml(tmp_path: Path) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text(
        '[satchel.packages.free]\nmax_upload_size = "2GiB"\n'
        '[satchel.packages.team]\nlabel = "Team"\nmax_storage_bytes = "1TiB"\nconcurrent_uploads = 20\n'
    )
    settings = load_settings(
        environ={"SATCHEL_CONFIG": str(config), "SATCHEL_DEFAULT_PACKAGE": "team"}
    )
    assert settings.packages["free"].max_upload_size == 2 * 1024**3
    assert settings.packages["free"].label == "Free Account"
    assert settings.packages["team"].max_storage_bytes == 1024**4
    assert settings.default_package == "team"
    config.write_text("[satchel.packages.free]\nmax_uplod_size = 1\n")
    with pytest.raises(ConfigError, match="max_uplod_size"):
        load_settings(environ={"SATCHEL_CONFIG": str(config)})
    with pytest.raises(ConfigError, match="SATCHEL_DEFAULT_PACKAGE"):
        load_settings(environ={"SATCHEL_DEFAULT_PACKAGE": "gold"})
