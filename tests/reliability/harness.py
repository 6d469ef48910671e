"""A real `satchel serve` to break: its own process group (killed whole with SIGKILL), restarted
on the same data folder and port, swept with `satchel admin run-jobs`, inspected on disk and in
its database."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

SATCHEL = str(Path(sys.executable).with_name("satchel"))
CHUNK = 1 << 20  # plaintext bytes per at-rest chunk (docs/storage-format.md)
SEALED_CHUNK = CHUNK + 16
HEADER = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.005) -> Any:
    """Polls ``condition()`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"harness: timed out after {timeout} s waiting for {what}")


def group_members(pgid: int) -> list[int]:
    """The running processes of a process group (zombies left to an init that does not reap
    them count as gone)."""
    members = []
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # ended meanwhile
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


class Server:
    """``satchel serve`` with ``env`` (the settings), in a process group of its own."""

    def __init__(self, tmp: Path, env: dict[str, str], workers: int = 1) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = tmp / "data"
        self.workers = workers
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("SATCHEL_")}
        self.env = {
            **inherited,
            "SATCHEL_DATA_DIR": str(self.data),
            "SATCHEL_PUBLIC_URL": self.url,
            "SATCHEL_RATE_LIMITS_ENABLED": "false",
            "SATCHEL_LOG_LEVEL": "warning",
            **env,
        }
        storage = self.env.get("SATCHEL_STORAGE", "local")
        self.store = Path(storage.split(":", 1)[1]) if ":" in storage else self.data / "store"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._engine: Any = None

    # -- life cycle -----------------------------------------------------------------------

    @property
    def log(self) -> Path:
        return self.tmp / f"server-{self.starts}.log"

    def start(self) -> Server:
        """Starts (or starts again, on the same port and data) and waits for /healthz."""
        assert self.process is None, "harness: already running"
        for _attempt in range(5):
            self.starts += 1
            with self.log.open("wb") as log:
                self.process = subprocess.Popen(
                    [SATCHEL, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                     "--workers", str(self.workers)],
                    env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            if self._wait_healthy():
                return self
            self._reap()  # most likely the port was still held: try again
            time.sleep(0.5)
        raise RuntimeError(f"harness: the server did not start:\n{self.log_text()}")

    def _wait_healthy(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self._all_workers_up()
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        return False

    def _all_workers_up(self) -> bool:
        """With several workers, /healthz answers as soon as one is up: wait for each."""
        assert self.process is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if len(group_members(self.process.pid)) >= self.workers + 1:
                if self.workers > 1:
                    time.sleep(0.3)  # the other workers' apps finish starting
                return True
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        """SIGKILL to every process of the server: no clean-up of any kind runs."""
        self._signal_group(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        if self.process is None:
            return
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.kill()

    def restart(self) -> Server:
        self.kill()
        return self.start()

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def _reap(self) -> None:
        if self.process is None:
            return
        pgid = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.process.wait(timeout=10)
        wait_for(lambda: not group_members(pgid), 10, "the server's processes to end")
        self.process = None

    def log_text(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-4000:]
            for path in sorted(self.tmp.glob("server-*.log"))
        )

    # -- the CLI on the same data -----------------------------------------------------------

    def admin(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SATCHEL, "admin", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def sweep(self) -> str:
        """Every background job at once, orphans and stale temp files without grace."""
        done = self.admin("run-jobs", SATCHEL_ORPHAN_GRACE="0s", SATCHEL_TEMP_MAX_AGE="0s")
        assert done.returncode == 0, f"harness: run-jobs failed:\n{done.stdout}{done.stderr}"
        return done.stdout

    # -- the data folder and the database -------------------------------------------------------

    def database_url(self) -> str:
        url = self.env.get("SATCHEL_DATABASE_URL", "")
        return url or f"sqlite:///{self.data / 'satchel.db'}"

    def query(self, sql: str, **params: Any) -> list[Any]:
        if self._engine is None:
            self._engine = create_engine(self.database_url())
        with self._engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def blobs(self) -> dict[str, int]:
        """Committed blobs on disk: key → size."""
        found = {}
        for path in (self.store / "blobs").glob("*/*/*"):
            found[path.name] = path.stat().st_size
        return found

    def temp_files(self) -> list[Path]:
        return sorted((self.store / "tmp").iterdir())

    def staged(self) -> dict[str, int]:
        return {p.name: p.stat().st_size for p in (self.store / "staging").iterdir()}


@dataclass(frozen=True)
class FileRow:
    id: int
    uuid: str
    name: str
    size: int
    blob_key: str
    state: str


def file_rows(server: Server) -> list[FileRow]:
    rows = server.query("SELECT id, uuid, name, size, blob_key, state FROM files ORDER BY id")
    return [FileRow(*row) for row in rows]


def tus_rows(server: Server) -> dict[str, tuple[str, int, int]]:
    """blob_key → (state, offset, length)."""
    rows = server.query('SELECT blob_key, state, "offset", length FROM tus_uploads')
    return {key: (state, offset, length) for key, state, offset, length in rows}


def staged_size(offset: int) -> int:
    """Size of a tus upload's staged blob at ``offset``: its whole chunks, sealed."""
    return HEADER + (offset // CHUNK) * SEALED_CHUNK


def check_served(server: Server, expected: dict[str, bytes]) -> None:
    """No half-written file is served: every live row is one of ``expected`` (by name), its
    blob is there, and it downloads byte-exact."""
    blobs = server.blobs()
    for row in file_rows(server):
        if row.state != "ready":
            continue
        assert row.name in expected, f"a file row for an upload that never finished: {row}"
        assert row.blob_key in blobs, f"row {row.id} ({row.name}) points to a missing blob"
        body = httpx.get(f"{server.url}/f/{row.uuid}", timeout=60)
        assert body.status_code == 200, f"{row.name}: {body.status_code} {body.text[:200]}"
        assert body.content == expected[row.name], f"{row.name} does not download byte-exact"


def check_no_leftovers(server: Server) -> None:
    """After the sweep: every blob has a row, tmp/ is empty, every staged blob has its upload
    and holds no more than that upload's offset says."""
    keys = {row.blob_key for row in file_rows(server)}
    orphans = sorted(set(server.blobs()) - keys)
    assert not orphans, f"blobs with no row after the sweep: {orphans}"
    temp = server.temp_files()
    assert not temp, f"temp files left after the sweep: {[p.name for p in temp]}"
    uploads = tus_rows(server)
    for key, size in server.staged().items():
        assert key in uploads, f"staged blob {key} has no tus upload"
        state, offset, _length = uploads[key]
        assert state == "uploading", f"staged blob {key} of a tus upload in state {state}"
        # Bytes past the recorded offset are cut when the upload goes on, so they are allowed;
        # fewer would lose data the server acknowledged.
        assert size >= staged_size(offset), f"staged blob {key}: {size} bytes, offset {offset}"


def multipart(
    parts: list[tuple[str, str, bytes]], fields: dict[str, str] | None = None
) -> tuple[str, list[bytes]]:
    """A multipart/form-data body as pieces (field, file name, content): its boundary too."""
    boundary = "satchelreliability" + os.urandom(8).hex()
    pieces: list[bytes] = []
    for name, value in (fields or {}).items():
        pieces.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for field, filename, content in parts:
        pieces.append(
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        pieces.append(content)
        pieces.append(b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode())
    return boundary, pieces


class RawRequest:
    """An HTTP/1.1 request over a plain socket, so a test decides how much of the body goes."""

    def __init__(self, server: Server, method: str, path: str, headers: dict[str, str]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@contextlib.contextmanager
def raw_request(
    server: Server, method: str, path: str, headers: dict[str, str]
) -> Iterator[RawRequest]:
    request = RawRequest(server, method, path, headers)
    try:
        yield request
    finally:
        request.close()


def upload(server: Server, name: str, content: bytes, **fields: str) -> dict[str, Any]:
    response = httpx.post(
        server.url + "/upload", files={"files": (name, content)}, data=fields, timeout=60
    )
    assert response.status_code == 200, f"upload of {name}: {response.status_code} {response.text}"
    result: dict[str, Any] = response.json()
    return result


def uuid_of(result: dict[str, Any]) -> str:
    return str(result["download_url"]).split("/f/", 1)[1].split("/", 1)[0]


TUS = {"Tus-Resumable": "1.0.0"}


def tus_create(server: Server, length: int, name: str) -> str:
    """A new tus upload of ``length`` bytes; its URL."""
    encoded = base64.b64encode(name.encode()).decode()
    response = httpx.post(
        server.url + "/tus/",
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": f"filename {encoded}"},
        timeout=30,
    )
    assert response.status_code == 201, f"tus creation: {response.status_code} {response.text}"
    return response.headers["location"]


def tus_patch(url: str, offset: int, body: bytes) -> httpx.Response:
    headers = {
        **TUS,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }
    return httpx.patch(url, content=body, headers=headers, timeout=60)


def tus_blob_key(server: Server, url: str) -> str:
    upload_id = url.rstrip("/").rsplit("/", 1)[1]
    rows = server.query("SELECT blob_key FROM tus_uploads WHERE id = :id", id=upload_id)
    assert rows, f"harness: no tus row for {url}"
    return str(rows[0][0])


class Origin:
    """A loopback HTTP server for URL imports: ``GET /NAME`` gives ``files[NAME]``."""

    def __init__(self, files: dict[str, bytes]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the importer may stop reading
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.server = Quiet(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://{self.host}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def v2_login(server: Server, name: str) -> dict[str, str]:
    """A new user and an /api/v2 access token: the parameters every v2 call takes."""
    created = server.admin("create-user", name, "--password", "password-of-" + name)
    assert created.returncode == 0, created.stderr
    answer = httpx.post(
        server.url + "/api/v2/authorize",
        data={"username": name, "password": "password-of-" + name},
        timeout=30,
    ).json()
    assert answer["_status"] == "success", answer
    return {
        "access_token": answer["data"]["access_token"],
        "account_id": answer["data"]["account_id"],
    }


class TcpProxy:
    """A TCP relay to ``upstream`` that can be made to refuse connections and cut those it
    carries (``refuse``), then relay again on the same port (``restore``)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._lock = threading.Lock()
        self._links: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def refuse(self) -> None:
        """Closes the listening socket (new connections are refused) and every link."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._acceptor is not None:
            self._acceptor.join(5)
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            with contextlib.suppress(OSError):
                link.shutdown(socket.SHUT_RDWR)
            link.close()

    close = refuse

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by refuse()
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.settimeout(None)
            with self._lock:
                self._links += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
