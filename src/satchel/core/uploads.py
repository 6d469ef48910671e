"""The upload policy: what every upload must satisfy, whichever way it comes in (``/upload``,
``/apiv1``, ``/api/v2``, tus, URL imports, drive copies, the pages), and how what it brought
becomes files.

Every surface calls the same functions at the same moments:

1. ``max_bytes(actor)`` sizes the stream it reads, and ``admit(actor, declared)`` checks the
   declared size (Content-Length, Upload-Length) before any of the body is read;
2. ``check_options`` refuses bad options as soon as they are known;
3. ``slot(actor)`` holds one of the package's concurrent uploads while the body arrives;
4. ``register(actor, blobs, options)`` checks the real sizes with ``admit`` again and makes
   the files, all of them or none.

A new limit on what may be uploaded goes into ``admit``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from satchel import observability
from satchel.config import Settings
from satchel.core.accounts import AccountService
from satchel.core.actors import Actor, Guest, Member
from satchel.core.bundles import IngestedBlob
from satchel.core.drive.folders import FolderService
from satchel.core.files import CreatedUpload, FileService
from satchel.core.options import UploadOptions
from satchel.core.packages import Package
from satchel.core.slots import UploadSlots
from satchel.db.engine import Database
from satchel.db.repositories.drive import DriveRows
from satchel.errors import BadRequest, QuotaExceeded, StorageFull, TooLarge, Unauthorized
from satchel.storage.base import BlobStore

# Multipart framing around the files: a declared Content-Length may be this much larger.
FRAMING_ALLOWANCE = 1 << 20


class UploadPolicy:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        accounts: AccountService,
        folders: FolderService,
        files: FileService,
        store: BlobStore,
        slots: UploadSlots,
    ) -> None:
        self.settings = settings
        self.db = db
        self.accounts = accounts
        self.folders = folders
        self.files = files
        self.store = store
        self.slots = slots

    # -- limits ---------------------------------------------------------------------------

    def package(self, actor: Actor) -> Package:
        if isinstance(actor, Guest):
            return self.accounts.packages["guest"]
        return self.accounts.package_of(actor.user)

    def max_bytes(self, actor: Actor | None) -> int:
        """The largest upload: the package's limit (0 = none), never above the server's cap
        for users; a guest's is ``guest_max_upload_size``. None: a user not known yet (an
        /api/v2 token that comes in the body), held to the server's cap."""
        if actor is None:
            return self.settings.user_max_upload_size
        if isinstance(actor, Guest):
            return self.settings.guest_max_upload_size
        return self.package(actor).upload_limit(self.settings.user_max_upload_size)

    def admit(self, actor: Actor | None, size: int) -> None:
        """Whether ``size`` more bytes may be stored for ``actor``: TooLarge past the upload
        limit, QuotaExceeded past the package's storage quota. Checked before a body is read
        (with its declared size) and again once it is in (with the real one)."""
        limit = self.max_bytes(actor)
        if size > limit:
            raise TooLarge(f"File too large (limit {limit} bytes)", limit=limit)
        if isinstance(actor, Member):
            quota = self.package(actor).max_storage_bytes
            if quota and self.used_bytes(actor.user_id) + size > quota:
                raise QuotaExceeded(f"Storage quota exceeded (quota {quota} bytes)")

    def admit_body(self, actor: Actor | None, content_length: int | None) -> None:
        """A body's declared length, before any of it is read: the upload limit and the quota
        (the multipart framing allowed for), and the free space of the storage."""
        if content_length is None:
            self.check_space(0)
            return
        self.admit(actor, max(0, content_length - FRAMING_ALLOWANCE))
        self.check_space(content_length)

    def check_space(self, incoming: int) -> None:
        free = self.store.free_bytes()
        if free is not None and free - incoming < self.settings.min_free_space:
            raise StorageFull()

    def used_bytes(self, owner_id: int) -> int:
        """Storage that counts against the quota: every stored file of the user, trash included."""
        with self.db.read() as session:
            return DriveRows(session).used_bytes(owner_id)

    def check_options(self, actor: Actor, options: UploadOptions) -> None:
        """The options' own rules, and the drive folder they name."""
        if isinstance(actor, Guest) and (not options.is_temp or options.folder_id is not None):
            raise Unauthorized("Login required for cloud drive uploads (is_temp=false)")
        if options.expires_given and options.expires is None and options.is_temp:
            raise BadRequest("expires=never needs a logged-in user with a cloud drive file")
        if options.e2e and options.password:
            raise BadRequest("An E2E upload cannot also take a server-side password")
        if isinstance(actor, Member):
            self.folders.live(actor.user_id, options.folder_id)

    @contextmanager
    def slot(self, actor: Actor) -> Iterator[None]:
        """One of the package's ``concurrent_uploads`` (0 = no limit) while the body comes,
        counted across every worker and instance."""
        limit = self.package(actor).concurrent_uploads
        if not limit:
            with observability.upload_in_progress():
                yield
            return
        who = f"user:{actor.user_id}" if isinstance(actor, Member) else f"ip:{actor.ip}"
        held = self.slots.acquire(who, limit)
        try:
            with observability.upload_in_progress():
                yield
        finally:
            self.slots.release(held)

    # -- registering ----------------------------------------------------------------------

    def register(
        self, actor: Actor, blobs: list[IngestedBlob], options: UploadOptions
    ) -> list[CreatedUpload]:
        """The files of one upload, all or none: the limits checked again with the real
        sizes, drive files named freely in their folder. On any failure the files registered
        so far go (the caller discards the blobs of the rest)."""
        self.check_options(actor, options)
        if options.e2e and (len(blobs) > 1 or any(blob.file_count > 1 for blob in blobs)):
            raise BadRequest("E2E uploads take exactly one file")
        self.admit(actor, sum(blob.size for blob in blobs))
        created: list[CreatedUpload] = []
        try:
            for blob in blobs:
                name = self._name(actor, options, blob)
                created.append(self.files.register_upload(blob, options, actor, name))
        except BaseException:
            self.files.delete_files([c.file.id for c in created])
            raise
        observability.upload_completed(sum(blob.size for blob in blobs))
        return created

    def _name(self, actor: Actor, options: UploadOptions, blob: IngestedBlob) -> str | None:
        if options.is_temp or not isinstance(actor, Member):
            return None
        return self.folders.free_file_name(actor.user_id, options.folder_id, blob.name)

    def actor_of(self, owner_id: int | None, ip: str) -> Actor:
        """Who made an upload that finishes later (tus, URL imports)."""
        if owner_id is None:
            return Guest(ip=ip)
        return Member(ip=ip, user=self.accounts.get_by_id(owner_id))
