"""Every setting in one table: name, type, default and help.

Values come from, in increasing priority: the defaults below, an optional TOML file
(``SATCHEL_CONFIG`` or ``--config``), and ``SATCHEL_<NAME>`` environment variables.
A bad value stops start-up with a message naming the setting.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from satchel.core.packages import DEFAULT_PACKAGES, Package, parse_packages
from satchel.errors import ConfigError
from satchel.units import parse_duration, parse_size

RATE_LIMIT_ENDPOINTS = ("upload", "download", "manage", "delete", "login", "apiv1")


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {value!r} (use true or false)")


def parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("not an integer")
    number = int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def parse_str(value: Any) -> str:
    return str(value)


def parse_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return [item.strip() for item in str(value).split(",") if item.strip()]


def parse_part_size(value: Any) -> int:
    size = parse_size(value)
    if not 5 << 20 <= size <= 5 << 30:
        raise ValueError("must be between 5MiB and 5GiB (S3's part limits)")
    return size


def parse_registration(value: Any) -> str:
    mode = str(value).strip().lower()
    if mode not in ("open", "invite", "closed"):
        raise ValueError("expected open, invite or closed")
    return mode


def parse_public_url(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {value!r}")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")
    return text


def parse_networks(value: Any) -> list[str]:
    networks = []
    for item in parse_list(value):
        networks.append(str(ipaddress.ip_network(item, strict=False)))
    return networks


def parse_log_format(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("json", "text"):
        raise ValueError("expected json or text")
    return text


def parse_database_url(value: Any) -> str:
    text = str(value).strip()
    if text and not re.match(r"^(sqlite|postgresql)(\+\w+)?://", text):
        raise ValueError("must start with sqlite:// or postgresql://")
    return text


def parse_redis_url(value: Any) -> str:
    text = str(value).strip()
    if text and not re.match(r"^rediss?://", text):
        raise ValueError("must start with redis:// or rediss://")
    return text


def parse_rate(value: Any) -> str:
    from limits import parse

    text = str(value).strip()
    parse(text)
    return text


@dataclass(frozen=True)
class RateLimit:
    guest: str
    user: str


def parse_rate_limits(value: Any) -> dict[str, RateLimit]:
    """``upload=30/minute:1000/minute, download=…`` or a TOML table of ``{guest, user}``."""
    from limits import parse_many

    table = dict(_DEFAULT_RATE_LIMITS)
    items: list[tuple[str, str, str]] = []
    if isinstance(value, Mapping):
        for name, limit in value.items():
            if isinstance(limit, RateLimit):
                limit = {"guest": limit.guest, "user": limit.user}
            if not isinstance(limit, Mapping):
                raise ValueError(f"{name}: expected a table with guest and user")
            items.append((str(name), str(limit["guest"]), str(limit["user"])))
    else:
        for entry in parse_list(str(value).replace(";", ",")):
            name, _, limits = entry.partition("=")
            guest, _, user = limits.partition(":")
            items.append((name.strip(), guest.strip(), (user or guest).strip()))
    for name, guest, user in items:
        if name not in RATE_LIMIT_ENDPOINTS:
            raise ValueError(f"unknown endpoint {name!r}; known: {', '.join(RATE_LIMIT_ENDPOINTS)}")
        parse_many(guest)
        parse_many(user)
        table[name] = RateLimit(guest, user)
    return table


_DEFAULT_RATE_LIMITS = {
    "upload": RateLimit("30/minute", "1000/minute"),
    "download": RateLimit("60/minute", "2000/minute"),
    "manage": RateLimit("20/minute", "600/minute"),
    "delete": RateLimit("20/minute", "600/minute"),
    # Failed-password guessing: counted per address before and per account after login.
    "login": RateLimit("10/minute", "10/minute"),
    "apiv1": RateLimit("120/minute", "1200/minute"),
}


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str

    @property
    def env(self) -> str:
        return "SATCHEL_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir",
        "./data",
        parse_str,
        "Folder for the SQLite database, master keys and local blobs.",
    ),
    Setting(
        "public_url",
        "http://127.0.0.1:8000",
        parse_public_url,
        "Base URL that every absolute link is built from (never the request's Host header).",
    ),
    Setting(
        "database_url",
        "",
        parse_database_url,
        "SQLAlchemy URL of the metadata database; empty means SQLite in the data folder.",
    ),
    Setting(
        "db_statement_timeout",
        "5s",
        parse_duration,
        "Longest a request waits on one database statement or lock; past it the request answers 503.",
    ),
    Setting(
        "db_connect_timeout",
        "3s",
        parse_duration,
        "Longest a connection attempt to PostgreSQL may take before the request answers 503.",
    ),
    Setting(
        "redis_url",
        "",
        parse_redis_url,
        "Redis that every instance shares for rate limits and concurrent-upload slots "
        "(`redis://host:6379/0`); empty: limits per process, slots in the database (one machine).",
    ),
    Setting(
        "redis_prefix",
        "satchel:",
        parse_str,
        "Start of every key Satchel writes in Redis: installations sharing one Redis database "
        "each need their own.",
    ),
    Setting(
        "storage",
        "local",
        parse_str,
        "Blob storage backend: `local` (data folder), `local:/path` or `s3:BUCKET[/PREFIX]`.",
    ),
    # -- S3 (storage = s3:…); credentials from the AWS chain: AWS_ACCESS_KEY_ID, … ---------
    Setting(
        "s3_endpoint",
        "",
        parse_str,
        "S3 endpoint URL for an S3-compatible server (http://127.0.0.1:8333); empty means AWS.",
    ),
    Setting(
        "s3_region",
        "",
        parse_str,
        "S3 region; empty means the AWS chain's (AWS_REGION, ~/.aws/config).",
    ),
    Setting(
        "s3_part_size",
        "8MiB",
        parse_part_size,
        "Part size of S3 multipart uploads (5 MiB to 5 GiB): each blob being written holds one part in memory.",
    ),
    Setting(
        "master_keys",
        [],
        parse_list,
        "Fernet master keys, comma separated, primary first; empty means a key file in the data folder.",
    ),
    Setting("guest_max_upload_size", "1GiB", parse_size, "Largest upload a guest may send."),
    Setting(
        "user_max_upload_size",
        "5GiB",
        parse_size,
        "Server-wide cap on one upload by a registered user; a package may set a lower one.",
    ),
    Setting("default_expiry", "1d", parse_duration, "Expiry of an upload that asks for none."),
    Setting("max_expiry", "7d", parse_duration, "Longest expiry a temporary upload may ask for."),
    Setting(
        "download_resume_window",
        "6h",
        parse_duration,
        "How long a counted download of a file with a download limit may be resumed (Range with If-Range).",
    ),
    Setting("rate_limits_enabled", True, parse_bool, "Turn per-endpoint rate limits on or off."),
    Setting(
        "rate_limits",
        dict(_DEFAULT_RATE_LIMITS),
        parse_rate_limits,
        "Per-endpoint limits `endpoint=guest:user`, e.g. `upload=30/minute:1000/minute`.",
    ),
    Setting(
        "rate_limit_storage",
        "",
        parse_str,
        "Storage URI of the `limits` package; empty: `redis_url` when set, else memory:// "
        "(each worker counts alone).",
    ),
    Setting(
        "password_guesses",
        "10/minute",
        parse_rate,
        "Wrong passwords per file, folder or account and per client before 429 (`0/minute`: no limit).",
    ),
    Setting(
        "trusted_proxies",
        [],
        parse_networks,
        "Addresses or networks whose X-Forwarded-For header is believed.",
    ),
    Setting(
        "min_free_space",
        "256MiB",
        parse_size,
        "Uploads are refused with 507 when they would leave less free space than this.",
    ),
    Setting("short_code_length", 8, parse_int, "Length of /s/ short codes (at least 6)."),
    Setting("job_interval", "60s", parse_duration, "How often background jobs run."),
    Setting(
        "temp_max_age", "6h", parse_duration, "Unfinished temp files older than this are swept."
    ),
    Setting(
        "orphan_grace",
        "1h",
        parse_duration,
        "A blob with no metadata is deleted once it is older than this.",
    ),
    Setting(
        "packages",
        {},
        parse_packages,
        "Account packages and their limits (TOML tables; see docs/settings.md).",
    ),
    Setting("default_package", "free", parse_str, "Package of a newly registered user."),
    Setting(
        "registration",
        "open",
        parse_registration,
        "Who may register: `open` (anyone), `invite` (with a code from `satchel admin create-invite`) or `closed`.",
    ),
    Setting("session_lifetime", "30d", parse_duration, "How long a browser login lasts."),
    Setting(
        "tus_expiry",
        "24h",
        parse_duration,
        "An unfinished tus upload idle this long is deleted; a finished one keeps its result this long.",
    ),
    Setting(
        "api_v2_auth",
        ["keys", "password"],
        parse_list,
        "How /api/v2 `authorize` accepts users: `keys` (key1 + key2), `password`, or both.",
    ),
    Setting(
        "url_import_timeout",
        "10m",
        parse_duration,
        "Longest time one remote URL import may take.",
    ),
    Setting(
        "url_import_workers",
        4,
        parse_int,
        "URL imports one server process runs at once (their own threads, apart from the other jobs).",
    ),
    Setting(
        "url_import_per_user",
        2,
        parse_int,
        "URL imports of one user that run at once: the others wait for their turn, other users' go first.",
    ),
    Setting(
        "url_import_min_rate",
        "16KiB",
        parse_size,
        "An import averaging fewer bytes per second than this over 30 s is given up (0: no minimum).",
    ),
    Setting(
        "url_import_allowed_hosts",
        [],
        parse_list,
        "Hosts (`name` or `name:port`) URL imports may reach even on private addresses.",
    ),
    Setting(
        "trash_retention",
        "48h",
        parse_duration,
        "Drive files and folders in the trash are deleted for good after this long.",
    ),
    Setting(
        "audit_retention",
        "365d",
        parse_duration,
        "Audit log events older than this are deleted; 0 keeps them for ever.",
    ),
    Setting("log_level", "info", parse_str, "Log level: debug, info, warning, error."),
    Setting(
        "workers", 0, parse_int, "Worker processes of `satchel serve`; 0 means one per CPU core."
    ),
    # -- logs and metrics (docs/observability.md) ----------------------------------------
    Setting(
        "log_format",
        "json",
        parse_log_format,
        "Server log lines: `json` (one object per line, with the request id) or `text`.",
    ),
    Setting(
        "access_log",
        False,
        parse_bool,
        "One log line per request: method, route template, status, duration, bytes (`satchel serve --access-log` too).",
    ),
    Setting("metrics", True, parse_bool, "Serve Prometheus metrics at /metrics (`on` or `off`)."),
    Setting(
        "metrics_token",
        "",
        parse_str,
        "When set, /metrics asks for `Authorization: Bearer <token>` (401 without it).",
    ),
    Setting(
        "metrics_allow",
        "127.0.0.0/8, ::1/128",
        parse_networks,
        "Client networks that may read /metrics (403 for others; the address after `trusted_proxies`); empty: any.",
    ),
)
_BY_NAME = {setting.name: setting for setting in SETTINGS}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One typed attribute per row of SETTINGS, in its order; a test holds the two together."""

    data_dir: str
    public_url: str
    database_url: str
    db_statement_timeout: int
    db_connect_timeout: int
    redis_url: str
    redis_prefix: str
    storage: str
    s3_endpoint: str
    s3_region: str
    s3_part_size: int
    master_keys: list[str]
    guest_max_upload_size: int
    user_max_upload_size: int
    default_expiry: int
    max_expiry: int
    download_resume_window: int
    rate_limits_enabled: bool
    rate_limits: dict[str, RateLimit]
    rate_limit_storage: str
    password_guesses: str
    trusted_proxies: list[str]
    min_free_space: int
    short_code_length: int
    job_interval: int
    temp_max_age: int
    orphan_grace: int
    packages: dict[str, Package]
    default_package: str
    registration: str
    session_lifetime: int
    tus_expiry: int
    api_v2_auth: list[str]
    url_import_timeout: int
    url_import_workers: int
    url_import_per_user: int
    url_import_min_rate: int
    url_import_allowed_hosts: list[str]
    trash_retention: int
    audit_retention: int
    log_level: str
    workers: int
    log_format: str
    access_log: bool
    metrics: bool
    metrics_token: str
    metrics_allow: list[str]

    @property
    def values(self) -> dict[str, Any]:
        """A new dict of name to value, for ``{**settings.values, name: raw}`` overrides.

        Any: the one dict holds every setting's type; typed reads go through the attributes.
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def replace(self, **changes: Any) -> Settings:
        return load_settings(environ={}, overrides={**self.values, **changes})

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def rate_limit_uri(self) -> str:
        """Where the rate limits are counted: the setting, else Redis, else this process."""
        return self.rate_limit_storage or self.redis_url or "memory://"

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'satchel.db'}"


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    config_file = config_file or environ.get("SATCHEL_CONFIG")
    if config_file:
        raw.update(_read_toml(Path(config_file)))
    for setting in SETTINGS:
        if setting.env in environ:
            raw[setting.name] = environ[setting.env]
    raw.update(overrides or {})
    values = {name: _parse(_BY_NAME[name], value) for name, value in raw.items()}
    settings = _guest_package_follows(Settings(**values))
    _check_consistency(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    section = data.get("satchel", data)
    unknown = sorted(set(section) - set(_BY_NAME))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(unknown)}")
    return dict(section)


def _parse(setting: Setting, value: Any) -> Any:
    try:
        return setting.parse(value)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"setting {setting.env} ({setting.name}): {exc}") from exc


def _guest_package_follows(settings: Settings) -> Settings:
    """The guest package's upload limit is always ``guest_max_upload_size``."""
    guest = settings.packages.get("guest")
    if guest is None:
        return settings
    limited = replace(guest, max_upload_size=settings.guest_max_upload_size)
    return replace(settings, packages={**settings.packages, "guest": limited})


