"""The master keys as every process sees them.

The keys come from their source (the key file, or the ``master_keys`` setting); which of them
wraps new data keys (the primary) is recorded in the database with a version number. A
rotation run by one process bumps that version, and every worker of every instance picks up
the new ring at its next wrap (it checks at most every ``FRESH_FOR`` seconds) or at the first
data key it cannot open. A process never wraps with a key the database does not name: if it
lacks the primary, new uploads fail (``KeyUnavailable``) instead of being wrapped under a key
that is about to be retired.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from satchel.crypto.keys import KeyRing, KeyUnwrapError
from satchel.db.engine import Database
from satchel.db.models import KeyRingState, utcnow
from satchel.errors import KeysUnavailable

log = logging.getLogger("satchel.keys")

FRESH_FOR = 1.0  # seconds a process wraps with its view of the ring before checking again
RING_ID = 1
# Reloading on a failed unwrap is cheap, but a row that no key opens must not make every
# request read the key source again.
RELOAD_AT_MOST_EVERY = 0.2


@dataclass(frozen=True)
class WrappedKey:
    token: bytes
    key_id: str  # fingerprint of the master key that wrapped it


class MasterKeys:
    def __init__(
        self,
        db: Database,
        load: Callable[[], list[str]],
        fresh_for: float = FRESH_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self._load = load
        self._fresh_for = fresh_for
        self._clock = clock
        self._lock = threading.Lock()
        self._ring: KeyRing | None = None  # every key; primary as the database says when known
        self._primary: str | None = None  # the database's primary, None until first read
        self._version = -1
        self._checked = float("-inf")

    # -- what the services use ----------------------------------------------------------

    def wrap(self, data_key: bytes) -> WrappedKey:
        ring = self.for_wrapping()
        return WrappedKey(ring.wrap(data_key), ring.primary_fingerprint)

    def for_wrapping(self) -> KeyRing:
        """The ring whose primary is the database's, fresh within ``FRESH_FOR`` seconds."""
        with self._lock:
            if self._clock() - self._checked >= self._fresh_for or self._ring is None:
                self._refresh()
            return self._wrapping_ring()

    def unwrap(self, token: bytes) -> bytes:
        ring = self._ring
        if ring is None:
            with self._lock:
                self._refresh()
                ring = self._ring
            assert ring is not None
        try:
            return ring.unwrap(token)
        except KeyUnwrapError:
            pass
        # Maybe re-wrapped by a rotation under a key this process has not loaded yet.
        try:
            return self._reloaded().unwrap(token)
        except KeyUnwrapError:
            log.error("no master key of this server opens a stored data key")
            raise KeysUnavailable("No master key of this server opens this data key") from None

    def sign(self, purpose: bytes, message: bytes) -> str:
        ring = self.for_wrapping()
        key = ring.derived(ring.primary_fingerprint, purpose)
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def verify(self, purpose: bytes, message: bytes, mac: str, length: int = 64) -> bool:
        """Whether ``mac`` is (the first ``length`` hex digits of) ``sign(purpose, message)``
        under any key of the ring. ``mac`` comes from a client: any characters at all (as
        bytes, which compare_digest takes whatever they are)."""
        ring = self._ring or self.for_wrapping()
        given = mac.encode(errors="replace")
        found = False
        for key_id in ring.fingerprints:
            expected = hmac.new(ring.derived(key_id, purpose), message, hashlib.sha256)
            found |= hmac.compare_digest(expected.hexdigest()[:length].encode(), given)
        return found

    # -- loading --------------------------------------------------------------------------

    def _reloaded(self) -> KeyRing:
        with self._lock:
            if self._clock() - self._checked >= RELOAD_AT_MOST_EVERY:
                self._version = -1  # read the key source again whatever the version says
                self._refresh()
            assert self._ring is not None
            return self._ring

    def _refresh(self) -> None:
        version, primary = self._read_state()
        if version != self._version or self._ring is None:
            keys = self._load()
            ring = KeyRing(keys)
            if primary is None:
                version, primary = self._record_first(ring.primary_fingerprint)
            self._ring = ring.with_primary(primary) if primary in ring.fingerprints else ring
            self._version = version
        self._primary = primary
        self._checked = self._clock()

    def _wrapping_ring(self) -> KeyRing:
        assert self._ring is not None
        assert self._primary is not None
        if self._ring.primary_fingerprint != self._primary:
            log.error(
                "the primary master key (%s) is not among this server's keys: add it to the "
                "key file or SATCHEL_MASTER_KEYS",
                self._primary,
            )
            raise KeysUnavailable()
        return self._ring

    def _read_state(self) -> tuple[int, str | None]:
        with self.db.connect() as conn:
            row = conn.execute(
                select(KeyRingState.version, KeyRingState.primary_key_id).where(
                    KeyRingState.id == RING_ID
                )
            ).first()
        return (0, None) if row is None else (int(row[0]), str(row[1]))

    def _record_first(self, key_id: str) -> tuple[int, str]:
        """The first process to start names its first key the primary."""
        try:
            with self.db.write() as session:
                session.add(
                    KeyRingState(id=RING_ID, version=1, primary_key_id=key_id, updated_at=utcnow())
                )
        except IntegrityError:
            pass  # another process was first
        version, primary = self._read_state()
        assert primary is not None
        return version, primary


def set_primary(db: Database, key_id: str) -> int:
    """Names ``key_id`` the primary; returns the ring's new version."""
    with db.write() as session:
        state = session.get(KeyRingState, RING_ID)
        if state is None:
            session.add(
                KeyRingState(id=RING_ID, version=1, primary_key_id=key_id, updated_at=utcnow())
            )
            return 1
        session.execute(
            update(KeyRingState)
            .where(KeyRingState.id == RING_ID)
            .values(version=state.version + 1, primary_key_id=key_id, updated_at=utcnow())
        )
        return state.version + 1


def recorded_primary(db: Database) -> str | None:
    with db.read() as session:
        state = session.get(KeyRingState, RING_ID)
    return None if state is None else state.primary_key_id


def bump_version(db: Database) -> None:
    """Every process reads its key source again (after keys were removed from it)."""
    with db.write() as session:
        session.execute(
            update(KeyRingState)
            .where(KeyRingState.id == RING_ID)
            .values(version=KeyRingState.version + 1, updated_at=utcnow())
        )
