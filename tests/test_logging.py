"""Structured logs: JSON lines from a real `satchel serve`, the request id of every request
(X-Request-ID), and no secret of a request in the log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from tests.conftest import LiveServer, start_server, stop_server

from satchel import observability
from satchel.config import load_settings
from satchel.errors import ConfigError
from satchel.web.metrics import Observe

GENERATED = re.compile(r"[0-9a-f]{16}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("logging"), {"SATCHEL_WORKERS": "2"})
    yield live
    stop_server(live)


def log_lines(server: LiveServer) -> list[dict[str, Any]]:
    """Every line of the server's log as JSON (the start-up banner is printed, not logged)."""
    lines = []
    for line in server.log_text().splitlines():
        if line.startswith(("Satchel on ", "note: ")) or not line.strip():
            continue
        lines.append(json.loads(line))
    return lines


def access_line(server: LiveServer, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in log_lines(server):
            if line["logger"] == "satchel.access" and line["request_id"] == request_id:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no access line for request {request_id}")


def test_every_line_is_a_json_object_with_the_common_fields(server: LiveServer) -> None:
    httpx.get(server.url + "/healthz")
    lines = log_lines(server)
    assert any(line["logger"].startswith("_granian") for line in lines)  # granian's own too
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= set(line)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])


def test_a_given_request_id_comes_back_and_is_logged(server: LiveServer) -> None:
    response = httpx.get(server.url + "/healthz", headers={"X-Request-ID": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
    line = access_line(server, "abc123")
    assert line["method"] == "GET"
    assert line["route"] == "/healthz"
    assert line["status"] == 200
    assert line["bytes"] == len(response.content)
    assert line["duration_ms"] >= 0
    assert line["message"] == "GET /healthz 200"


def test_without_a_usable_id_one_is_made(server: LiveServer) -> None:
    for given in (None, "has spaces in it", "x" * 65, "semi;colon", ""):
        headers = {"X-Request-ID": given} if given is not None else {}
        response = httpx.get(server.url + "/nothing/here", headers=headers)
        assert response.status_code == 404
        made = response.headers["x-request-id"]
        assert GENERATED.fullmatch(made)
        assert access_line(server, made)["route"] == "(unmatched)"
    ids = {httpx.get(server.url + "/healthz").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_no_secret_of_a_request_reaches_the_log(server: LiveServer) -> None:
    password, token, cookie = (f"{what}-{secrets.token_hex(6)}" for what in ("pw", "tok", "ck"))
    manage = secrets.token_urlsafe(24)
    file_id = str(uuid.uuid4())
    headers = {
        "Authorization": f"Bearer {token}",
        "Cookie": f"satchel_session={cookie}",
        "X-Request-ID": "secret-check-1",
    }
    httpx.get(f"{server.url}/f/{file_id}/a.txt?pw={password}#{password}", headers=headers)
    headers["X-Request-ID"] = "secret-check-2"
    httpx.get(f"{server.url}/manage/{manage}?pw={password}&token={token}", headers=headers)
    headers["X-Request-ID"] = "secret-check-3"
    httpx.post(f"{server.url}/apiv1/files", headers=headers, data={"password": password})
    assert access_line(server, "secret-check-1")["route"] == "/f/{public_id}/{filename:path}"
    assert access_line(server, "secret-check-2")["route"].startswith("/manage/{")
    assert access_line(server, "secret-check-3")["method"] == "POST"
    log = server.log_text()
    for secret in (password, token, cookie, manage, file_id, "pw=", "Bearer", "satchel_session"):
        assert secret not in log


# -- in the process: records of a request, the text format ---------------------------------


def capture(log_format: str) -> tuple[io.StringIO, logging.Handler]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(observability.formatter(log_format))
    return out, handler


def test_records_written_while_a_request_runs_carry_its_id() -> None:
    inside = logging.getLogger("satchel.test.inside")

    async def handler(request: Request) -> Response:
        inside.warning("on the event loop")
        await asyncio.to_thread(inside.warning, "in a worker thread")
        return PlainTextResponse("ok")

    out, log_handler = capture("json")
    inside.addHandler(log_handler)
    try:
        client = TestClient(Observe(Starlette(routes=[Route("/x", handler)])))
        assert client.get("/x", headers={"X-Request-ID": "req-42"}).headers["x-request-id"] == (
            "req-42"
        )
        inside.warning("after the request")
    finally:
        inside.removeHandler(log_handler)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["request_id"] for r in records] == ["req-42", "req-42", None]
    assert records[1]["message"] == "in a worker thread"
    assert records[0]["level"] == "warning"
    assert records[0]["logger"] == "satchel.test.inside"


def test_text_format_and_exceptions() -> None:
    out, handler = capture("text")
    record = logging.LogRecord("satchel.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    token = observability.request_id.set("abc123")
    try:
        handler.emit(record)
    finally:
        observability.request_id.reset(token)
    assert re.search(r" INFO satchel\.x \[abc123\] hello you$", out.getvalue().strip())
    out, handler = capture("json")
    try:
        raise ValueError("broken")
    except ValueError:
        import sys

        failing = logging.LogRecord("s", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    handler.emit(failing)
    line = json.loads(out.getvalue())
    assert "ValueError: broken" in line["exception"]
    assert line["request_id"] is None


def test_log_format_setting() -> None:
    assert load_settings(environ={}).log_format == "json"
    assert load_settings(environ={"SATCHEL_LOG_FORMAT": "TEXT"}).log_format == "text"
    with pytest.raises(ConfigError, match="SATCHEL_LOG_FORMAT"):
        load_settings(environ={"SATCHEL_LOG_FORMAT": "xml"})


def test_configure_logging_keeps_urls_of_http_clients_out() -> None:
    root, access, client = (logging.getLogger(n) for n in ("", "satchel.access", "httpx"))
    saved = (root.handlers[:], root.level, access.level, client.level)
    try:
        observability.configure_logging("info", "json", access_log=False)
        assert [type(h.formatter) for h in root.handlers] == [observability.JsonFormatter]
        assert not client.isEnabledFor(logging.INFO)  # it logs every URL with its query
        assert not access.isEnabledFor(logging.INFO)
        observability.configure_logging("debug", "text", access_log=True)
        assert access.isEnabledFor(logging.INFO)
        assert not client.isEnabledFor(logging.INFO)
    finally:
        root.handlers = saved[0]
        root.setLevel(saved[1])
        access.setLevel(saved[2])
        client.setLevel(saved[3])
