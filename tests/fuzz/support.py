"""What the fuzz suites share: fixed Hypothesis settings, an app served in-process the way a
real server serves it, and a user with real credentials and things to aim at."""

from __future__ import annotations

import asyncio
import base64
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from hypothesis import HealthCheck, settings
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send
from tests.helpers import ALL_PERMISSIONS, bearer, path_of, token_of

from satchel.config import load_settings
from satchel.core.accounts import NewUser
from satchel.core.actors import Member
from satchel.db.models import User
from satchel.errors import NotFound
from satchel.web.app import create_app
from satchel.web.state import AppState

# Derandomized and without an example database: every run tries the same inputs.
PROPERTIES = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Examples that each write blobs, or send a request to the app: fewer.
UPLOADS = settings(PROPERTIES, max_examples=80)
REQUESTS = settings(PROPERTIES, max_examples=60)


class AsServer:
    """The app as granian runs it: an exception after the 500 went out is logged, not raised
    into the client, and the lifespan is the fixture's business (it already ran)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if not started:
                raise  # no answer at all: that is the client's to see


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(
    app: AsServer, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> RawAnswer:
    """One request with header values sent as the octets given (test clients re-encode text
    headers; a real client may send any latin-1 byte), the way a server hands them over."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return RawAnswer(
        start["status"],
        {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", [])},
        b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
    )


def new_app(tmp: Path, database_url: str) -> Starlette:
    data = tmp / "data"
    configured = load_settings(
        environ={},
        overrides={
            "data_dir": str(data),
            "database_url": database_url,
            "public_url": "http://testserver",
            "master_keys": [Fernet.generate_key().decode()],
            "rate_limits_enabled": False,
        },
    )
    return create_app(configured, migrate=False, run_jobs=False)


PLAIN = (dict, list, tuple, str, bytes, int, float, bool, type(None))


def picks(case: Any, salt: str = "") -> bool:
    """A fixed half of the generated cases, chosen by their content: the same ones every run
    (so nothing whose repr holds an address, like schemathesis' marker of no body, counts)."""
    body = case.body if isinstance(case.body, PLAIN) else type(case.body).__name__
    text = f"{salt}{case.operation.label}{case.path_parameters}{case.query}{body!r}"
    return zlib.crc32(text.encode("utf-8", "replace")) % 2 == 0


@dataclass
class Target:
    """The app under test, its user alice with an all-permission key and a v2 token, and
    ways to make fresh things (files, folders, links) for a case to aim at."""

    client: TestClient
    user: User = field(init=False)
    key: str = field(init=False)
    v2: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.state: AppState = self.client.app.state.satchel  # type: ignore[attr-defined]
        self.app = AsServer(self.client.app)  # type: ignore[arg-type]
        self.user = self.state.accounts.create_user(NewUser("alice", "password1"))
        self.new_key()
        self.new_token()
        self.home = 0
        self.model = 0

    def new_key(self) -> None:
        """alice's keys all revoked (so the limit of 10 is never reached), and a fresh one."""
        for old in self.state.apikeys.list(self.user):
            self.state.apikeys.revoke(self.user, old.id)
        granted = dict.fromkeys(ALL_PERMISSIONS, True)
        self.key = self.state.apikeys.create(self.user, "fuzz", granted, []).secret

    def new_token(self) -> None:
        token = self.state.v2auth.issue_token(self.user)
        self.v2 = {"access_token": token, "account_id": str(self.user.id)}

    def drive_folder(self) -> int:
        """A new, empty folder of alice's, inside the one folder that holds them all (so no
        folder grows long enough to slow listings down)."""
        return self.state.folders.create(self.user.id, "f", self._home()).id

    def drive_file(self) -> int:
        """A new file of alice's, in a new folder of its own."""
        owner = Member(ip="", user=self.user)
        copied = self.state.drive_files.copy(owner, self._model(), self.drive_folder())
        return copied.id

    def _home(self) -> int:
        """The folder of the fresh things (made again when a request trashed it)."""
        if not self._exists(self.state.folders.live, self.home):
            self.home = self.state.folders.create(self.user.id, "fuzz", None).id
        return self.home

    def _model(self) -> int:
        """The file fresh files are copies of (uploaded again when a request trashed it)."""
        if not self._exists(self.state.drive_files.get, self.model):
            answer = self.client.post(
                "/apiv1/upload",
                files={"files": ("model.txt", b"drive bytes")},
                data={"folder_id": str(self._home())},
                headers=bearer(self.key),
            )
            assert answer.status_code == 201, answer.text
            self.model = answer.json()["files"][0]["id"]
        return self.model

    def _exists(self, look_up: Any, item_id: int) -> bool:
        try:
            look_up(self.user.id, item_id)
        except NotFound:
            return False
        return item_id != 0

    def trashed_file(self) -> int:
        file_id = self.drive_file()
        self.state.trash.trash_file(self.user.id, file_id)
        return file_id

    def guest_upload(self, **fields: str) -> dict[str, Any]:
        files = {"files": ("f.txt", b"0123456789")}
        answer = self.client.post("/upload", files=files, data=fields)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def tus_upload(self) -> str:
        metadata = "filename " + base64.b64encode(b"t.txt").decode()
        answer = self.client.post(
            "/tus/",
            headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10", "Upload-Metadata": metadata},
        )
        assert answer.status_code == 201, answer.text
        return path_of(answer.headers["location"]).rsplit("/", 1)[1]

    def public_ids(self, wanted: Iterable[str]) -> dict[str, str]:
        """Path parameters of the public API that name a fresh guest upload (made only when
        one of ``wanted`` needs it)."""
        wanted = set(wanted)
        ids: dict[str, str] = {}
        if wanted & {"uuid", "token", "code"}:
            result = self.guest_upload(short_url="true")
            ids["uuid"] = result["file_id"]
            ids["token"] = token_of(result)
            ids["code"] = path_of(result["short_url"]).rsplit("/", 1)[1]
        if "upload_id" in wanted:
            ids["upload_id"] = self.tus_upload()
        return ids


@contextmanager
def target(tmp: Path, database_url: str) -> Iterator[Target]:
    with TestClient(new_app(tmp, database_url), base_url="http://testserver") as client:
        yield Target(client)
