"""URL imports run in workers of their own, in fair order, and give up on a slow origin."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.test_url_import import schedule, status

from satchel.config import Settings, load_settings
from satchel.core import urlfetch
from satchel.core.accounts import NewUser
from satchel.web.app import create_app
from satchel.web.state import AppState

FAST = b"quick file" * 1000


class SlowOrigin:
    """``/slow`` trickles 1 KiB a tenth of a second until released; ``/fast`` answers at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                if self.path == "/fast":
                    self.send_header("Content-Length", str(len(FAST)))
                    self.end_headers()
                    self.wfile.write(FAST)
                    return
                self.end_headers()
                try:
                    while not origin.release.wait(0.1):
                        self.wfile.write(b"s" * 1024)
                        self.wfile.flush()
                except OSError:
                    pass  # the importer gave up

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origin() -> Iterator[SlowOrigin]:
    server = SlowOrigin()
    yield server
    server.close()


def app_with(settings: Settings, origin: SlowOrigin, **changes: Any) -> TestClient:
    changed = load_settings(
        environ={},
        overrides={
            **settings.values,
            "url_import_allowed_hosts": [f"127.0.0.1:{origin.port}"],
            **changes,
        },
    )
    return TestClient(create_app(changed, migrate=False, run_jobs=False))


def auth_for(client: TestClient, name: str) -> dict[str, str]:
    state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
    user = state.accounts.find(name) or state.accounts.create_user(NewUser(name, "password1"))
    key1, key2 = state.v2auth.generate_keys(user.id)
    body = client.post("/api/v2/authorize", data={"key1": key1, "key2": key2}).json()
    return {"access_token": body["data"]["access_token"], "account_id": body["data"]["account_id"]}


def wait_for(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_one_users_slow_imports_do_not_hold_up_another_user(
    settings: Settings, origin: SlowOrigin
) -> None:
    with app_with(settings, origin, url_import_workers=2, url_import_per_user=1) as client:
        state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
        state.import_workers.start()
        try:
            slow_user, other = auth_for(client, "slowpoke"), auth_for(client, "other")
            slow = [schedule(client, slow_user, origin.url("/slow")) for _ in range(2)]
            assert wait_for(
                lambda: status(client, slow_user, slow[0])["status"] == "downloading", 5
            )
            quick = schedule(client, other, origin.url("/fast"))
            started = time.monotonic()
            assert wait_for(lambda: status(client, other, quick)["status"] == "complete", 5)
            assert time.monotonic() - started < 5
            # The slow user's second import waits for its share, the maintenance jobs for nothing.
            assert status(client, slow_user, slow[1])["status"] == "pending"
            started = time.monotonic()
            state.jobs.run_due()
            assert time.monotonic() - started < 5
        finally:
            origin.release.set()
            state.import_workers.stop()


def test_the_next_import_goes_to_the_user_with_fewest_running(
    settings: Settings, origin: SlowOrigin
) -> None:
    with app_with(settings, origin, url_import_per_user=3) as client:
        state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
        first, second = auth_for(client, "first"), auth_for(client, "second")
        a1 = schedule(client, first, origin.url("/fast"))
        a2 = schedule(client, first, origin.url("/fast"))
        b1 = schedule(client, second, origin.url("/fast"))
        assert state.imports._claim_next() == a1
        # first runs one now: second's import, although queued later, goes before a2.
        assert state.imports._claim_next() == b1
        assert state.imports._claim_next() == a2


def test_a_transfer_slower_than_the_minimum_rate_fails(
    settings: Settings, origin: SlowOrigin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(urlfetch, "RATE_WINDOW", 1.0)
    with app_with(settings, origin, url_import_min_rate="64KiB") as client:
        state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
        auth = auth_for(client, "alice")
        item = schedule(client, auth, origin.url("/slow"))
        started = time.monotonic()
        state.imports.run_pending()
        assert time.monotonic() - started < 10
        result = status(client, auth, item)
        assert result["status"] == "failed"
        assert "slower than the minimum" in result["error"]
        assert list(state.files.store.iter_blobs()) == []
