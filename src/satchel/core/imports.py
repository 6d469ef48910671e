"""Remote URL imports: queued by /api/v2, fetched into a user's drive by import workers."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from satchel.config import Settings
from satchel.core.accounts import AccountService
from satchel.core.actors import Member
from satchel.core.bundles import store_stream
from satchel.core.drive.folders import FolderService
from satchel.core.names import safe_content_type, safe_filename
from satchel.core.options import UploadOptions
from satchel.core.uploads import UploadPolicy
from satchel.db.engine import Database
from satchel.db.models import ImportStatus, UrlImport, User, utcnow
from satchel.errors import BadRequest, NotFound, SatchelError
from satchel.storage.base import BlobStore

log = logging.getLogger("satchel.imports")
ACTIVE = (ImportStatus.PENDING, ImportStatus.DOWNLOADING)
MAX_URL_LENGTH = 2048
PROGRESS_EVERY = 1.0  # seconds between progress writes


class UrlImportService:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        settings: Settings,
        accounts: AccountService,
        folders: FolderService,
        uploads: UploadPolicy,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.accounts = accounts
        self.folders = folders
        self.uploads = uploads
        self.per_user = max(1, settings.url_import_per_user)
        self.clock = clock
        self.worker = secrets.token_hex(8)

    def add(self, user: User, url: str, folder_id: int | None) -> UrlImport:
        """Queues ``url``. Only its form is checked here: where it leads is the job's to check,
        on the address it actually connects to."""
        text = url.strip()
        if not text.lower().startswith(("http://", "https://")) or len(text) > MAX_URL_LENGTH:
            raise BadRequest("Only http:// and https:// URLs can be imported")
        self.folders.live(user.id, folder_id)
        package = self.accounts.package_of(user)
        with self.db.write() as session:
            if package.max_remote_download_urls:
                queued = session.scalar(
                    select(func.count(UrlImport.id)).where(
                        UrlImport.user_id == user.id, UrlImport.status.in_(ACTIVE)
                    )
                )
                if (queued or 0) >= package.max_remote_download_urls:
                    raise BadRequest(
                        f"At most {package.max_remote_download_urls} URL imports at once"
                    )
            item = UrlImport(
                user_id=user.id,
                url=text,
                folder_id=folder_id,
                status=ImportStatus.PENDING,
                created_at=self.clock(),
                downloaded=0,
            )
            session.add(item)
        return item

    def get(self, user_id: int, item_id: int) -> UrlImport:
        with self.db.read() as session:
            item = session.get(UrlImport, item_id)
        if item is None or item.user_id != user_id:
            raise NotFound("Scheduled item not found")
        return item

    # -- the job ------------------------------------------------------------------------

    def run_pending(self, budget: float = 50.0) -> str:
        """Imports queued URLs one after another, in fair order, for up to ``budget`` seconds
        (``satchel admin run-jobs``; a server runs them in its import workers)."""
        done = 0
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline and self.run_next():
            done += 1
        return f"ran {done} URL import(s)"

    def run_next(self) -> bool:
        """Claims the next import and runs it; False when none may start now."""
        item_id = self._claim_next()
        if item_id is None:
            return False
        self._run(item_id)
        return True

    def _claim_next(self) -> int | None:
        """Fair share: the oldest waiting import of the user with the fewest running, and
        none of a user who already runs ``per_user``. Several workers (and instances) race
        for it; the loser looks again."""
        running = (
            select(UrlImport.user_id, func.count(UrlImport.id).label("running"))
            .where(UrlImport.status == ImportStatus.DOWNLOADING)
            .group_by(UrlImport.user_id)
            .subquery()
        )
        busy = func.coalesce(running.c.running, 0)
        statement = (
            select(UrlImport.id)
            .outerjoin(running, running.c.user_id == UrlImport.user_id)
            .where(UrlImport.status == ImportStatus.PENDING, busy < self.per_user)
            .order_by(busy, UrlImport.id)
            .limit(1)
        )
        for _attempt in range(5):
            with self.db.read() as session:
                item_id = session.scalar(statement)
            if item_id is None:
                return None
            if self._claim(item_id):
                return item_id
        return None

    def _claim(self, item_id: int) -> bool:
        """pending → downloading, by one worker only (several instances may race here)."""
        with self.db.write() as session:
            result = session.execute(
                update(UrlImport)
                .where(UrlImport.id == item_id, UrlImport.status == ImportStatus.PENDING)
                .values(
                    status=ImportStatus.DOWNLOADING, worker=self.worker, started_at=self.clock()
                )
            )
        return bool(getattr(result, "rowcount", 0))

    def _run(self, item_id: int) -> None:
        # Imported here: the fetcher's HTTP client is memory every worker would carry
        # whether or not it ever imports a URL.
        from satchel.core.urlfetch import UrlRefused

        with self.db.read() as session:
            item = session.get(UrlImport, item_id)
            user = session.get(User, item.user_id) if item else None
        if item is None or user is None:
            return
        try:
            file_id, size = self._fetch_into_drive(item, user)
        except UrlRefused as exc:
            self._finish(item_id, ImportStatus.FAILED, error=exc.reason)
        except SatchelError as exc:
            self._finish(item_id, ImportStatus.FAILED, error=exc.detail)
        except Exception:
            log.exception("URL import %s failed", item_id)
            self._finish(item_id, ImportStatus.FAILED, error="internal error while importing")
        else:
            self._finish(
                item_id, ImportStatus.COMPLETE, file_id=file_id, total_size=size, downloaded=size
            )

    def _fetch_into_drive(self, item: UrlImport, user: User) -> tuple[int, int]:
        from satchel.core.urlfetch import FetchLimits, open_url

        settings = self.settings
        owner = Member(ip="", user=user)
        limits = FetchLimits(
            max_bytes=self.uploads.max_bytes(owner),
            timeout=settings.url_import_timeout,
            max_redirects=5,
            allowed_hosts=frozenset(h.lower() for h in settings.url_import_allowed_hosts),
            min_rate=settings.url_import_min_rate,
        )
        options = UploadOptions(
            is_temp=False, folder_id=item.folder_id, public=True, short_url=True
        )
        with open_url(item.url, limits, _Progress(self, item.id)) as fetched:
            if fetched.size is not None:
                self._set(item.id, total_size=fetched.size)
                self.uploads.admit(owner, fetched.size)
            blob = store_stream(
                self.store,
                fetched.chunks,
                safe_filename(fetched.filename, fallback="download"),
                safe_content_type(fetched.content_type),
            )
        try:
            [created] = self.uploads.register(owner, [blob], options)
        except BaseException:
            self.store.delete(blob.blob_key)
            raise
        return created.file.id, blob.size

    def _finish(self, item_id: int, status: str, **values: object) -> None:
        self._set(item_id, status=status, finished_at=self.clock(), **values)

    def _set(self, item_id: int, **values: object) -> None:
        with self.db.write() as session:
            session.execute(update(UrlImport).where(UrlImport.id == item_id).values(**values))

    def fail_stale(self) -> str:
        """A worker that died mid-import leaves its row "downloading": fail it after twice
        the time limit (a maintenance job)."""
        timeout = timedelta(seconds=2 * self.settings.url_import_timeout)
        with self.db.write() as session:
            result = session.execute(
                update(UrlImport)
                .where(
                    UrlImport.status == ImportStatus.DOWNLOADING,
                    UrlImport.started_at <= self.clock() - timeout,
                )
                .values(
                    status=ImportStatus.FAILED,
                    finished_at=self.clock(),
                    error="interrupted: try again",
                )
            )
        return f"failed {getattr(result, 'rowcount', 0) or 0} interrupted URL import(s)"


class _Progress:
    """Writes the downloaded byte count at most once a second."""

    def __init__(self, service: UrlImportService, item_id: int) -> None:
        self.service = service
        self.item_id = item_id
        self.last = 0.0

    def __call__(self, downloaded: int) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.service._set(self.item_id, downloaded=downloaded)


class ImportWorkers:
    """Threads that run URL imports as they are queued, apart from the maintenance jobs: a
    slow import delays no other user's and no expiry or sweep."""

    def __init__(self, imports: UrlImportService, count: int, poll: float = 5.0) -> None:
        self.imports = imports
        self.count = count
        self.poll = poll  # imports queued through another instance are found this often
        self._woken = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self.count):
            thread = threading.Thread(
                target=self._loop, name=f"satchel-import-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        self._woken.set()

    def stop(self) -> None:
        self._stop.set()
        self._woken.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.imports.run_next()
            except Exception:
                log.exception("URL import worker failed")
                ran = False
            if ran:
                continue
            self._woken.wait(self.poll)
            self._woken.clear()
