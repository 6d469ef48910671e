"""A small JSON file of unfinished transfers, so that a re-run resumes where the last one
stopped. It may hold the key of an unfinished E2E upload: the file and its folder are private
to the user, and an entry goes away when its transfer completes."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class ResumeState:
    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._load().get(key)
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        entries = self._load()
        entries[key] = entry
        self._save(entries)

    def drop(self, key: str) -> None:
        entries = self._load()
        if entries.pop(key, None) is not None:
            self._save(entries)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or damaged: transfers start afresh, nothing worse
        return data if isinstance(data, dict) else {}

    def _save(self, entries: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(entries, out, indent=1, sort_keys=True)
            os.replace(temp, self.path)  # mkstemp made it 0600
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


class NoState(ResumeState):
    """Resuming turned off: nothing is remembered."""

    def __init__(self) -> None:
        super().__init__(Path(os.devnull))

    def get(self, key: str) -> dict[str, Any] | None:
        return None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        return None

    def drop(self, key: str) -> None:
        return None