def _check_consistency(settings: Settings) -> None:
    if settings.short_code_length < 6:
        raise ConfigError("setting SATCHEL_SHORT_CODE_LENGTH: must be at least 6")
    if settings.default_expiry > settings.max_expiry:
        raise ConfigError("setting SATCHEL_DEFAULT_EXPIRY: longer than SATCHEL_MAX_EXPIRY")
    if settings.default_expiry <= 0:
        raise ConfigError("setting SATCHEL_DEFAULT_EXPIRY: must be positive")
    if settings.default_package not in settings.packages:
        known = ", ".join(settings.packages)
        raise ConfigError(
            f"setting SATCHEL_DEFAULT_PACKAGE: no package {settings.default_package!r} ({known})"
        )
    unknown_auth = set(settings.api_v2_auth) - {"keys", "password"}
    if unknown_auth:
        raise ConfigError("setting SATCHEL_API_V2_AUTH: use keys, password or both")
    if settings.log_level.lower() not in {"debug", "info", "warning", "error"}:
        raise ConfigError("setting SATCHEL_LOG_LEVEL: use debug, info, warning or error")


def settings_markdown() -> str:
    lines = ["| Setting | Environment | Default | Meaning |", "| --- | --- | --- | --- |"]
    for s in SETTINGS:
        default = _describe_default(s.default)
        lines.append(f"| `{s.name}` | `{s.env}` | {default} | {s.help} |")
    return "\n".join(lines) + "\n"


def _describe_default(value: Any) -> str:
    if value == {}:
        return ", ".join(DEFAULT_PACKAGES)
    if isinstance(value, dict):
        return "<br>".join(f"`{k}={v.guest}:{v.user}`" for k, v in value.items())
    if value in ("", []):
        return "(empty)"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"
