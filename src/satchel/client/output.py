"""What the commands print: short text for people, ``--json`` for scripts, progress bars on
a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from satchel.client.results import Listing, UploadResult

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

# Transfers smaller than this finish before a bar would be worth drawing.
BAR_THRESHOLD = 1 << 20


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def print_uploads(results: list[UploadResult]) -> None:
    for result in results:
        what = f"{result.files} files, zipped" if result.files > 1 else human_size(result.size)
        print(f"{result.name} ({what})")
        rows = [
            ("share", result.share_link),
            ("link", result.link),
            ("short", result.short_link),
            ("manage", result.manage_url),
            ("delete", result.delete_url),
            ("expires", result.expires_at or "never"),
            ("drive id", result.drive_file_id),
        ]
        for label, value in rows:
            if value is not None:
                print(f"  {label + ':':<9} {value}")
        if result.e2e:
            secret = "key after #" if "#k=" in result.link else "password"
            print(f"  end-to-end encrypted: the {secret} never reached the server")


def print_record(record: dict[str, Any]) -> None:
    for name, value in record.items():
        print(f"{name}: {'-' if value is None else value}")


def print_listing(listing: Listing, trash: bool = False) -> None:
    if listing.folder:
        print(f"in folder {listing.folder['id']} {listing.folder['name']}/")
    for folder in listing.folders:
        print(f"folder {folder['id']:>7}  {'':>10}  {folder['name']}/{_trashed(folder, trash)}")
    for file in listing.files:
        size = human_size(file.get("size"))
        print(f"file   {file['id']:>7}  {size:>10}  {file['name']}{_trashed(file, trash)}")
    if not listing.folders and not listing.files:
        print("(empty)")


def _trashed(item: dict[str, Any], trash: bool) -> str:
    return f"  (purged at {item.get('purge_at')})" if trash else ""


def print_keys(keys: list[dict[str, Any]]) -> None:
    for key in keys:
        granted = ",".join(n for n, on in key.get("permissions", {}).items() if on) or "none"
        ips = ",".join(key.get("allowed_ips") or []) or "any address"
        label = key.get("label") or "-"
        print(f"{key['id']:>5}  {key.get('hint', '')}…  {label}  [{granted}]  {ips}")
    if not keys:
        print("(no keys)")


class Bars:
    """One rich progress bar per transfer, on stderr; nothing when ``enabled`` is false."""

    def __init__(self, enabled: bool) -> None:
        self.progress: Progress | None = None
        if enabled:
            # rich is imported only when a bar is drawn: `satchel serve` loads this module too.
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
        self.tasks: dict[str, TaskID] = {}
        self.started = False

    def __enter__(self) -> Self:
        return self  # the display starts with the first bar: small transfers show none

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.progress and self.started:
            self.progress.stop()
            self.started = False

    def prompt(self, ask: Callable[[str], str | None], text: str) -> str | None:
        """Asks on the terminal with the bars stopped (they would redraw over the prompt)."""
        running = self.started
        if self.progress and running:
            self.progress.stop()
            self.started = False
        try:
            return ask(text)
        finally:
            if self.progress and running:
                self.progress.start()
                self.started = True

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if self.progress is None or (total is not None and total < BAR_THRESHOLD):
            return
        if not self.started:
            self.progress.start()
            self.started = True
        task = self.tasks.get(name)
        if task is None:
            task = self.tasks[name] = self.progress.add_task(name, total=total)
        self.progress.update(task, completed=done, total=total)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
