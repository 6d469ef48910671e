"""Two `satchel serve` instances behind nginx, as deployed: one PostgreSQL database (fresh for
this run), one Redis, one storage, nginx running deploy/nginx.conf with only the ports changed.
Each process runs in a session of its own (setsid) and is killed with its group at the end.

Skipped only when nginx is not installed and this is not CI; with CI=true a missing nginx fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from redis import Redis
from tests.conftest import PG_URL, PgDatabases, free_port
from tests.s3 import SeaweedFS

from satchel.config import load_settings
from satchel.core.accounts import AccountService, NewUser
from satchel.core.apikeys import ApiKeyService
from satchel.db.engine import Database
from satchel.services import guess_limiter

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SATCHEL = str(Path(sys.executable).with_name("satchel"))
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CLUSTER_PREFIX = "cluster"
REDIS_URL = os.environ.get("SATCHEL_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
IN_CI = os.environ.get("CI") == "true"

# The guest limits that the tests probe; everything else keeps the defaults.
GUEST_UPLOADS_PER_MINUTE = 4
PACKAGES = """
[satchel.packages.free]
concurrent_uploads = 1
max_upload_size = "3GiB"
"""


def require_nginx() -> None:
    if Path(NGINX).is_file() and os.access(NGINX, os.X_OK):
        return
    message = f"nginx is not installed ({NGINX}); apt-get install nginx"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


class Process:
    """A command in a session of its own, its output in ``log``."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv = argv
        self.env = env
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL to the whole group (granian's workers too): nothing gets to clean up."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        self.popen = None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Instance(Process):
    def __init__(self, name: str, env: dict[str, str], tmp: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [SATCHEL, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        data = tmp / f"data-{name}"  # what each machine keeps apart: nothing is shared here
        super().__init__(argv, {**env, "SATCHEL_DATA_DIR": str(data)}, tmp / f"{name}.log")

    def start(self) -> None:
        super().start()
        self.wait()

    def wait(self) -> None:
        wait_healthy(self.url + "/healthz", self, 30)


class Cluster:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "SATCHEL_PUBLIC_URL": self.url}  # links name nginx, not an instance
        self.a = Instance("a", self.env, tmp)
        self.b = Instance("b", self.env, tmp)
        self.nginx = Process(
            [NGINX, "-p", str(tmp / "nginx"), "-c", str(self.write_nginx_conf()), "-e", "stderr",
             "-g", "daemon off;"],
            dict(os.environ),
            tmp / "nginx.log",
        )  # fmt: skip

    @property
    def instances(self) -> list[Instance]:
        return [self.a, self.b]

    def write_nginx_conf(self) -> Path:
        """deploy/nginx.conf inside the smallest main configuration, its listen port and
        upstream servers replaced with this run's."""
        site = NGINX_CONF.read_text()
        site, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{self.port};", site)
        servers = iter([self.a.port, self.b.port])
        site, upstreams = re.subn(
            r"server 127\.0\.0\.1:800[12]", lambda _: f"server 127.0.0.1:{next(servers)}", site
        )
        assert (listens, upstreams) == (1, 2), "deploy/nginx.conf changed shape: fix the test"
        folder = self.tmp / "nginx"
        folder.mkdir()
        (folder / "satchel.conf").write_text(site)
        main = folder / "nginx.conf"
        main.write_text(
            f"pid {folder}/nginx.pid;\n"
            "error_log stderr warn;\n"
            "worker_processes 1;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            f"    access_log {folder}/access.log;\n"
            + "".join(
                f"    {kind}_temp_path {folder}/{kind};\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + f"    include {folder}/satchel.conf;\n"
            "}\n"
        )
        return main

    def start(self) -> Cluster:
        for instance in self.instances:  # both at once: each takes seconds to import
            Process.start(instance)
        for instance in self.instances:
            instance.wait()
        self.nginx.start()
        wait_healthy(self.url + "/healthz", self.nginx, 15)
        return self

    def stop(self) -> None:
        self.nginx.kill()
        for instance in self.instances:
            instance.kill()

    def api_key(self, name: str) -> dict[str, str]:
        """A new user on the shared database (as `satchel admin create-user` makes one, without
        the seconds a new process takes to start) and an API key of theirs."""
        settings = load_settings(environ=self.env)
        db = Database(settings.sqlalchemy_url)
        try:
            accounts = AccountService(
                db, settings.packages, settings.default_package, guess_limiter(settings, db)
            )
            user = accounts.create_user(NewUser(name, "password1"))
            permissions = dict.fromkeys(("read", "download", "write", "delete"), True)
            created = ApiKeyService(db).create(user, "multi", permissions, [])
        finally:
            db.dispose()
        return {"Authorization": f"Bearer {created.secret}"}

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.log_text()[-3000:]}" for p in [*self.instances, self.nginx]
        )


def wait_healthy(url: str, process: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.running():
            raise RuntimeError(f"{process.argv[0]} exited:\n{process.log_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer:\n{process.log_text()}")


def cluster_env(tmp: Path, database_url: str, s3: SeaweedFS) -> dict[str, str]:
    """The settings every instance shares: one PostgreSQL database, one Redis, one bucket."""
    (tmp / "packages.toml").write_text(PACKAGES)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SATCHEL_")}
    return {
        **inherited,
        **s3.env,
        "SATCHEL_STORAGE": f"s3:{s3.make_bucket()}/{CLUSTER_PREFIX}",
        "SATCHEL_DATABASE_URL": database_url,
        "SATCHEL_REDIS_URL": REDIS_URL,
        "SATCHEL_MASTER_KEYS": Fernet.generate_key().decode(),
        "SATCHEL_CONFIG": str(tmp / "packages.toml"),
        "SATCHEL_TRUSTED_PROXIES": "127.0.0.1/32",  # nginx, and nothing else
        "SATCHEL_RATE_LIMITS": f"upload={GUEST_UPLOADS_PER_MINUTE}/minute:1000/minute",
        "SATCHEL_JOB_INTERVAL": "2s",
        "SATCHEL_LOG_LEVEL": "info",
        "SATCHEL_MIN_FREE_SPACE": "0",
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, seaweedfs: SeaweedFS) -> Iterator[Cluster]:
    require_nginx()
    redis = Redis.from_url(REDIS_URL)
    try:
        redis.ping()
    finally:
        redis.close()
    databases = PgDatabases(PG_URL or DEFAULT_PG)
    tmp = tmp_path_factory.mktemp("multi")
    running = Cluster(tmp, cluster_env(tmp, databases.create(), seaweedfs))
    try:
        yield running.start()
    finally:
        running.stop()
        databases.drop_all()
