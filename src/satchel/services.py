"""The composition root: every service built once from the settings, each given what it needs
in its constructor. ``satchel serve`` (through the web app), the CLI's jobs and the tests all
build their services here."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from limits import parse

from satchel.config import Settings
from satchel.core.access import AccessRules
from satchel.core.accounts import AccountService
from satchel.core.admin import AdminService, PackageCatalog
from satchel.core.apikeys import ApiKeyService
from satchel.core.audit import AuditLog
from satchel.core.downloads import DownloadService
from satchel.core.drive.files import DriveFileService
from satchel.core.drive.folders import FolderService
from satchel.core.drive.listing import ListingService
from satchel.core.drive.sharing import SharingService
from satchel.core.drive.trash import TrashService
from satchel.core.files import FileService
from satchel.core.guesses import GuessLimiter
from satchel.core.imports import ImportWorkers, UrlImportService
from satchel.core.invites import InviteService
from satchel.core.keyring import MasterKeys
from satchel.core.sessions import SessionService
from satchel.core.slots import DatabaseSlots, RedisSlots, UploadSlots
from satchel.core.tus import TusService
from satchel.core.uploads import UploadPolicy
from satchel.core.v2auth import V2AuthService
from satchel.crypto.keys import load_or_create_keyfile
from satchel.db.engine import Database
from satchel.jobs.maintenance import maintenance_jobs
from satchel.jobs.runner import JobRunner
from satchel.storage import S3Options, open_store
from satchel.storage.base import BlobStore

if TYPE_CHECKING:
    from redis import Redis


@dataclass
class Services:
    settings: Settings
    db: Database
    store: BlobStore
    keys: MasterKeys
    guesses: GuessLimiter
    accounts: AccountService
    apikeys: ApiKeyService
    sessions: SessionService
    invites: InviteService
    v2auth: V2AuthService
    access: AccessRules
    files: FileService
    downloads: DownloadService
    folders: FolderService
    listings: ListingService
    trash: TrashService
    drive_files: DriveFileService
    sharing: SharingService
    uploads: UploadPolicy
    tus: TusService
    imports: UrlImportService
    import_workers: ImportWorkers
    audit: AuditLog
    jobs: JobRunner
    redis: Redis | None = None  # SATCHEL_REDIS_URL: the state instances share outside the database

    @functools.cached_property
    def admin(self) -> AdminService:
        packages = self.accounts.packages
        assert isinstance(packages, PackageCatalog)
        return AdminService(self.db, self.accounts, packages, self.invites, self.files)

    def close(self) -> None:
        self.db.dispose()
        if self.redis is not None:
            self.redis.close()
        self.store.close()


def key_source(settings: Settings) -> Callable[[], list[str]]:
    """Where the master keys come from: the setting, or the key file (read again whenever the
    key ring changes, so a rotation reaches running workers)."""
    if settings.master_keys:
        keys = list(settings.master_keys)
        return lambda: keys
    path = settings.data_path / "master.keys"
    return lambda: load_or_create_keyfile(path)


def open_database(settings: Settings) -> Database:
    return Database(
        settings.sqlalchemy_url,
        statement_timeout=settings.db_statement_timeout,
        connect_timeout=settings.db_connect_timeout,
    )


def open_redis(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    from redis import Redis  # only where it is used

    timeout = max(1.0, float(settings.db_statement_timeout))
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=max(1.0, float(settings.db_connect_timeout)),
        health_check_interval=30,
    )


def upload_slots(settings: Settings, db: Database, redis: Redis | None) -> UploadSlots:
    """Redis when there is one (a dead instance's slots free themselves in seconds), else
    rows in the database (enough for the workers of one machine)."""
    if redis is not None:
        return RedisSlots(redis, prefix=settings.redis_prefix + "slots:")
    return DatabaseSlots(db, timedelta(seconds=max(6 * 3600, settings.temp_max_age)))


def guess_limiter(settings: Settings, db: Database) -> GuessLimiter:
    limit = parse(settings.password_guesses)
    return GuessLimiter(db, limit.amount, timedelta(seconds=limit.get_expiry()))


def account_service(
    settings: Settings, db: Database, guesses: GuessLimiter | None = None
) -> AccountService:
    """Accounts over the settings' packages and those admins made or changed (the packages
    table)."""
    packages = PackageCatalog(db, settings.packages)
    guesses = guesses or guess_limiter(settings, db)
    return AccountService(db, packages, settings.default_package, guesses)


def s3_options(settings: Settings) -> S3Options:
    return S3Options(settings.s3_endpoint, settings.s3_region, settings.s3_part_size)


def build_services(settings: Settings) -> Services:
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = open_database(settings)
    redis = open_redis(settings)
    store = open_store(settings.storage, Path(data), s3_options(settings))
    keys = MasterKeys(db, key_source(settings))
    guesses = guess_limiter(settings, db)
    accounts = account_service(settings, db, guesses)
    v2auth = V2AuthService(db)
    access = AccessRules(db, guesses, keys, v2auth)
    files = FileService(db, store, keys, settings)
    folders = FolderService(db)
    listings = ListingService(db)
    resume = timedelta(seconds=settings.download_resume_window)
    slots = upload_slots(settings, db, redis)
    uploads = UploadPolicy(settings, db, accounts, folders, files, store, slots)
    trash = TrashService(db, files)
    sessions = SessionService(db, timedelta(seconds=settings.session_lifetime))
    tus = TusService(
        db, store, keys, files, uploads, settings.max_expiry, timedelta(seconds=settings.tus_expiry)
    )
    imports = UrlImportService(db, store, settings, accounts, folders, uploads)
    audit = AuditLog(db)
    downloads = DownloadService(db, files, access, keys, resume)
    jobs = JobRunner(
        db,
        maintenance_jobs(settings=settings, files=files, trash=trash, sessions=sessions,
                         imports=imports, v2auth=v2auth, tus=tus, guesses=guesses, audit=audit,
                         resumes=downloads.resumes),
    )  # fmt: skip
    return Services(
        settings=settings,
        db=db,
        store=store,
        keys=keys,
        guesses=guesses,
        accounts=accounts,
        apikeys=ApiKeyService(db),
        sessions=sessions,
        invites=InviteService(db),
        v2auth=v2auth,
        access=access,
        files=files,
        downloads=downloads,
        folders=folders,
        listings=listings,
        trash=trash,
        drive_files=DriveFileService(db, files, folders, uploads),
        sharing=SharingService(db, listings),
        uploads=uploads,
        tus=tus,
        imports=imports,
        import_workers=ImportWorkers(imports, settings.url_import_workers),
        audit=audit,
        jobs=jobs,
        redis=redis,
    )
