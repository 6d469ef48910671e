"""Master-key rotation: re-wrap every data key under the primary key; bodies stay as they are."""

from __future__ import annotations

from sqlalchemy import select, update

from satchel.crypto.keys import KeyRing
from satchel.db.engine import Database
from satchel.db.models import StoredFile, TusUpload

BATCH = 500


def rewrap_all(db: Database, keys: KeyRing) -> int:
    done, last_id = 0, 0
    while True:
        with db.write() as session:
            rows = session.execute(
                select(StoredFile.id, StoredFile.wrapped_key)
                .where(StoredFile.id > last_id)
                .order_by(StoredFile.id)
                .limit(BATCH)
            ).all()
            for file_id, wrapped in rows:
                session.execute(
                    update(StoredFile)
                    .where(StoredFile.id == file_id)
                    .values(wrapped_key=keys.rewrap(wrapped))
                )
        done += len(rows)
        if len(rows) < BATCH:
            return done + _rewrap_tus(db, keys)
        last_id = rows[-1][0]


def _rewrap_tus(db: Database, keys: KeyRing) -> int:
    """Uploads in progress hold a wrapped data key too, and finished ones a sealed result."""
    with db.write() as session:
        rows = session.execute(select(TusUpload.id, TusUpload.wrapped_key, TusUpload.result)).all()
        for upload_id, wrapped, result in rows:
            values = {"wrapped_key": keys.rewrap(wrapped)}
            if result is not None:
                values["result"] = keys.rewrap(result)
            session.execute(update(TusUpload).where(TusUpload.id == upload_id).values(**values))
    return len(rows)
