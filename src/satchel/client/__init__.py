"""The Python client of a Satchel server, and the ``satchel upload | download | manage |
delete | drive | keys`` commands built on it (docs/cli.md)."""

from satchel.client.api import Drive, Keys, SatchelClient
from satchel.client.config import ClientConfig, load_config
from satchel.client.download import DownloadResult
from satchel.client.errors import (
    ClientError,
    IntegrityFailed,
    PasswordNeeded,
    ServerFailed,
    ServerRefused,
    UsageError,
)
from satchel.client.results import Listing, UploadResult

__all__ = [
    "ClientConfig",
    "ClientError",
    "DownloadResult",
    "Drive",
    "IntegrityFailed",
    "Keys",
    "Listing",
    "PasswordNeeded",
    "SatchelClient",
    "ServerFailed",
    "ServerRefused",
    "UploadResult",
    "UsageError",
    "load_config",
]
