"""PostgreSQL going away under a running server, through a TCP relay of the test's own: requests
answer 503 with Retry-After at once rather than 500 or hanging, /readyz says unavailable, and
the same server serves again as soon as the database is back. A table locked by another client
makes a download answer 503 after SATCHEL_DB_STATEMENT_TIMEOUT rather than wait for the lock.

PostgreSQL only: conftest.py leaves this module out when SATCHEL_TEST_DATABASE_URL is not set."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.reliability.conftest import StartServer
from tests.reliability.harness import TUS, Server, TcpProxy, check_no_leftovers, upload, uuid_of

ANSWER_WITHIN = 3.0  # seconds, for each request while the database refuses connections
STATEMENT_TIMEOUT = 5  # seconds: SATCHEL_DB_STATEMENT_TIMEOUT of the server
JSON = {"Accept": "application/json"}
pytestmark = pytest.mark.parametrize("database_env", ["postgresql"], indirect=True)


@pytest.fixture
def proxied(database_env: dict[str, str]) -> Iterator[tuple[TcpProxy, str]]:
    """A relay to the test's PostgreSQL database, and the database URL that goes through it."""
    url = make_url(database_env["SATCHEL_DATABASE_URL"])
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)
    proxy.close()


def server_behind(start_server: StartServer, database_url: str) -> Server:
    return start_server(
        SATCHEL_DATABASE_URL=database_url, SATCHEL_DB_STATEMENT_TIMEOUT=f"{STATEMENT_TIMEOUT}s"
    )


def requests_of(server: Server) -> dict[str, Callable[[], httpx.Response]]:
    """The requests every outage is tried with: an upload, a download, a management page and
    a tus creation (a file uploaded beforehand serves the second and third)."""
    result = upload(server, "stored.txt", b"stored before the outage")
    uuid = uuid_of(result)
    token = result["redirect"].rsplit("/", 1)[1]
    url = server.url
    return {
        "POST /upload": lambda: httpx.post(
            url + "/upload", files={"files": ("new.bin", os.urandom(5000))}, timeout=30
        ),
        "GET /f/{uuid}": lambda: httpx.get(f"{url}/f/{uuid}", timeout=30),
        "GET /manage/{token}": lambda: httpx.get(f"{url}/manage/{token}", headers=JSON, timeout=30),
        "POST /tus/": lambda: httpx.post(
            url + "/tus/", headers={**TUS, "Upload-Length": "10"}, timeout=30
        ),
    }


def timed(request: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


def describe(response: httpx.Response, elapsed: float) -> str:
    retry = response.headers.get("retry-after")
    return f"{response.status_code} in {elapsed:.1f} s, Retry-After {retry}, {response.text[:80]!r}"


def test_database_refusing_connections_is_503_then_serving_again(
    proxied: tuple[TcpProxy, str], start_server: StartServer
) -> None:
    proxy, database_url = proxied
    server = server_behind(start_server, database_url)
    requests = requests_of(server)
    proxy.refuse()
    wrong = []
    for name, request in [
        *requests.items(),
        ("GET /readyz", lambda: httpx.get(server.url + "/readyz", timeout=30)),
    ]:
        response, elapsed = timed(request)
        wants_retry_after = name != "GET /readyz"
        if (
            response.status_code != 503
            or elapsed > ANSWER_WITHIN
            or (wants_retry_after and "retry-after" not in response.headers)
        ):
            wrong.append(f"{name}: {describe(response, elapsed)}")
    if wrong:
        pytest.fail(
            f"with the database refusing connections, wanted 503 with Retry-After within "
            f"{ANSWER_WITHIN} s:\n" + "\n".join(wrong)
        )

    proxy.restore()
    expected = {
        "POST /upload": 200,
        "GET /f/{uuid}": 200,
        "GET /manage/{token}": 200,
        "POST /tus/": 201,
    }
    ready = httpx.get(server.url + "/readyz", timeout=30)
    assert ready.status_code == 200, f"/readyz after the outage: {ready.status_code} {ready.text}"
    for name, request in requests.items():
        response = request()
        assert response.status_code == expected[name], (
            f"{name} after the outage: {describe(response, 0)}"
        )


def test_requests_refused_for_want_of_the_database_leave_nothing_behind(
    proxied: tuple[TcpProxy, str], start_server: StartServer
) -> None:
    proxy, database_url = proxied
    server = server_behind(start_server, database_url)
    requests = requests_of(server)
    proxy.refuse()
    for request in requests.values():
        request()
    proxy.restore()
    server.sweep()
    check_no_leftovers(server)


def test_a_locked_table_makes_a_download_503_within_the_statement_timeout(
    proxied: tuple[TcpProxy, str], database_env: dict[str, str], start_server: StartServer
) -> None:
    _proxy, database_url = proxied
    server = server_behind(start_server, database_url)
    uuid = uuid_of(upload(server, "locked.txt", b"behind a lock"))
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        engine = create_engine(database_env["SATCHEL_DATABASE_URL"])
        try:
            with engine.connect() as conn, conn.begin():
                conn.execute(text("LOCK TABLE files IN ACCESS EXCLUSIVE MODE"))
                locked.set()
                release.wait(15)
        finally:
            engine.dispose()

    holder = threading.Thread(target=hold_lock, daemon=True)
    holder.start()
    try:
        assert locked.wait(10), "harness: could not lock the files table"
        try:
            response, elapsed = timed(lambda: httpx.get(f"{server.url}/f/{uuid}", timeout=8))
        except httpx.TimeoutException:
            pytest.fail("GET /f/{uuid} gave no answer in 8 s while the files table was locked")
    finally:
        release.set()
        holder.join(20)
    outcome = f"GET /f/{{uuid}} with the files table locked: {describe(response, elapsed)}"
    assert response.status_code == 503, outcome
    assert elapsed < STATEMENT_TIMEOUT + 2, outcome
    assert "retry-after" in response.headers, outcome
    after = httpx.get(f"{server.url}/f/{uuid}", timeout=30)
    assert after.status_code == 200, f"after the lock: {describe(after, 0)}"
