"""Where the client finds its server and keys: flags, then ``SATCHEL_*`` environment
variables, then ``~/.config/satchel/client.toml``."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from satchel.client.errors import UsageError

CONFIG_KEYS = {"url", "api_key", "v2_keys"}


@dataclass(frozen=True)
class ClientConfig:
    url: str | None = None
    api_key: str | None = None
    v2_keys: str | None = None  # "KEY1:KEY2", for the /api/v2 moves and copies

    def require_url(self) -> str:
        if not self.url:
            raise UsageError(
                'no server: pass --url, set SATCHEL_URL or put url = "…" in the client config'
            )
        return self.url

    def require_api_key(self) -> str:
        if not self.api_key:
            raise UsageError(
                "this command needs an API key: pass --api-key, set SATCHEL_API_KEY or put "
                'api_key = "…" in the client config'
            )
        return self.api_key


def default_config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("SATCHEL_CLIENT_CONFIG"):
        return Path(environ["SATCHEL_CLIENT_CONFIG"]).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "satchel" / "client.toml"


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "satchel"


def read_config_file(path: Path, required: bool) -> dict[str, str]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        if required:
            raise UsageError(f"client config {path} does not exist") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"client config {path}: {exc}") from None
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise UsageError(f"client config {path}: unknown key(s) {', '.join(unknown)}")
    if not all(isinstance(value, str) for value in data.values()):
        raise UsageError(f"client config {path}: values must be strings")
    return dict(data)


def load_config(
    *,
    url: str | None = None,
    api_key: str | None = None,
    v2_keys: str | None = None,
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Each value from the first of: the flag, the environment, the config file."""
    environ = os.environ if environ is None else environ
    explicit = config_path is not None or bool(environ.get("SATCHEL_CLIENT_CONFIG"))
    path = Path(config_path).expanduser() if config_path else default_config_path(environ)
    file = read_config_file(path, required=explicit)

    def pick(flag: str | None, env: str, key: str) -> str | None:
        return flag or environ.get(env) or file.get(key) or None

    return ClientConfig(
        url=_base_url(pick(url, "SATCHEL_URL", "url")),
        api_key=pick(api_key, "SATCHEL_API_KEY", "api_key"),
        v2_keys=pick(v2_keys, "SATCHEL_V2_KEYS", "v2_keys"),
    )


def _base_url(url: str | None) -> str | None:
    if url is None:
        return None
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"server URL must start with http:// or https:// (got {url!r})")
    return url.rstrip("/")
