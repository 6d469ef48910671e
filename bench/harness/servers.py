"""The servers under test, each started on loopback in a fresh data folder and stopped by PID."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from harness.procfs import tree_pids

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
BENCH_ENV = BENCH / ".env"
HOST = "127.0.0.1"


class ServerUnavailable(RuntimeError):
    """The server cannot run here; the message says why and what to do."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Server(ABC):
    """One server process (and the workers it forks) in a data folder of its own."""

    name: ClassVar[str]
    family: ClassVar[str]  # the steps meant for one kind of server: "satchel" or "copyparty"

    def __init__(self, workdir: Path, log_path: Path, extra_env: dict[str, str] | None = None):
        self.extra_env = extra_env or {}  # settings a test needs on top of the defaults
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @abstractmethod
    def check(self) -> None:
        """Raise ServerUnavailable when the server is not installed or does not run."""

    @abstractmethod
    def argv(self) -> list[str]: ...

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    @abstractmethod
    def ready_url(self) -> str: ...

    @abstractmethod
    def upload_url(self) -> str: ...

    @abstractmethod
    def form(self) -> tuple[str, dict[str, str]]:
        """The multipart field of the file and the other fields of an upload."""

    @abstractmethod
    def download_url(self, upload_answer: str) -> str:
        """Where the file of an upload can be downloaded, from the server's answer to it."""

    @abstractmethod
    def delete(self, upload_answer: str) -> None:
        """Delete the file of an upload (not measured: the next test starts with a clean disk)."""

    @abstractmethod
    def version(self) -> str: ...

    def curl_form(self, path: Path) -> list[str]:
        """curl's arguments for one multipart upload of `path`."""
        file_field, fields = self.form()
        args = [arg for name, value in fields.items() for arg in ("-F", f"{name}={value}")]
        return [*args, "-F", f"{file_field}=@{path}", self.upload_url()]

    def start(self, timeout: float = 60) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv(),
                env={**self.env(), **self.extra_env},
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the harness, which stops the server
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerUnavailable(f"{self.name} exited on start-up:\n{self.log_tail()}")
            if _answers_200(self.ready_url()):
                return
            time.sleep(0.2)
        raise ServerUnavailable(
            f"{self.name}: {self.ready_url()} did not answer 200 in {timeout:.0f} s:\n"
            + self.log_tail()
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 15) -> None:
        """SIGTERM to the server, then SIGKILL to whatever is left of its process group."""
        if self.process is None:
            return
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                print(f"{self.name} did not stop in {grace:.0f} s: killing it", flush=True)
        # The group was created for this server alone (start_new_session), its id is the PID.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        tail = text.strip().splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in tail) or "    (empty log)"

    def process_count(self) -> int:
        return len(tree_pids(self.pid)) if self.alive() else 0


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return int(answer.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def _run_quietly(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


class Satchel(Server):
    name = "satchel"
    family = "satchel"

    def executable(self) -> Path:
        beside = Path(sys.executable).with_name("satchel")
        return beside if beside.exists() else ROOT / ".venv" / "bin" / "satchel"

    def check(self) -> None:
        exe = self.executable()
        if not exe.exists():
            raise ServerUnavailable(f"no {exe}: install Satchel first (make run or make test)")
        try:
            result = _run_quietly([str(exe), "serve", "--help"])
        except subprocess.TimeoutExpired as exc:
            raise ServerUnavailable("`satchel serve --help` did not answer in 60 s") from exc
        if result.returncode != 0:
            raise ServerUnavailable(
                f"`satchel serve` is not runnable yet (exit {result.returncode}): "
                + (result.stderr or result.stdout).strip()[-500:]
            )

    def argv(self) -> list[str]:
        return [str(self.executable()), "serve", "--host", HOST, "--port", str(self.port)]

    def env(self) -> dict[str, str]:
        # Nothing inherited: the defaults, apart from where the data goes and the rate limits,
        # which would only measure how fast one address gets throttled.
        env = {key: value for key, value in os.environ.items() if not key.startswith("SATCHEL_")}
        env["SATCHEL_DATA_DIR"] = str(self.data_dir)
        env["SATCHEL_PUBLIC_URL"] = self.base
        env["SATCHEL_RATE_LIMITS_ENABLED"] = "false"
        return env

    def ready_url(self) -> str:
        return self.base + "/healthz"

    def upload_url(self) -> str:
        return self.base + "/upload"

    def form(self) -> tuple[str, dict[str, str]]:
        return "files", {}

    def download_url(self, upload_answer: str) -> str:
        try:
            url = json.loads(upload_answer)["download_url"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"no download_url in Satchel's answer: {upload_answer[:300]!r}"
            ) from exc
        return str(url)

    def delete(self, upload_answer: str) -> None:
        url = str(json.loads(upload_answer)["delete_url"])
        request = urllib.request.Request(url, method="POST")
        with urllib.request.urlopen(request, timeout=120) as answer:
            if int(answer.status) != 200:
                raise ValueError(f"POST {url} answered {answer.status}")

    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("satchel")
        except PackageNotFoundError:
            return "unknown"


class Copyparty(Server):
    name = "copyparty"
    family = "copyparty"
    executable = BENCH_ENV / "bin" / "copyparty"

    def check(self) -> None:
        if not self.executable.exists():
            raise ServerUnavailable(f"no {self.executable}: run bench/setup.sh")

    def argv(self) -> list[str]:
        # Its defaults, apart from the volume: the data folder, anonymous read-write; -q only
        # stops the per-request log lines on stdout (Satchel logs no request by default either).
        volume = f"{self.data_dir}::rw"
        return [str(self.executable), "-i", HOST, "-p", str(self.port), "-v", volume, "-q"]

    def env(self) -> dict[str, str]:
        # Its config folder (salts, sessions) goes into the run's folder, not ~/.config.
        config = self.workdir / "config"
        config.mkdir(exist_ok=True)
        return {**os.environ, "XDG_CONFIG_HOME": str(config)}

    def ready_url(self) -> str:
        return self.base + "/"

    def upload_url(self) -> str:
        # want=url: a 201 answer with the URL of the stored file (a name taken gets a suffix),
        # instead of the HTML page of the browser form.
        return self.base + "/?want=url"

    def form(self) -> tuple[str, dict[str, str]]:
        return "f", {"act": "bput"}

    def download_url(self, upload_answer: str) -> str:
        url = upload_answer.strip().splitlines()[0] if upload_answer.strip() else ""
        if not url.startswith(self.base + "/"):
            raise ValueError(f"no file URL in copyparty's answer: {upload_answer[:300]!r}")
        return url

    def delete(self, upload_answer: str) -> None:
        # The volume is read-write only; without its database (-e2d, off by default) copyparty
        # keeps no record of the file, so removing it from the folder is all there is.
        name = urllib.parse.unquote(self.download_url(upload_answer).rsplit("/", 1)[1])
        (self.data_dir / name).unlink()

    def version(self) -> str:
        try:
            first = _run_quietly([str(self.executable), "--version"]).stdout.split("\n", 1)[0]
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        words = first.split()
        return words[1].lstrip("v") if len(words) > 1 else "unknown"


# Where SatchelS3PG creates (and at the end drops) the database of its run.
DEFAULT_ADMIN_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _seaweedfs() -> Any:
    """tests/s3.py: SeaweedFS (`weed mini`) on free loopback ports, as the test suite runs it."""
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from tests import s3

    return s3


def _first_line(exc: BaseException) -> str:
    """The driver's own message (SQLAlchemy wraps it in a paragraph of its own)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


class SatchelS3PG(Satchel):
    """Satchel's scale-out configuration: blobs in S3 (SeaweedFS on loopback), rows in PostgreSQL.

    Its start starts SeaweedFS with a new bucket and creates a new database; its stop stops
    both and drops the database. The server's figures (CPU, memory) are Satchel's process tree
    alone: SeaweedFS and PostgreSQL are not counted.
    """

    name = "satchel-s3pg"

    def __init__(self, workdir: Path, log_path: Path, extra_env: dict[str, str] | None = None):
        super().__init__(workdir, log_path, extra_env)
        self.admin_url = os.environ.get("SATCHEL_BENCH_DATABASE_URL", DEFAULT_ADMIN_DATABASE_URL)
        self.database = "satchel_bench_" + secrets.token_hex(5)
        self.bucket = "satchel-bench-" + secrets.token_hex(5)
        self.seaweedfs: Any = None
        self.database_created = False

    def check(self) -> None:
        super().check()
        try:
            self.weed = _seaweedfs().weed_binary()
        except (ImportError, RuntimeError) as exc:
            raise ServerUnavailable(f"no SeaweedFS: {exc} (a dev dependency: make test)") from exc
        try:
            self._admin(lambda conn: None)
        except Exception as exc:  # any failure to connect: the message is what to show
            raise ServerUnavailable(
                f"PostgreSQL at {self._shown(self.admin_url)} does not answer "
                f"({_first_line(exc)}); "
                "set SATCHEL_BENCH_DATABASE_URL to a server where a database can be created"
            ) from exc

    def database_url(self) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url).set(database=self.database)
        return url.render_as_string(hide_password=False)

    def settings(self) -> dict[str, str]:
        """The variables that put Satchel on S3 and PostgreSQL (with SeaweedFS's credentials)."""
        s3_env: dict[str, str] = self.seaweedfs.env if self.seaweedfs is not None else {}
        return {
            **s3_env,
            "SATCHEL_STORAGE": f"s3:{self.bucket}",
            "SATCHEL_DATABASE_URL": self.database_url(),
        }

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.settings()}

    def start(self, timeout: float = 60) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        s3 = _seaweedfs()
        self.seaweedfs = s3.SeaweedFS(self.workdir / "seaweedfs")
        try:
            self.seaweedfs.start()
            with contextlib.closing(self.seaweedfs.client()) as client:
                client.create_bucket(Bucket=self.bucket)
        except Exception as exc:  # weed did not start, or refused the bucket
            raise ServerUnavailable(f"SeaweedFS did not start: {exc}") from exc
        self._admin(lambda conn: conn.exec_driver_sql(f'CREATE DATABASE "{self.database}"'))
        self.database_created = True
        print(f"  SeaweedFS on {self.seaweedfs.endpoint}, database {self.database}", flush=True)
        super().start(timeout)

    def stop(self, grace: float = 15) -> None:
        try:
            super().stop(grace)
        finally:
            if self.seaweedfs is not None:
                self.seaweedfs.stop()
            if self.database_created:
                drop = f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'
                self._admin(lambda conn: conn.exec_driver_sql(drop))
                self.database_created = False

    def _admin(self, action: Any) -> None:
        from sqlalchemy import create_engine

        engine = create_engine(
            self.admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 10}
        )
        try:
            with engine.connect() as conn:
                action(conn)
        finally:
            engine.dispose()

    @staticmethod
    def _shown(url: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
