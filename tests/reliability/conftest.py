"""Fault tests against real `satchel serve` processes, on SQLite and (when configured)
PostgreSQL: every server started here is killed with its whole process group at the end."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import BACKENDS, PG_URL
from tests.reliability.harness import Server

StartServer = Callable[..., Server]

# Tests of PostgreSQL's own failures: without a PostgreSQL to test with there are none to run.
collect_ignore = [] if PG_URL else ["test_database_outage.py"]


@pytest.fixture(params=BACKENDS)
def database_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The server's database: SQLite in its data folder, or a private PostgreSQL database."""
    if request.param == "sqlite":
        return {}
    return {"SATCHEL_DATABASE_URL": request.getfixturevalue("pg_databases").create()}


@pytest.fixture
def start_server(tmp_path: Path, database_env: dict[str, str]) -> Iterator[StartServer]:
    """``start_server(workers=1, **env)`` starts a server; all of them are stopped afterwards,
    even when the test fails."""
    servers: list[Server] = []

    def start(workers: int = 1, **env: str) -> Server:
        folder = tmp_path / f"server{len(servers)}"
        folder.mkdir()
        server = Server(folder, {**database_env, **env}, workers=workers)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.kill()
        server.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def two_worker_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server with two workers for the tests of a module that leave each other alone."""
    env = {}
    if request.param == "postgresql":
        env["SATCHEL_DATABASE_URL"] = request.getfixturevalue("pg_databases").create()
    server = Server(tmp_path_factory.mktemp("two-workers"), env, workers=2)
    try:
        yield server.start()
    finally:
        server.kill()
        server.dispose()


MountDisk = Callable[[int], Path]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[MountDisk]:
    """``small_disk(mib)`` mounts a tmpfs of that size; each is unmounted at the end (ask for
    this fixture before ``start_server``, so that the servers using it are gone by then)."""
    mounts: list[Path] = []

    def mount(mib: int) -> Path:
        point = tmp_path / f"disk{len(mounts)}"
        point.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0700", "tmpfs", str(point)],
            check=True,
            timeout=30,
        )
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        unmount(point)


def unmount(point: Path) -> None:
    for _attempt in range(20):
        if subprocess.run(["umount", str(point)], capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.1)  # still busy: a process that had files open there is ending
    subprocess.run(["umount", "-l", str(point)], check=True, timeout=30)
