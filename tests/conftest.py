"""Shared fixtures: the metadata database on SQLite and (when configured) PostgreSQL,
an in-process app for API tests and a live `satchel serve` for real clients."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient
from tests.s3 import SeaweedFS

from satchel.config import Settings, load_settings
from satchel.db.engine import Database
from satchel.web.app import create_app

PG_URL = os.environ.get("SATCHEL_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
# SATCHEL_TEST_STORAGE=s3: the `settings` and `live_server` fixtures run on the scale-out
# engines: blobs in SeaweedFS, and (with SATCHEL_TEST_REDIS_URL) rate limits and upload slots
# in Redis (`make test-scale`).
TEST_STORAGE = os.environ.get("SATCHEL_TEST_STORAGE", "local")
TEST_REDIS_URL = os.environ.get("SATCHEL_TEST_REDIS_URL", "")
TABLES = (
    "files",
    "folders",
    "sessions",
    "invites",
    "job_leases",
    "api_keys",
    "v2_tokens",
    "download_tokens",
    "url_imports",
    "tus_uploads",
    "users",
    "key_ring",
    "failed_guesses",
    "upload_slots",
    "audit_log",
    "packages",
    "download_resumes",
)


POSTGRESQL_VARIANT = re.compile(r"\[(.+-)?postgresql(-.+)?\]$")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--leave-to-scale",
        default="",
        metavar="FILES",
        help="test files (space-separated) whose PostgreSQL variants `make test-scale` runs on "
        "PostgreSQL, Redis and S3 afterwards: they are left out of this run (`make test`)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    later = set(str(config.getoption("--leave-to-scale")).split())
    if not later:
        return
    left = [
        item
        for item in items
        if item.nodeid.split("::")[0] in later and POSTGRESQL_VARIANT.search(item.nodeid)
    ]
    if left:
        config.hook.pytest_deselected(items=left)
        gone = set(left)
        items[:] = [item for item in items if item not in gone]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "satchel.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()
    return path


class PgDatabases:
    """Private databases for this test run, migrated once, dropped at the end."""

    def __init__(self, base_url: str) -> None:
        self.base = make_url(base_url)
        self.admin = create_engine(self.base, isolation_level="AUTOCOMMIT")
        self.names: list[str] = []

    def create(self) -> str:
        name = f"satchel_test_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.names.append(name)
        url = self.base.set(database=name).render_as_string(hide_password=False)
        db = Database(url)
        db.migrate()
        db.dispose()
        return url

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    if not PG_URL:  # tests written for PostgreSQL alone; CI always has it
        if os.environ.get("CI"):
            pytest.fail("SATCHEL_TEST_DATABASE_URL must be set in CI")
        pytest.skip("SATCHEL_TEST_DATABASE_URL is not set")
    databases = PgDatabases(PG_URL)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def pg_database(pg_databases: PgDatabases) -> str:
    return pg_databases.create()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "satchel.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A real S3 server for the session; its credentials in the AWS variables meanwhile."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    saved = {name: os.environ.get(name) for name in server.env}
    os.environ.update(server.env)
    yield server
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server.stop()


@pytest.fixture(scope="session")
def s3_bucket(seaweedfs: SeaweedFS) -> str:
    return seaweedfs.make_bucket()


def s3_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """Overrides that put a test's blobs under a prefix of their own in the test bucket."""
    if TEST_STORAGE != "s3":
        return {}
    server: SeaweedFS = request.getfixturevalue("seaweedfs")
    bucket: str = request.getfixturevalue("s3_bucket")
    shared = {"redis_url": TEST_REDIS_URL} if TEST_REDIS_URL else {}
    return {
        "storage": f"s3:{bucket}/{uuid.uuid4().hex[:12]}",
        "s3_endpoint": server.endpoint,
        "s3_region": server.env["SATCHEL_S3_REGION"],
        **shared,
    }


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    data = tmp_path / "data"
    return load_settings(
        environ={},
        overrides={
            "data_dir": str(data),
            "database_url": database_url,
            "public_url": "http://testserver",
            "master_keys": [Fernet.generate_key().decode()],
            "rate_limits_enabled": False,
            **s3_settings(request),
        },
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, migrate=False, run_jobs=False)
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    def __init__(
        self,
        url: str,
        data_dir: Path,
        process: subprocess.Popen[bytes],
        log: Path,
        env: dict[str, str],
    ) -> None:
        self.url = url
        self.data_dir = data_dir
        self.process = process
        self.log = log
        self.env = env  # the server's settings: `satchel admin` run with them acts on it

    def admin(self, *args: str) -> str:
        """Runs `satchel admin …` against this server's data; its last line of output."""
        satchel = Path(sys.executable).with_name("satchel")
        result = subprocess.run(
            [str(satchel), "admin", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return result.stdout.strip().splitlines()[-1]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(tmp: Path, env_extra: dict[str, str]) -> LiveServer:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp / "data"
    env = {
        **os.environ,
        "SATCHEL_DATA_DIR": str(data),
        "SATCHEL_PUBLIC_URL": url,
        "SATCHEL_RATE_LIMITS_ENABLED": "false",
        **env_extra,
    }
    log = tmp / "server.log"
    satchel = Path(sys.executable).with_name("satchel")
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(satchel), "serve", "--host", "127.0.0.1", "--port", str(port), "--access-log"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(url, data, process, log, env)
    _wait_ready(server)
    return server


def _wait_ready(server: LiveServer) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited:\n{server.log_text()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server did not start:\n{server.log_text()}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session", params=BACKENDS)
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp(f"live-{request.param}")
    env = {}
    if request.param == "postgresql":
        env["SATCHEL_DATABASE_URL"] = request.getfixturevalue("pg_databases").create()
    if TEST_STORAGE == "s3":
        storage = {f"SATCHEL_{name.upper()}": value for name, value in s3_settings(request).items()}
        env.update({**request.getfixturevalue("seaweedfs").env, **storage})
    server = start_server(tmp, env)
    yield server
    stop_server(server)
