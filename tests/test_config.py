from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest

from satchel.config import SETTINGS, Settings, load_settings, settings_markdown
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


def test_settings_fields_match_the_table() -> None:
    assert [f.name for f in fields(Settings)] == [s.name for s in SETTINGS]


def _conforms(value: Any, hint: Any) -> bool:
    """``isinstance`` that also looks inside ``list[X]`` and ``dict[K, V]``; a bool is no int."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is list:
        return isinstance(value, list) and all(_conforms(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items()
        )
    if hint is int and isinstance(value, bool):
        return False
    return isinstance(value, hint)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_setting_types_match_their_parsers(setting: Any) -> None:
    hint = get_type_hints(Settings)[setting.name]
    assert get_type_hints(setting.parse)["return"] == hint
    assert _conforms(setting.parse(setting.default), hint)
    assert _conforms(getattr(load_settings(environ={}), setting.name), hint)


def test_values_is_a_copy_and_replace_validates_again() -> None:
    settings = load_settings(environ={})
    values = settings.values
    assert type(values) is dict
    assert values["guest_max_upload_size"] == settings.guest_max_upload_size
    values["guest_max_upload_size"] = 1
    assert settings.values["guest_max_upload_size"] == 1024**3
    smaller = settings.replace(guest_max_upload_size="10MiB")
    assert smaller.guest_max_upload_size == 10 * 1024**2
    assert smaller.packages["guest"].max_upload_size == 10 * 1024**2
    with pytest.raises(ConfigError, match="SATCHEL_MAX_EXPIRY"):
        settings.replace(max_expiry="a week")


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
