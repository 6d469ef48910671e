"""Uploads in progress, counted for the packages' ``concurrent_uploads``.

``UploadSlots`` is what the upload policy needs. ``DatabaseSlots`` keeps the slots as rows, so
every worker of a ``satchel serve`` (and every instance on the same database) counts the same
uploads; a slot whose process died on this machine frees itself, one of a process on another
machine counts until it expires (hours). ``RedisSlots`` (with ``SATCHEL_REDIS_URL``) keeps them
in Redis with a short expiry that the holder renews while its upload runs, so the slots of an
instance that died free themselves within ``ttl`` seconds wherever it ran.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import delete, select, text

from satchel.core.processes import is_gone, this_process
from satchel.db.engine import Database
from satchel.db.models import UploadSlot, utcnow
from satchel.errors import ServiceUnavailable, TooManyUploads

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger("satchel.slots")
RETRY_AFTER = 5


class UploadSlots(Protocol):
    def acquire(self, who: str, limit: int) -> str:
        """A slot for ``who`` (TooManyUploads when ``limit`` are taken); its id."""

    def release(self, slot: str) -> None: ...


class DatabaseSlots:
    def __init__(
        self, db: Database, lifetime: timedelta, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.lifetime = lifetime
        self.clock = clock

    def acquire(self, who: str, limit: int) -> str:
        now = self.clock()
        slot = secrets.token_hex(16)
        with self.db.write() as session:
            if not self.db.is_sqlite:
                # SQLite's BEGIN IMMEDIATE already serializes writers; PostgreSQL needs a lock,
                # or two uploads could both see a free slot and take it.
                session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:who))"), {"who": who})
            rows = session.execute(
                select(UploadSlot.id, UploadSlot.holder, UploadSlot.expires_at).where(
                    UploadSlot.who == who
                )
            ).all()
            stale = [row.id for row in rows if row.expires_at <= now or is_gone(row.holder)]
            if stale:
                session.execute(delete(UploadSlot).where(UploadSlot.id.in_(stale)))
            if len(rows) - len(stale) >= limit:
                raise TooManyUploads(RETRY_AFTER, f"Too many uploads at once (at most {limit})")
            session.add(
                UploadSlot(
                    id=slot,
                    who=who[:96],
                    holder=this_process(),
                    acquired_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return slot

    def release(self, slot: str) -> None:
        with self.db.write() as session:
            session.execute(delete(UploadSlot).where(UploadSlot.id == slot))


# One sorted set per ``who``: members are slot ids, scores the time (Redis's own clock, the
# same for every instance) until which each is held. Expired members are dropped before
# counting, and the whole check-and-take is one script, so two instances never both take
# the last free slot.
_ACQUIRE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
# Extends held slots (only those still there: an expired one is not brought back).
_RENEW = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', ms + tonumber(ARGV[1]), ARGV[i + 1])
  redis.call('PEXPIRE', key, tonumber(ARGV[1]))
end
return 1
"""


class RedisSlots:
    """Slots in Redis, held for ``ttl`` seconds and renewed every ``ttl / 3`` by a thread of
    this process while their uploads run."""

    def __init__(self, client: Redis, ttl: float = 30.0, prefix: str = "satchel:slots:") -> None:
        self.client = client
        self.ttl_ms = max(1, int(ttl * 1000))
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._held: dict[str, str] = {}  # slot id -> its key
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None

    def acquire(self, who: str, limit: int) -> str:
        slot = secrets.token_hex(16)
        key = self.prefix + who
        try:
            taken = self._acquire(keys=[key], args=[limit, self.ttl_ms, slot])
        except Exception as exc:  # redis.RedisError, OSError: the request cannot be admitted
            log.error("Redis refused a slot: %s", exc)
            raise ServiceUnavailable("Shared state is unavailable, try again shortly") from exc
        if not taken:
            raise TooManyUploads(RETRY_AFTER, f"Too many uploads at once (at most {limit})")
        with self._lock:
            self._held[slot] = key
            if self._renewer is None or not self._renewer.is_alive():
                self._renewer = threading.Thread(
                    target=self._renew_held, name="satchel-slots", daemon=True
                )
                self._renewer.start()
        return slot

    def release(self, slot: str) -> None:
        with self._lock:
            key = self._held.pop(slot, None)
        if key is None:
            return
        try:
            self.client.zrem(key, slot)
        except Exception as exc:  # it expires by itself within ttl
            log.warning("could not give back an upload slot: %s", exc)

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def _renew_held(self) -> None:
        """Runs while this process holds slots; ends when it holds none."""
        while True:
            time.sleep(self.ttl_ms / 3000)
            with self._lock:
                held = list(self._held.items())
                if not held:
                    self._renewer = None
                    return
            try:
                self._renew(
                    keys=[key for _, key in held], args=[self.ttl_ms, *(s for s, _ in held)]
                )
            except Exception as exc:  # tried again at the next beat, well within ttl
                log.warning("could not renew upload slots: %s", exc)
