"""`make bench-drive`: /apiv1 listing and search latency over a folder of 10,000 files.

Starts `satchel serve` on 127.0.0.1 with a fresh data folder (SQLite by default, or the
database given with --database-url), fills one user's drive folder with N file rows, then
times each request from a client on the same machine: the first page, every page of a walk
through the folder with cursors, and searches with few, many and no hits. Prints p50/p99 per
operation and writes them to bench/results/drive-<UTC time>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, insert, select

from harness.servers import BENCH, Satchel
from satchel.db.models import Folder, StoredFile, User

RESULTS = BENCH / "results"
KINDS = ("IMG_{:05}.jpg", "report-{}.pdf", "notes {}.txt", "backup_{}.tar.gz", "100%_{}.csv")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="/apiv1 listing and search over a big folder")
    parser.add_argument("--files", type=int, default=10_000, help="files in the folder")
    parser.add_argument("--rounds", type=int, default=5, help="walks through the whole folder")
    parser.add_argument("--database-url", default="", help="SQLAlchemy URL (default: SQLite)")
    return parser.parse_args(argv)


def admin(server: Satchel, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(server.executable()), "admin", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip().splitlines()[-1]


def fill(database_url: str, username: str, count: int) -> int:
    """One folder with ``count`` file rows (metadata only: listing never reads a body)."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        owner = conn.execute(select(User.id).where(User.username == username)).scalar_one()
        folder = conn.execute(
            insert(Folder).returning(Folder.id),
            {"owner_id": owner, "parent_id": None, "name": "big", "created_at": datetime.now(UTC)},
        ).scalar_one()
        now = datetime.now(UTC)
        rows = [
            {
                "uuid": f"00000000-0000-4000-8000-{index:012}",
                "short_code": None,
                "manage_token_hash": secrets.token_hex(32),
                "name": KINDS[index % len(KINDS)].format(index),
                "content_type": "application/octet-stream",
                "size": 1000 + index,
                "blob_key": secrets.token_urlsafe(24),
                "wrapped_key": b"-",
                "is_public": False,
                "is_e2e": False,
                "is_temp": False,
                "owner_id": owner,
                "folder_id": folder,
                "created_at": now,
                "downloads": 0,
                "state": "ready",
            }
            for index in range(count)
        ]
        for start in range(0, len(rows), 1000):
            conn.execute(insert(StoredFile), rows[start : start + 1000])
    engine.dispose()
    return int(folder)


def timed(call: Callable[[], httpx.Response]) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - start) * 1000
    response.raise_for_status()
    return elapsed, response


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(p99, 2),
    }


def measure(client: httpx.Client, folder: int, files: int, rounds: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {
        "first page (100)": [],
        "next pages (100, cursor)": [],
        "page of 1000": [],
        "search, 2 hits": [],
        "search, 20% hit (first 100)": [],
        "search, literal %_ (first 100)": [],
        "search, no hit": [],
    }
    for _round in range(rounds):
        cursor: str | None = None
        seen = 0
        while True:
            params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            elapsed, response = timed(
                lambda p=params: client.get(f"/apiv1/files/{folder}", params=p)
            )
            page = response.json()
            samples["next pages (100, cursor)" if cursor else "first page (100)"].append(elapsed)
            seen += len(page["files"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        if seen != files:
            raise SystemExit(f"walked {seen} files, expected {files}")
        samples["page of 1000"].append(
            timed(lambda: client.get(f"/apiv1/files/{folder}", params={"limit": "1000"}))[0]
        )
        for label, query in (
            ("search, 2 hits", "IMG_0004"),
            ("search, 20% hit (first 100)", "report-"),
            ("search, literal %_ (first 100)", "%_"),
            ("search, no hit", "zzz-nothing"),
        ):
            for _ in range(20):
                samples[label].append(
                    timed(lambda q=query: client.get("/apiv1/search", params={"q": q}))[0]
                )
    return {label: percentiles(values) for label, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(
        tempfile.mkdtemp(prefix="drive-", dir=BENCH / "work" if (BENCH / "work").exists() else None)
    )
    server = Satchel(work, work / "server.log")
    env = {**server.env()}
    database_url = args.database_url or f"sqlite:///{server.data_dir / 'satchel.db'}"
    env["SATCHEL_DATABASE_URL"] = database_url
    server.extra_env = {"SATCHEL_DATABASE_URL": database_url}
    server.data_dir.mkdir(parents=True, exist_ok=True)
    admin(server, env, "migrate")
    username = f"bench{secrets.token_hex(3)}"
    admin(server, env, "create-user", username, "--password", secrets.token_urlsafe(12))
    key = admin(server, env, "create-api-key", username, "--permissions", "read")
    started = time.perf_counter()
    folder = fill(database_url, username, args.files)
    print(f"filled {args.files} rows in {time.perf_counter() - started:.1f} s")
    server.start()
    try:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=60) as client:
            results = measure(client, folder, args.files, args.rounds)
    finally:
        server.stop()
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    print(f"\n/apiv1 over {args.files} files in one folder ({backend}), milliseconds")
    print(f"{'operation':34} {'n':>5} {'p50':>8} {'p99':>8}")
    for label, figures in results.items():
        print(f"{label:34} {figures['count']:>5} {figures['p50_ms']:>8} {figures['p99_ms']:>8}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"drive-{backend}-{stamp}.json"
    out.write_text(
        json.dumps(
            {"files": args.files, "backend": backend, "cpus": os.cpu_count(), "results": results},
            indent=2,
        )
    )
    print(f"\nwritten to {out.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
