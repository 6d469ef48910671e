"""Downloads: which bytes a request gets, whether it counts, and the download limit.

A GET from byte 0 counts. On a file with a download limit every GET counts, a range too,
unless it resumes a counted download, which the signed ETag of that download's answer proves
(sent back in If-Range): the ETag names the byte range counted, a resumption stays inside it,
and core.resumes bounds how often and from where each download is resumed. The limit is
checked and the count raised in one statement, so of many simultaneous downloads exactly as
many succeed as the limit allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from satchel.core.access import AccessRules
from satchel.core.actors import Actor
from satchel.core.files import FileService, is_live, used_up
from satchel.core.keyring import MasterKeys
from satchel.core.resumes import ResumeLedger
from satchel.db.engine import Database
from satchel.db.models import FileState, StoredFile, utcnow
from satchel.db.repositories.files import FileRows, count_download
from satchel.errors import (
    BadRequest,
    FileNotFound,
    Gone,
    NotFound,
    PasswordRequired,
    RangeNotSatisfiable,
)

RESUME_PURPOSE = b"download-resume"


@dataclass(frozen=True)
class ByteRange:
    """A parsed ``Range: bytes=…`` header; resolved against the size by the service."""

    first: int | None
    last: int | None

    def resolve(self, size: int) -> tuple[int, int]:
        """Half-open [start, end) or RangeNotSatisfiable."""
        if self.first is None:
            suffix = self.last or 0
            if suffix <= 0 or size == 0:
                raise RangeNotSatisfiable(size)
            return max(0, size - suffix), size
        if self.first >= size:
            raise RangeNotSatisfiable(size)
        last = size - 1 if self.last is None else min(self.last, size - 1)
        return self.first, last + 1


@dataclass(frozen=True)
class _Counted:
    """What a resume ETag names: the download, the byte range it was counted for, its end."""

    download: int
    start: int
    end: int
    until: datetime


@dataclass(frozen=True)
class DownloadRequest:
    """What a download request asks for, as the surfaces parse it."""

    actor: Actor
    password: str | None = None
    byte_range: ByteRange | None = None
    counts: bool = True  # a GET; HEAD never counts
    if_range: str | None = None
    download_token: str | None = None  # /api/v2's file/download link
    file_pass: str | None = None  # from a share page unlocked with the password (core.access)


@dataclass(frozen=True)
class DownloadPlan:
    file: StoredFile
    start: int
    end: int
    partial: bool
    counted: bool
    final: bool  # this download used up the last allowed one: the link dies when it ends
    etag: str = ""

    @property
    def tag(self) -> str:
        return self.etag or plain_etag(self.file)


def plain_etag(record: StoredFile) -> str:
    return f'"{record.uuid}"'


def whole(record: StoredFile) -> DownloadPlan:
    return DownloadPlan(record, 0, record.size, partial=False, counted=False, final=False)


class DownloadService:
    def __init__(
        self,
        db: Database,
        files: FileService,
        access: AccessRules,
        keys: MasterKeys,
        resume_window: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.resumes = ResumeLedger(db, clock)
        self.files = files
        self.access = access
        self.keys = keys
        self.resume_window = resume_window
        self.clock = clock

    # -- plans ----------------------------------------------------------------------------

    def plan(self, target: str | StoredFile, asked: DownloadRequest) -> DownloadPlan:
        """``target`` is a public id, or the record of an earlier ``files.lookup``."""
        found = self.files.lookup(target) if isinstance(target, str) else target
        granted = self.access.token_grants(asked.download_token, found)
        byte_range = asked.byte_range
        counted = self._counted_by(found, asked.if_range) if found.max_downloads else None
        if byte_range is not None and counted is not None:
            resumed = self._resumption(found, asked, byte_range, granted, counted)
            if resumed is not None:
                return resumed
        if asked.if_range is not None and asked.if_range != plain_etag(found):
            byte_range = None  # a validator that does not match: the whole body (RFC 9110)
        record = self.servable(found)
        self.access.check_file(record, asked.actor, asked.password, granted, asked.file_pass)
        return self._counted(record, byte_range, asked.counts)

    def plan_shared(
        self, code: str, file_id: int, asked: DownloadRequest, cookie: str | None
    ) -> DownloadPlan:
        """A file directly in a shared folder, for whoever may open the folder: the folder's
        sharing is what its owner chose, so the file's own visibility is not asked again;
        a password of its own is."""
        folder = self.access.shared_folder(code, asked.actor)
        if not self.access.may_open(folder, asked.actor, cookie):
            raise PasswordRequired("This folder needs its password")
        with self.db.read() as session:
            record = FileRows(session).get(file_id)
        if record is None or record.folder_id != folder.id or record.owner_id != folder.owner_id:
            raise FileNotFound()
        if record.is_temp:
            raise FileNotFound()
        self.access.check_own_password(record, asked.actor, asked.password)
        return self._counted(self.servable(record), asked.byte_range, asked.counts)

    def plan_managed(self, token: str, actor: Actor) -> DownloadPlan:
        """The management token's holder may fetch the file even when it is private."""
        return whole(self.files.get_managed(token, actor))

    def plan_own(self, record: StoredFile, byte_range: ByteRange | None) -> DownloadPlan:
        """A drive file for its owner (/apiv1): not counted, end-to-end files refused."""
        if record.is_e2e:
            raise BadRequest("End-to-end encrypted files cannot be downloaded through the API")
        start, end = byte_range.resolve(record.size) if byte_range else (0, record.size)
        return DownloadPlan(record, start, end, byte_range is not None, counted=False, final=False)

    def _counted(
        self, record: StoredFile, byte_range: ByteRange | None, counts: bool
    ) -> DownloadPlan:
        start, end = byte_range.resolve(record.size) if byte_range else (0, record.size)
        partial = byte_range is not None
        limited = record.max_downloads is not None
        if not counts or (start != 0 and not limited):
            return DownloadPlan(record, start, end, partial, counted=False, final=False)
        downloads = self._count(record)
        if record.max_downloads is None:
            return DownloadPlan(record, start, end, partial, counted=True, final=False)
        final = downloads >= record.max_downloads and end == record.size
        etag = self._resume_tag(record, downloads, start, end)
        return DownloadPlan(record, start, end, partial, counted=True, final=final, etag=etag)

    # -- liveness and counting ----------------------------------------------------------

    def servable(self, record: StoredFile) -> StoredFile:
        """410 once used up, 404 when expired or in its owner's trash."""
        if record.state != FileState.READY:
            raise Gone()
        if not is_live(record, self.clock()):
            raise NotFound()
        if used_up(record):
            self.mark_gone(record.id)
            raise Gone()
        return record

    def _count(self, record: StoredFile) -> int:
        """With a limit, atomic: the limit is checked and the counter bumped in one statement."""
        if record.max_downloads is None:
            return record.downloads + self.files.counter.add(record.id)
        with self.db.write_connection() as conn:
            downloads = count_download(conn, record.id, self.clock())
        if downloads is None:
            self.mark_gone(record.id)
            raise Gone()
        return downloads

    def mark_gone(self, file_id: int) -> None:
        """Used up: its link answers 410. The body stays for the resumptions of counted
        downloads (the server cannot tell whether a client got every byte it was sent) until
        the expiry job removes it."""
        with self.db.write() as session:
            FileRows(session).mark_gone(file_id, self.clock())

    # -- resumptions ----------------------------------------------------------------------

    def _resume_tag(self, record: StoredFile, download: int, start: int, end: int) -> str:
        """The ETag of the ``download``-th download, counted for bytes [start, end): for the
        resume window it lets that download, and no other, go on within that range."""
        until = int((self.clock() + self.resume_window).timestamp())
        claim = f"{record.uuid}.{download}.{start}.{end}.{until}"
        return f'"{claim}.{self.keys.sign(RESUME_PURPOSE, claim.encode())[:32]}"'

    def _counted_by(self, record: StoredFile, if_range: str | None) -> _Counted | None:
        """The counted download that a valid resume ETag names, else None."""
        parts = (if_range or "").strip('"').split(".")
        if len(parts) != 6 or parts[0] != record.uuid or not all(p.isdigit() for p in parts[1:5]):
            return None
        download, start, end, until = (int(part) for part in parts[1:5])
        if until < self.clock().timestamp() or max(download, start, end) > 1 << 62:
            return None
        if not self.keys.verify(RESUME_PURPOSE, ".".join(parts[:5]).encode(), parts[5], 32):
            return None
        return _Counted(download, start, end, datetime.fromtimestamp(until, UTC))

    def _resumption(
        self,
        record: StoredFile,
        asked: DownloadRequest,
        byte_range: ByteRange,
        granted: bool,
        counted: _Counted,
    ) -> DownloadPlan | None:
        """The rest of a counted download: not counted again, and served even after the
        download limit was reached, as long as the body is still there. None when the range
        asked leaves the counted one, or the download was resumed from further on already
        or too often: then the request is a download of its own."""
        if record.state == FileState.SPENT:
            raise Gone()
        if record.trashed_at is not None or (
            record.expires_at is not None and record.expires_at <= self.clock()
        ):
            raise NotFound()
        self.access.check_file(record, asked.actor, asked.password, granted, asked.file_pass)
        start, end = byte_range.resolve(record.size)
        if start < counted.start or end > counted.end:
            return None
        if not self.resumes.take(record.id, counted.download, start, counted.until):
            return None
        return DownloadPlan(record, start, end, partial=True, counted=False, final=False)

    # -- what links show --------------------------------------------------------------

    def stats(
        self, public_id: str, actor: Actor, password: str | None, file_pass: str | None = None
    ) -> StoredFile:
        """What the stats page shows, under the same rules as the download: a private or
        password-protected file tells nothing to whoever may not download it (or has no
        pass from its share page)."""
        record = self.files.lookup(public_id)
        if not is_live(record, self.clock()) or used_up(record):
            raise NotFound()
        self.access.check_file(record, actor, password, file_pass=file_pass)
        return record

    def shared(self, public_id: str, actor: Actor, file_pass: str | None) -> StoredFile:
        """What a file's share page shows, under the download's rules; a page that asks for
        the password (PasswordRequired) comes before anything about the file."""
        record = self.files.lookup(public_id)
        if not is_live(record, self.clock()) or used_up(record):
            raise NotFound()
        self.access.check_file(record, actor, None, file_pass=file_pass)
        return record

    def unlock(self, public_id: str, actor: Actor, password: str) -> tuple[StoredFile, str | None]:
        """The share page's password form: the file and a pass for it (core.access)."""
        record = self.files.lookup(public_id)
        if not is_live(record, self.clock()) or used_up(record):
            raise NotFound()
        return record, self.access.unlock_file(record, password, actor)

    def short_link(self, code: str) -> tuple[StoredFile, bool]:
        """The file of a short code, and whether its name may be shown in a redirect."""
        record = self.servable(self.files.by_short_code(code))
        return record, self.access.open_to_anyone(record)
