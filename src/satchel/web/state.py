"""Everything a request handler needs, built once per process from the settings."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from starlette.requests import Request

from satchel.config import Settings
from satchel.core.accounts import AccountService
from satchel.core.apikeys import ApiKeyService
from satchel.core.files import Actor, FileService
from satchel.crypto.keys import KeyRing, load_or_create_keyfile
from satchel.db.engine import Database
from satchel.jobs.maintenance import maintenance_jobs
from satchel.jobs.runner import JobRunner
from satchel.storage import open_store
from satchel.web.http import client_ip
from satchel.web.ratelimit import RateLimiter


@dataclass
class AppState:
    settings: Settings
    db: Database
    files: FileService
    limiter: RateLimiter
    jobs: JobRunner
    accounts: AccountService
    apikeys: ApiKeyService
    trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)

    def actor(self, request: Request) -> Actor:
        return Actor(ip=client_ip(request, self.trusted))

    def url(self, path: str) -> str:
        return f"{self.settings.public_url}{path}"


def master_keys(settings: Settings) -> KeyRing:
    keys: list[str] = settings.master_keys or load_or_create_keyfile(
        settings.data_path / "master.keys"
    )
    return KeyRing(keys)


def build_state(settings: Settings) -> AppState:
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.sqlalchemy_url)
    store = open_store(settings.storage, Path(data))
    files = FileService(db, store, master_keys(settings), settings)
    interval = timedelta(seconds=settings.job_interval)
    return AppState(
        settings=settings,
        db=db,
        files=files,
        limiter=RateLimiter(settings),
        jobs=JobRunner(db, maintenance_jobs(files, interval)),
        accounts=AccountService(db, settings.packages, settings.default_package),
        apikeys=ApiKeyService(db),
        trusted=[ipaddress.ip_network(n) for n in settings.trusted_proxies],
    )
