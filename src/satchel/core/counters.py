"""Download counts of files without a download limit, added up in memory and written in batches.

A file with a limit is counted by one atomic UPDATE per download (the limit must hold across
requests and instances). Without a limit nothing depends on the exact figure at once, and a
write per download would make SQLite's single writer the ceiling of download throughput.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from satchel.db.engine import Database
from satchel.db.repositories.files import add_downloads


class DownloadCounter:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock
        self._pending: Counter[int] = Counter()
        self._lock = threading.Lock()

    def add(self, file_id: int) -> int:
        with self._lock:
            self._pending[file_id] += 1
            return self._pending[file_id]

    def pending(self, file_id: int) -> int:
        with self._lock:
            return self._pending.get(file_id, 0)

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, Counter()
        if not batch:
            return 0
        try:
            with self.db.write_connection() as conn:
                add_downloads(conn, dict(batch), self.clock())
        except Exception:
            with self._lock:
                self._pending.update(batch)  # keep them for the next flush
            raise
        return len(batch)
