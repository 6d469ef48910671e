"""Master-key rotation and retirement on a live server; file bodies are never rewritten.

``rotate``: the new primary is recorded first, so every process wraps under it within
``FRESH_FOR`` seconds; then every data key wrapped by another key is re-wrapped, in passes,
until a pass finds none left (uploads that were wrapped by a process not yet caught up are
picked up by the next pass). ``retire`` only answers which keys can go: none while any data
key still depends on one of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select, update

from satchel.core.keyring import FRESH_FOR, recorded_primary, set_primary
from satchel.crypto.keys import KeyRing
from satchel.db.engine import Database
from satchel.db.models import StoredFile, TusUpload
from satchel.errors import DatabaseUnavailable

BATCH = 500
MAX_PASSES = 20
# A batch that loses a deadlock to a request (PostgreSQL then aborts one of the two) or meets a
# moment of unavailability is written again: each update only applies to the key it read.
BATCH_ATTEMPTS = 5

# One row's update: its conditions and its new values.
Change = tuple[tuple[ColumnElement[bool], ...], dict[str, object]]
# Long enough for every process to have checked the ring once after the new primary was named.
SETTLE = 2 * FRESH_FOR + 0.5


class RetireRefused(Exception):
    def __init__(self, remaining: int) -> None:
        super().__init__(
            f"{remaining} data key(s) are still wrapped by keys other than the primary: "
            "run `satchel admin rotate-keys` first"
        )
        self.remaining = remaining


@dataclass(frozen=True)
class Rotation:
    primary: str
    rewrapped: int


def rotate(db: Database, keys: KeyRing, settle: float = SETTLE) -> Rotation:
    """Makes ``keys``' primary the one that wraps from now on, and re-wraps every data key."""
    primary = keys.primary_fingerprint
    set_primary(db, primary)
    time.sleep(settle)
    total = 0
    for _pass in range(MAX_PASSES):
        done = _rewrap_files(db, keys) + _rewrap_tus(db, keys)
        total += done
        if done == 0:
            return Rotation(primary, total)
    raise RuntimeError(
        "data keys kept appearing under an old key: is a server without the new key running?"
    )


def remaining(db: Database) -> int:
    """Data keys not (known to be) wrapped by the recorded primary."""
    primary = recorded_primary(db)
    with db.read() as session:
        files = session.scalar(
            select(func.count(StoredFile.id)).where(_not_wrapped_by(StoredFile, primary))
        )
        uploads = session.scalar(
            select(func.count(TusUpload.id)).where(_not_wrapped_by(TusUpload, primary))
        )
    return int(files or 0) + int(uploads or 0)


def retirable(db: Database, keys: KeyRing) -> list[str]:
    """The fingerprints that may leave the key ring now: all but the primary, once no data
    key depends on them."""
    left = remaining(db)
    if left:
        raise RetireRefused(left)
    primary = recorded_primary(db) or keys.primary_fingerprint
    return [key_id for key_id in keys.fingerprints if key_id != primary]


def _not_wrapped_by(
    model: type[StoredFile] | type[TusUpload], primary: str | None
) -> ColumnElement[bool]:
    if primary is None:
        return model.id.is_not(None)
    return or_(model.wrapped_by.is_(None), model.wrapped_by != primary)


def _rewrap_files(db: Database, keys: KeyRing) -> int:
    primary, done, last_id = keys.primary_fingerprint, 0, 0
    while True:
        with db.read() as session:
            rows = session.execute(
                select(StoredFile.id, StoredFile.wrapped_key)
                .where(StoredFile.id > last_id, _not_wrapped_by(StoredFile, primary))
                .order_by(StoredFile.id)
                .limit(BATCH)
            ).all()
        changes: list[Change] = [
            (
                (StoredFile.id == file_id, StoredFile.wrapped_key == wrapped),
                {"wrapped_key": keys.rewrap(wrapped), "wrapped_by": primary},
            )
            for file_id, wrapped in rows
        ]
        _write_batch(db, StoredFile, changes)
        done += len(rows)
        if len(rows) < BATCH:
            return done
        last_id = rows[-1][0]


def _rewrap_tus(db: Database, keys: KeyRing) -> int:
    """Uploads in progress hold a wrapped data key too, and finished ones a sealed result."""
    primary = keys.primary_fingerprint
    with db.read() as session:
        rows = session.execute(
            select(TusUpload.id, TusUpload.wrapped_key, TusUpload.result)
            .where(_not_wrapped_by(TusUpload, primary))
            .order_by(TusUpload.id)
        ).all()
    changes: list[Change] = []
    for upload_id, wrapped, result in rows:
        values: dict[str, object] = {"wrapped_key": keys.rewrap(wrapped), "wrapped_by": primary}
        if result is not None:
            values["result"] = keys.rewrap(result)
        changes.append(((TusUpload.id == upload_id, TusUpload.wrapped_key == wrapped), values))
    _write_batch(db, TusUpload, changes)
    return len(rows)


def _write_batch(
    db: Database, model: type[StoredFile] | type[TusUpload], changes: list[Change]
) -> None:
    """One transaction for the batch, in the order of the rows' ids (as every multi-row
    writer takes its locks), tried again after a lost deadlock."""
    for attempt in range(1, BATCH_ATTEMPTS + 1):
        try:
            with db.write() as session:
                for where, values in changes:
                    session.execute(update(model).where(*where).values(**values))
            return
        except DatabaseUnavailable:
            if attempt == BATCH_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)
