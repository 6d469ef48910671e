"""Resumable uploads (tus 1.0.0): a file arrives over many requests, encrypted as it comes.

The size is known from the creation on, so every whole chunk of the at-rest format is sealed
the moment it is complete (``ChunkSealer``) and appended to a staged blob. Only the plaintext
after the last whole chunk, less than one chunk, waits for the next request: sealed under the
file's data key in the upload's row, never on disk bare. The last request seals the last
chunk, commits the staged blob and registers the file exactly as ``/upload`` would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select, update

from satchel.core.actors import Actor
from satchel.core.bundles import IngestedBlob, storage_error
from satchel.core.files import CreatedUpload, FileService
from satchel.core.ids import new_blob_key
from satchel.core.keyring import MasterKeys
from satchel.core.names import safe_content_type, safe_filename
from satchel.core.options import UploadOptions
from satchel.core.passwords import hash_password
from satchel.core.processes import is_gone, this_process
from satchel.core.uploads import UploadPolicy
from satchel.crypto.atrest import ChunkSealer, new_data_key
from satchel.db.engine import Database
from satchel.db.models import TusState, TusUpload, utcnow
from satchel.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    OffsetConflict,
    UploadLocked,
)
from satchel.storage.base import BlobStore, StagingWriter

PASSWORD_HASH = "_password_hash"  # noqa: S105 - a field name
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
# A request writing to an upload holds its lease while data arrives, renewing it every
# LEASE / 3; a lease whose process died on this machine is void at once (core.processes).
LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    @classmethod
    def parse(cls, header: str | None) -> Checksum | None:
        if not header:
            return None
        algorithm, _, encoded = header.strip().partition(" ")
        if algorithm.lower() not in CHECKSUMS:
            raise BadRequest(f"Unsupported checksum algorithm {algorithm!r}: use sha1 or sha256")
        try:
            digest = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            raise BadRequest("Upload-Checksum: the checksum is not base64") from None
        return cls(algorithm.lower(), digest)


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value may be absent)."""
    fields: dict[str, str] = {}
    for pair in (header or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        if not key or key in fields:
            raise BadRequest("Upload-Metadata: empty or repeated key")
        try:
            fields[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise BadRequest(f"Upload-Metadata: the value of {key!r} is not base64 UTF-8") from None
    return fields


STORED_METADATA = 8192  # the column's size: a longer header is stored with its name reduced


def _shortened(metadata_header: str) -> str:
    """The header with its file name reduced to a safe base name, as the file will be named."""
    pairs = []
    for pair in (p.strip() for p in metadata_header.split(",") if p.strip()):
        key, _, encoded = pair.partition(" ")
        if key in ("filename", "name") and encoded:
            name = safe_filename(base64.b64decode(encoded).decode(), fallback="file")
            pair = f"{key} {base64.b64encode(name.encode()).decode()}"
        pairs.append(pair)
    shortened = ",".join(pairs)
    if len(shortened) > STORED_METADATA:
        raise BadRequest("Upload-Metadata too long")
    return shortened


def _without(metadata_header: str, key: str) -> str:
    pairs = [p.strip() for p in metadata_header.split(",") if p.strip()]
    return ",".join(p for p in pairs if p.partition(" ")[0] != key)


def upload_fields(metadata: dict[str, str]) -> dict[str, str]:
    """tus clients name the file ``filename``/``filetype``; Satchel's options keep their
    /upload names."""
    fields = dict(metadata)
    fields.setdefault("filename", fields.get("name", ""))
    fields.setdefault("filetype", fields.get("type", fields.get("mimetype", "")))
    return fields


class TusService:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        keys: MasterKeys,
        files: FileService,
        uploads: UploadPolicy,
        max_expiry: int,
        expiry: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.store = store
        self.keys = keys
        self.files = files
        self.uploads = uploads
        self.max_expiry = max_expiry
        self.expiry = expiry
        self.clock = clock

    # -- creation and look-up -----------------------------------------------------------

    def create(self, length: int, metadata_header: str, actor: Actor) -> TusUpload:
        """An upload of ``length`` bytes, under the upload policy as ``/upload`` is. A password
        among the options is kept only as its hash: it leaves the stored fields and the
        metadata that HEAD echoes."""
        self.uploads.admit(actor, length)
        fields = upload_fields(parse_metadata(metadata_header))
        self.uploads.check_options(actor, UploadOptions.from_fields(fields, self.max_expiry))
        self.uploads.check_space(length)
        password = fields.pop("password", "")
        if password:
            fields[PASSWORD_HASH] = hash_password(password)
            metadata_header = _without(metadata_header, "password")
        if len(metadata_header) > STORED_METADATA:
            metadata_header = _shortened(metadata_header)
        data_key = new_data_key()
        now = self.clock()
        wrapped = self.keys.wrap(data_key)
        upload = TusUpload(
            id=secrets.token_urlsafe(24),
            owner_id=actor.user_id,
            uploader_ip=actor.ip,
            length=length,
            offset=0,
            metadata_header=metadata_header,
            options=fields,
            blob_key=new_blob_key(),
            wrapped_key=wrapped.token,
            wrapped_by=wrapped.key_id,
            prefix=os.urandom(4),
            tail=None,
            state=TusState.UPLOADING,
            created_at=now,
            updated_at=now,
            expires_at=now + self.expiry,
        )
        # The row first: a staged blob then always has a row that its sweep follows.
        with self.db.write() as session:
            session.add(upload)
        try:
            writer = self.store.open_staging(upload.blob_key, 0)
            try:
                writer.write(self._sealer(upload, data_key).header)
                writer.sync()
            finally:
                writer.close()
        except BaseException as exc:
            self.store.delete_staging(upload.blob_key)
            with self.db.write() as session:
                session.execute(delete(TusUpload).where(TusUpload.id == upload.id))
            if isinstance(exc, OSError):
                raise storage_error(exc) from exc
            raise
        return upload

    def get(self, upload_id: str, actor: Actor) -> TusUpload:
        with self.db.read() as session:
            upload = session.get(TusUpload, upload_id) if len(upload_id) <= 64 else None
        if upload is None or upload.expires_at <= self.clock():
            raise NotFound("Upload not found or expired")
        if upload.owner_id is not None and upload.owner_id != actor.user_id:
            raise Forbidden("This upload belongs to another user")
        if upload.state == TusState.COMMITTING and self._abandoned(upload):
            return self._recover(upload)
        return upload

    def _abandoned(self, upload: TusUpload) -> bool:
        held = upload.busy_until is not None and upload.busy_until > self.clock()
        return not held or is_gone(upload.busy_by)

    def terminate(self, upload_id: str, actor: Actor) -> None:
        upload = self.get(upload_id, actor)
        with self.db.write() as session:
            session.execute(delete(TusUpload).where(TusUpload.id == upload.id))
        if upload.state != TusState.COMPLETE:
            self.store.delete_staging(upload.blob_key)

    def result(self, upload_id: str, actor: Actor) -> CreatedUpload:
        """The finished upload's file and management token."""
        upload = self.get(upload_id, actor)
        if upload.state != TusState.COMPLETE or upload.result is None:
            raise Conflict("The upload is not finished yet")
        loaded: dict[str, Any] = json.loads(self.keys.unwrap(upload.result))
        record = self.files.get(upload.file_id) if upload.file_id is not None else None
        if record is None:
            raise Gone("The file of this upload is gone")
        return CreatedUpload(record, loaded["manage_token"])

    def sweep(self, orphan_grace: timedelta = timedelta(hours=1)) -> int:
        """Unfinished uploads past their expiry lose their data; finished ones their result;
        a staged blob without an upload (a crash between the two) goes after ``orphan_grace``."""
        now = self.clock()
        with self.db.read() as session:
            stale = list(session.scalars(select(TusUpload).where(TusUpload.expires_at <= now)))
        for upload in stale:
            with self.db.write() as session:
                session.execute(delete(TusUpload).where(TusUpload.id == upload.id))
            if upload.state != TusState.COMPLETE:
                self.store.delete_staging(upload.blob_key)
        return len(stale) + self._sweep_orphans(now - orphan_grace)

    def _sweep_orphans(self, cutoff: datetime) -> int:
        old = [key for key, stat in self.store.iter_staging() if stat.modified < cutoff]
        removed = 0
        for start in range(0, len(old), 500):
            batch = old[start : start + 500]
            with self.db.read() as session:
                known = set(
                    session.scalars(select(TusUpload.blob_key).where(TusUpload.blob_key.in_(batch)))
                )
            for key in batch:
                if key not in known:
                    self.store.delete_staging(key)
                    removed += 1
        return removed

    # -- appending ------------------------------------------------------------------------

    def begin(self, upload_id: str, offset: int, actor: Actor) -> TusAppend:
        """Takes the upload for one request at ``offset``: 409 when that is not its offset,
        423 while another live request is writing to it."""
        upload = self.get(upload_id, actor)
        if upload.state == TusState.COMPLETE:
            raise OffsetConflict("The upload is already complete")
        if upload.offset != offset:
            raise OffsetConflict(
                f"Upload-Offset {offset} does not match the upload's offset {upload.offset}: "
                "ask with HEAD and go on from there"
            )
        now = self.clock()
        held = upload.busy_until is not None and upload.busy_until > now
        if held and not is_gone(upload.busy_by):
            wait = int((upload.busy_until - now).total_seconds()) + 1  # type: ignore[operator]
            raise UploadLocked(wait)
        me = this_process()
        with self.db.write() as session:
            # Compare-and-set on what was read: of two requests only one takes it.
            taken = session.execute(
                update(TusUpload)
                .where(
                    TusUpload.id == upload.id,
                    TusUpload.offset == offset,
                    TusUpload.state == TusState.UPLOADING,
                    _same(TusUpload.busy_until, upload.busy_until),
                    _same(TusUpload.busy_by, upload.busy_by),
                )
                .values(busy_until=now + LEASE, busy_by=me)
            )
        if not getattr(taken, "rowcount", 0):
            raise UploadLocked(int(LEASE.total_seconds()))
        try:
            return TusAppend(self, upload, me)
        except BaseException:
            self._release(upload.id, me)
            raise

    def _sealer(self, upload: TusUpload, data_key: bytes) -> ChunkSealer:
        return ChunkSealer(data_key, upload.prefix, upload.length)

    def _register(self, upload: TusUpload, data_key: bytes, holder: str | None) -> CreatedUpload:
        """The committed blob becomes a file, exactly as ``/upload`` would make it."""
        fields = upload_fields(upload.options)
        options = UploadOptions.from_fields(fields, self.max_expiry)
        name = safe_filename(fields.get("filename", ""), fallback="file")
        blob = IngestedBlob(
            blob_key=upload.blob_key,
            data_key=data_key,
            size=upload.length,
            name=name,
            content_type=safe_content_type(fields.get("filetype") or None),
            file_count=1,
            file_names=[name],
        )
        actor = self.uploads.actor_of(upload.owner_id, upload.uploader_ip or "")
        ring = self.keys.for_wrapping()  # both tokens under one key: one wrapped_by
        [created] = self.uploads.register(actor, [blob], options)
        if upload.options.get(PASSWORD_HASH):
            created = self.files.set_password_hash(created, upload.options[PASSWORD_HASH])
        now = self.clock()
        self._set(
            upload.id,
            holder,
            busy_until=None,
            busy_by=None,
            offset=upload.length,
            tail=None,
            state=TusState.COMPLETE,
            file_id=created.file.id,
            updated_at=now,
            expires_at=now + self.expiry,
            wrapped_key=ring.wrap(data_key),
            wrapped_by=ring.primary_fingerprint,
            result=ring.wrap(json.dumps({"manage_token": created.manage_token}).encode()),
        )
        return created

    def _recover(self, upload: TusUpload) -> TusUpload:
        """An upload whose last request died while its file was being registered: done if
        the blob was committed, else back to uploading (its last request is sent again)."""
        try:
            self.store.stat(upload.blob_key)
        except FileNotFoundError:
            state = (
                TusState.UPLOADING if self.store.staging_size(upload.blob_key) else TusState.FAILED
            )
            self._set(upload.id, upload.busy_by, state=state, busy_until=None, busy_by=None)
        else:
            self._register(upload, self.keys.unwrap(upload.wrapped_key), upload.busy_by)
        with self.db.read() as session:
            fresh = session.get(TusUpload, upload.id)
        assert fresh is not None
        return fresh

    def _set(self, upload_id: str, holder: str | None, **values: Any) -> None:
        """Changes an upload that ``holder`` holds (or that nobody holds, for None)."""
        with self.db.write() as session:
            session.execute(
                update(TusUpload)
                .where(TusUpload.id == upload_id, _same(TusUpload.busy_by, holder))
                .values(**values)
            )

    def _release(self, upload_id: str, holder: str, **values: Any) -> None:
        with self.db.write() as session:
            session.execute(
                update(TusUpload)
                .where(TusUpload.id == upload_id, TusUpload.busy_by == holder)
                .values(busy_until=None, busy_by=None, **values)
            )

    def _renew(self, upload_id: str, holder: str) -> bool:
        """False when the lease was lost (it ran out and another request took it)."""
        with self.db.write() as session:
            result = session.execute(
                update(TusUpload)
                .where(TusUpload.id == upload_id, TusUpload.busy_by == holder)
                .values(busy_until=self.clock() + LEASE)
            )
        return bool(getattr(result, "rowcount", 0))


def _same(column: Any, value: object) -> Any:
    return column.is_(None) if value is None else column == value


def _seal_tail(data_key: bytes, upload_id: str, plain: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(data_key).encrypt(nonce, plain, b"satchel-tus-tail:" + upload_id.encode())


def _open_tail(data_key: bytes, upload_id: str, sealed: bytes | None) -> bytes:
    if not sealed:
        return b""
    try:
        return AESGCM(data_key).decrypt(
            sealed[:12], sealed[12:], b"satchel-tus-tail:" + upload_id.encode()
        )
    except InvalidTag:
        raise RuntimeError(f"the stored tail of upload {upload_id} does not decrypt") from None


class TusAppend:
    """One PATCH (or creation-with-upload) body, fed in batches from a worker thread."""

    def __init__(self, service: TusService, upload: TusUpload, holder: str) -> None:
        self.service = service
        self.upload = upload
        self.holder = holder
        self.data_key = service.keys.unwrap(upload.wrapped_key)
        self.sealer = service._sealer(upload, self.data_key)
        chunk = self.sealer.chunk_size
        self.start_offset = upload.offset
        self.index = upload.offset // chunk
        tail = _open_tail(self.data_key, upload.id, upload.tail)
        if len(tail) != upload.offset % chunk:
            raise RuntimeError(f"upload {upload.id}: tail and offset disagree")
        # One chunk's room, filled and sealed over and over (no allocation per chunk).
        self.held = bytearray(chunk)
        self.held[: len(tail)] = tail
        self.filled = len(tail)
        self.out = bytearray()
        self.start_size = self.sealer.sealed_offset(self.index)
        try:
            self.writer: StagingWriter | None = service.store.open_staging(
                upload.blob_key, self.start_size
            )
        except OSError as exc:
            raise storage_error(exc) from exc
        self.received = 0
        self.failed = False
        self.lost = False  # the lease ran out and another request took the upload
        self.checksum: Checksum | None = None
        self.hasher: Any = None
        self.last_renewal = service.clock()

    @property
    def offset(self) -> int:
        return self.start_offset + self.received

    def expect_checksum(self, checksum: Checksum | None) -> None:
        self.checksum = checksum
        self.hasher = CHECKSUMS[checksum.algorithm]() if checksum else None

    def feed_many(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.feed(piece)

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self.offset + len(data) > self.upload.length:
            raise BadRequest("The body goes past Upload-Length")
        self._keep_lease()
        try:
            self._absorb(data)
        except OSError as exc:
            raise storage_error(exc) from exc

    def _keep_lease(self) -> None:
        """Renewed while data comes; nothing is written once the lease is lost."""
        now = self.service.clock()
        if now - self.last_renewal < LEASE / 3:
            return
        if not self.service._renew(self.upload.id, self.holder):
            self.lost = True
            raise UploadLocked(1, "This request stalled and another one took over the upload")
        self.last_renewal = now

    def _absorb(self, data: bytes) -> None:
        if self.hasher is not None:
            self.hasher.update(data)
        self.received += len(data)
        size = self.sealer.chunk_size
        last = self.sealer.last_index
        view = memoryview(data).cast("B")
        while view:
            if self.filled == 0 and len(view) >= size and self.index < last:
                self._write_chunk(view[:size])  # sealed straight from the request's buffer
                view = view[size:]
                continue
            take = min(size - self.filled, len(view))
            self.held[self.filled : self.filled + take] = view[:take]
            self.filled += take
            view = view[take:]
            if self.filled == size and self.index < last:
                with memoryview(self.held) as held:
                    self._write_chunk(held)
                self.filled = 0

    def _write_chunk(self, chunk: memoryview) -> None:
        assert self.writer is not None
        sealed = self.sealer.seal_into(self.index, chunk, self.out)
        self.writer.write(sealed)
        sealed.release()
        self.index += 1

    def finish(self, complete_body: bool) -> CreatedUpload | None:
        """Keeps what arrived: all of it after a checked body; after a cut connection, what
        came (tus lets the client resume from there) unless a checksum was promised."""
        if self.checksum is not None:
            if not complete_body:
                self.rollback()
                return None
            if not hmac.compare_digest(self.hasher.digest(), self.checksum.digest):
                self.rollback()
                raise ChecksumMismatch()
        offset = self.offset
        try:
            if offset == self.upload.length:
                return self._complete()
            assert self.writer is not None
            self.writer.sync()
        except OSError as exc:
            raise storage_error(exc) from exc
        self.writer.close()
        self.writer = None
        tail = _seal_tail(self.data_key, self.upload.id, bytes(self.held[: self.filled]))
        self.service._release(
            self.upload.id,
            self.holder,
            offset=offset,
            tail=tail,
            updated_at=self.service.clock(),
            expires_at=self.service.clock() + self.service.expiry,
        )
        return None

    def _fail(self) -> None:
        """The finished file cannot be kept (quota, storage): the upload ends, and its data
        goes."""
        self.failed = True
        self.service.store.delete_staging(self.upload.blob_key)
        self.service._release(
            self.upload.id, self.holder, state=TusState.FAILED, expires_at=self.service.clock()
        )

    def rollback(self) -> None:
        """Nothing of this request is kept: the staged blob goes back to where it was
        (which also gives back the space of a write that filled the disk)."""
        if self.failed:
            return
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.lost:
            return  # the blob is another request's now
        writer = self.service.store.open_staging(self.upload.blob_key, self.start_size)
        writer.close()
        self.service._release(self.upload.id, self.holder)

    def _complete(self) -> CreatedUpload:
        assert self.writer is not None
        with memoryview(self.held) as held:
            self.writer.write(self.sealer.seal(self.index, held[: self.filled]))
        self.writer.close()
        self.writer = None
        service, upload = self.service, self.upload
        try:
            # Checked again now that the file is in: other uploads may have filled the quota.
            service.uploads.admit(service.uploads.actor_of(upload.owner_id, ""), upload.length)
        except BaseException:
            self._fail()
            raise
        # Marked first: a crash between the commit and the registration is finished later
        # (TusService.get), rather than leaving an upload whose staged blob is gone.
        service._set(upload.id, self.holder, state=TusState.COMMITTING)
        service.store.commit_staging(upload.blob_key)
        try:
            return service._register(upload, self.data_key, self.holder)
        except BaseException:
            service.store.delete(upload.blob_key)
            self._fail()
            raise
