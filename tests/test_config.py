from __future__ import annotations

from pathlib import Path

import pytest

from satchel.config import SETTINGS, load_settings, settings_markdown
from satchel.errors import ConfigError


def test_defaults_match_the_reference() -> None:
    settings = load_settings(environ={})
    assert settings.guest_max_upload_size == 1024**3
    assert settings.user_max_upload_size == 5 * 1024**3
    assert settings.default_expiry == 86400
    assert settings.max_expiry == 7 * 86400
    assert settings.rate_limits["upload"].guest == "30/minute"
    assert settings.rate_limits["delete"].user == "600/minute"
    assert settings.sqlalchemy_url.startswith("sqlite:///")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SATCHEL_GUEST_MAX_UPLOAD_SIZE": "lots"}, "SATCHEL_GUEST_MAX_UPLOAD_SIZE"),
        ({"SATCHEL_PUBLIC_URL": "ftp://x"}, "SATCHEL_PUBLIC_URL"),
        ({"SATCHEL_DATABASE_URL": "mysql://x"}, "SATCHEL_DATABASE_URL"),
        ({"SATCHEL_RATE_LIMITS": "upload=often"}, "SATCHEL_RATE_LIMITS"),
        ({"SATCHEL_RATE_LIMITS": "nowhere=1/minute"}, "SATCHEL_RATE_LIMITS"),
        ({"SATCHEL_TRUSTED_PROXIES": "10.0.0.0/33"}, "SATCHEL_TRUSTED_PROXIES"),
        ({"SATCHEL_RATE_LIMITS_ENABLED": "sometimes"}, "SATCHEL_RATE_LIMITS_ENABLED"),
        ({"SATCHEL_DEFAULT_EXPIRY": "30d"}, "SATCHEL_DEFAULT_EXPIRY"),
        ({"SATCHEL_SHORT_CODE_LENGTH": "4"}, "SATCHEL_SHORT_CODE_LENGTH"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ=env)


def test_toml_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text(
        '[satchel]\nguest_max_upload_size = "10MiB"\nmax_expiry = "3d"\ndefault_expiry = "1h"\n'
        '[satchel.rate_limits.upload]\nguest = "5/minute"\nuser = "50/minute"\n'
    )
    settings = load_settings(environ={"SATCHEL_CONFIG": str(config), "SATCHEL_MAX_EXPIRY": "2d"})
    assert settings.guest_max_upload_size == 10 * 1024**2
    assert settings.max_expiry == 2 * 86400
    assert settings.default_expiry == 3600
    assert settings.rate_limits["upload"].guest == "5/minute"


def test_unknown_toml_setting_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text("guest_max_upload_sise = 5\n")
    with pytest.raises(ConfigError, match="guest_max_upload_sise"):
        load_settings(environ={"SATCHEL_CONFIG": str(config)})


def test_every_setting_is_documented() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "settings.md").read_text()
    assert settings_markdown() in doc, "docs/settings.md is out of date: regenerate its table"
    for setting in SETTINGS:
        assert setting.env in doc


def test_cli_reports_a_bad_setting(tmp_path: Path) -> None:
    import subprocess
    import sys

    satchel = Path(sys.executable).with_name("satchel")
    result = subprocess.run(
        [str(satchel), "serve"],
        env={"SATCHEL_MAX_EXPIRY": "a week", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "SATCHEL_MAX_EXPIRY" in result.stderr
