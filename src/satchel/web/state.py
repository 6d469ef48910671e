"""Everything a request handler needs, built once per process from the settings."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from limits import parse
from starlette.requests import Request

from satchel.config import Settings
from satchel.core.accounts import AccountService
from satchel.core.apikeys import ApiKeyService
from satchel.core.drive import DriveService
from satchel.core.files import Actor, FileService
from satchel.core.guesses import GuessLimiter
from satchel.core.imports import ImportWorkers, UrlImportService
from satchel.core.keyring import MasterKeys
from satchel.core.packages import Package
from satchel.core.sessions import SessionService
from satchel.core.tus import TusService
from satchel.core.v2auth import V2AuthService
from satchel.crypto.keys import load_or_create_keyfile
from satchel.db.engine import Database
from satchel.jobs.maintenance import maintenance_jobs
from satchel.jobs.runner import JobRunner
from satchel.storage import open_store
from satchel.web.http import client_ip
from satchel.web.ratelimit import RateLimiter

SESSION_COOKIE = "satchel_session"


@dataclass
class AppState:
    settings: Settings
    db: Database
    files: FileService
    limiter: RateLimiter
    jobs: JobRunner
    accounts: AccountService
    apikeys: ApiKeyService
    sessions: SessionService
    drive: DriveService
    v2auth: V2AuthService
    imports: UrlImportService
    import_workers: ImportWorkers
    tus: TusService
    trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    # Uploads in progress in this process, by user or guest address (packages' concurrency).
    uploads_running: dict[str, int] = field(default_factory=dict)

    async def actor(self, request: Request, key_permission: str | None = None) -> Actor:
        """Who sends ``request``: the user of its session cookie or, where the endpoint takes
        one, of an API key with ``key_permission``; otherwise a guest at the client address.
        A key that is sent but fails answers 401/403 rather than falling back to a guest."""
        ip = client_ip(request, self.trusted)
        if key_permission is not None and "authorization" in request.headers:
            header = request.headers["authorization"]
            key_user, _key = await asyncio.to_thread(
                self.apikeys.authenticate, header, ip, key_permission
            )
            return Actor(ip=ip, user_id=key_user.id, user=key_user)
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            user = await asyncio.to_thread(self.sessions.user_for, token)
            if user is not None:
                return Actor(ip=ip, user_id=user.id, user=user)
        return Actor(ip=ip)

    def package_of(self, actor: Actor) -> Package:
        if actor.user is None:
            guest: Package = self.settings.packages["guest"]
            return guest
        return self.accounts.package_of(actor.user)

    def url(self, path: str) -> str:
        return f"{self.settings.public_url}{path}"


def key_source(settings: Settings) -> Callable[[], list[str]]:
    """Where the master keys come from: the setting, or the key file (read again whenever the
    key ring changes, so a rotation reaches running workers)."""
    if settings.master_keys:
        keys: list[str] = list(settings.master_keys)
        return lambda: keys
    path = settings.data_path / "master.keys"
    return lambda: load_or_create_keyfile(path)


def guess_limiter(settings: Settings, db: Database) -> GuessLimiter:
    limit = parse(settings.password_guesses)
    return GuessLimiter(db, limit.amount, timedelta(seconds=limit.get_expiry()))


def open_database(settings: Settings) -> Database:
    return Database(
        settings.sqlalchemy_url,
        statement_timeout=float(settings.db_statement_timeout),
        connect_timeout=float(settings.db_connect_timeout),
    )


def _check_quota(
    accounts: AccountService, drive: DriveService, owner_id: int | None, size: int
) -> None:
    if owner_id is not None:
        quota = accounts.package_of(accounts.get_by_id(owner_id)).max_storage_bytes
        drive.check_quota(owner_id, quota, size)


def build_state(settings: Settings) -> AppState:
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = open_database(settings)
    store = open_store(settings.storage, Path(data))
    guesses = guess_limiter(settings, db)
    files = FileService(db, store, MasterKeys(db, key_source(settings)), settings, guesses)
    drive = DriveService(files)
    sessions = SessionService(db, timedelta(seconds=settings.session_lifetime))
    accounts = AccountService(db, settings.packages, settings.default_package, guesses)
    v2auth = V2AuthService(db)
    imports = UrlImportService(drive, accounts, settings.url_import_per_user)
    tus = TusService(files, timedelta(seconds=settings.tus_expiry))
    tus.check_quota = lambda owner_id, size: _check_quota(accounts, drive, owner_id, size)
    interval = timedelta(seconds=settings.job_interval)
    return AppState(
        settings=settings,
        db=db,
        files=files,
        limiter=RateLimiter(settings),
        jobs=JobRunner(
            db, maintenance_jobs(files, drive, sessions, interval, imports, v2auth, tus)
        ),
        accounts=accounts,
        apikeys=ApiKeyService(db),
        sessions=sessions,
        drive=drive,
        v2auth=v2auth,
        imports=imports,
        import_workers=ImportWorkers(imports, settings.url_import_workers),
        tus=tus,
        trusted=[ipaddress.ip_network(n) for n in settings.trusted_proxies],
    )
