"""Prometheus metrics: a real `satchel serve` with two workers scraped after real requests,
the restriction of /metrics, and the counters of uploads, jobs and backend errors."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from tests.conftest import LiveServer, start_server, stop_server

from satchel import observability
from satchel.config import Settings
from satchel.db.engine import Database
from satchel.errors import DatabaseUnavailable, NotFound
from satchel.jobs.runner import Job, JobRunner
from satchel.web.app import create_app
from satchel.web.errors import guard, install_error_handlers, public
from satchel.web.metrics import Observe

DOWNLOAD_ROUTE = "/f/{public_id}/{filename:path}"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` that carry these labels (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("metrics")
    folder = tmp / "prometheus"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left over from an earlier run")
    env = {"SATCHEL_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    live = start_server(tmp, env)
    yield live
    stop_server(live)


def scrape(server: LiveServer) -> tuple[str, Samples]:
    response = httpx.get(server.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text, parse(response.text)


def worker_pids(server: LiveServer) -> set[str]:
    folder = Path(server.env["PROMETHEUS_MULTIPROC_DIR"])
    return {
        m.group(1) for p in folder.glob("histogram_*.db") if (m := re.search(r"_(\d+)", p.name))
    }


def test_two_workers_are_counted_together_by_route_template(server: LiveServer) -> None:
    folder = Path(server.env["PROMETHEUS_MULTIPROC_DIR"])
    assert not (folder / "counter_1.db").exists()  # the folder was emptied at the start
    _, before = scrape(server)
    data = os.urandom(300_000)
    uploaded = httpx.post(server.url + "/upload", files={"files": ("report.bin", data)})
    url = uploaded.json()["download_url"]
    file_id = url.split("/f/")[1].split("/")[0]
    for _ in range(3):
        assert httpx.get(url).content == data
    stranger = str(uuid.uuid4())
    assert httpx.get(f"{server.url}/f/{stranger}/x.txt").status_code == 404
    assert httpx.get(f"{server.url}/no/such/{stranger}").status_code == 404
    health = 0
    while health < 20 or len(worker_pids(server)) < 2:  # new connections: both workers answer
        assert httpx.get(server.url + "/healthz").status_code == 200
        health += 1
        assert health < 500, "one worker took every request"
    text, after = scrape(server)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("satchel_http_requests_total", route="/healthz", method="GET", status="200") == (
        health
    )
    assert delta("satchel_http_request_duration_seconds_count", route="/healthz") == health
    assert delta("satchel_http_requests_total", route=DOWNLOAD_ROUTE, status="200") == 3
    assert delta("satchel_http_requests_total", route=DOWNLOAD_ROUTE, status="404") == 1
    assert delta("satchel_http_requests_total", route="(unmatched)", status="404") == 1
    assert delta("satchel_http_requests_total", route="/upload", method="POST") == 1
    assert delta("satchel_http_request_bytes_total", route="/upload") > len(data)
    assert delta("satchel_http_response_bytes_total", route=DOWNLOAD_ROUTE) >= 3 * len(data)
    assert delta("satchel_uploads_total") == 1
    assert delta("satchel_upload_bytes_total") == len(data)
    assert delta("satchel_downloads_total") == 3
    assert delta("satchel_download_bytes_total") == 3 * len(data)
    for raw in (file_id, stranger, "/no/such", "report.bin"):
        assert raw not in text


def test_each_serve_run_has_a_fresh_folder_removed_at_the_end(tmp_path: Path) -> None:
    live = start_server(tmp_path, {"SATCHEL_WORKERS": "1"})
    try:
        argv = Path(f"/proc/{live.process.pid}/cmdline").read_bytes().split(b"\0")
        config = Path(argv[argv.index(b"--log-config") + 1].decode())
        folder = config.parent
        assert folder.name.startswith("satchel-metrics-")
        assert httpx.get(live.url + "/healthz").status_code == 200
        assert value(scrape(live)[1], "satchel_http_requests_total", route="/healthz") >= 1
        assert list(folder.glob("counter_*.db"))
    finally:
        stop_server(live)
    assert not folder.exists()


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "satchelmetricstest"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def wait_for(server: LiveServer, name: str, wanted: float) -> float:
    deadline = time.monotonic() + 10
    while (got := value(scrape(server)[1], name)) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return got


def test_an_upload_in_progress_is_counted_until_it_ends(server: LiveServer) -> None:
    body, boundary = multipart("slow.bin", os.urandom(200_000))
    port = int(server.url.rsplit(":", 1)[1])
    head = (
        f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body[:1000])
        assert wait_for(server, "satchel_uploads_in_progress", 1) == 1
        sock.sendall(body[1000:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert wait_for(server, "satchel_uploads_in_progress", 0) == 0


def test_the_gauges_of_a_dead_process_are_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = (
        "from satchel import observability as o\n"
        "o.UPLOADS_IN_PROGRESS.inc()\n"  # and it ends without the dec: killed mid-upload
        "o.UPLOADS.inc()\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert list(tmp_path.glob("gauge_livesum_*.db"))
    exposed = parse(observability.exposition().decode())  # a scrape forgets the dead first
    assert value(exposed, "satchel_uploads_in_progress") == 0
    assert value(exposed, "satchel_uploads_total") == 1  # what it counted still counts
    assert not list(tmp_path.glob("gauge_livesum_*.db"))


# -- the restriction of /metrics ----------------------------------------------------------


def metrics_client(settings: Settings, address: str, **changes: object) -> TestClient:
    app = Observe(create_app(settings.replace(**changes), migrate=False, run_jobs=False))
    return TestClient(app, base_url="http://testserver", client=(address, 40000))


def test_metrics_are_for_loopback_only_by_default(settings: Settings) -> None:
    assert metrics_client(settings, "127.0.0.1").get("/metrics").status_code == 200
    assert metrics_client(settings, "::1").get("/metrics").status_code == 200
    refused = metrics_client(settings, "203.0.113.9").get("/metrics")
    assert refused.status_code == 403
    assert refused.json() == {"error": "Forbidden"}


def test_an_allow_list_and_trusted_proxies(settings: Settings) -> None:
    inside = metrics_client(settings, "127.0.0.1", metrics_allow="10.0.0.0/8")
    assert inside.get("/metrics").status_code == 403
    # A loopback peer that forwards for someone, but is no trusted proxy: not loopback.
    forwarded = {"X-Forwarded-For": "127.0.0.1"}
    assert metrics_client(settings, "127.0.0.1").get("/metrics", headers=forwarded).status_code == (
        403
    )
    proxied = metrics_client(
        settings, "127.0.0.1", metrics_allow="10.0.0.0/8", trusted_proxies="127.0.0.1"
    )
    assert proxied.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 200
    assert proxied.get("/metrics", headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 403
    anyone = metrics_client(settings, "203.0.113.9", metrics_allow="", metrics_token="t0ken")
    assert anyone.get("/metrics", headers={"Authorization": "Bearer t0ken"}).status_code == 200


def test_a_token_is_asked_for_when_set(settings: Settings) -> None:
    client = metrics_client(settings, "127.0.0.1", metrics_token="s3cret-token")
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    for wrong in (
        "Bearer s3cret",
        "Bearer s3cret-token-more",
        "Basic s3cret-token",
        "s3cret-token",
    ):
        assert client.get("/metrics", headers={"Authorization": wrong}).status_code == 401
    good = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert good.status_code == 200
    assert "satchel_http_requests_total" in good.text
    assert client.get("/metrics", headers={"Authorization": "bearer s3cret-token"}).status_code == (
        200
    )


def test_metrics_off_is_no_route(settings: Settings) -> None:
    assert metrics_client(settings, "127.0.0.1", metrics=False).get("/metrics").status_code == 404


def test_mounts_and_wrong_methods_keep_their_template(settings: Settings) -> None:
    client = metrics_client(settings, "127.0.0.1")
    assert client.get("/static/satchel.css").status_code == 200
    assert client.delete("/metrics").status_code == 405
    samples = parse(client.get("/metrics").text)
    assert value(samples, "satchel_http_requests_total", route="/static/{path}") >= 1
    assert value(samples, "satchel_http_requests_total", route="/metrics", status="405") >= 1
    assert not any("satchel.css" in str(labels) for _, labels in samples)


# -- jobs and backend errors -----------------------------------------------------------------


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_job_runs_and_failures_are_counted_by_job(database_url: str) -> None:
    def broken() -> str:
        raise RuntimeError("the job broke")

    db = Database(database_url)
    name = f"metrics-{uuid.uuid4().hex[:6]}"
    runner = JobRunner(db, [Job(name + "-ok", timedelta(0), lambda: "done")])
    runner.jobs.append(Job(name + "-bad", timedelta(0), broken))
    try:
        assert runner.run_due() == [name + "-ok", name + "-bad"]
    finally:
        db.dispose()
    assert sample("satchel_job_runs_total", job=name + "-ok") == 1
    assert sample("satchel_job_failures_total", job=name + "-ok") == 0
    assert sample("satchel_job_runs_total", job=name + "-bad") == 1
    assert sample("satchel_job_failures_total", job=name + "-bad") == 1


def test_database_and_storage_failures_are_counted() -> None:
    async def database_down(request: Request) -> Response:
        raise DatabaseUnavailable()

    async def disk_broken(request: Request) -> Response:
        try:
            raise OSError(5, "Input/output error")
        except OSError as exc:
            raise RuntimeError("could not read the blob") from exc

    async def not_found(request: Request) -> Response:
        raise NotFound()

    app = Starlette(
        routes=[
            Route("/db", guard(public)(database_down)),
            Route("/disk", disk_broken),
            Route("/missing", guard(public)(not_found)),
        ]
    )
    install_error_handlers(app)
    client = TestClient(app, raise_server_exceptions=False)
    db_before = sample("satchel_database_errors_total")
    disk_before = sample("satchel_storage_errors_total")
    assert client.get("/db").status_code == 503
    assert client.get("/disk").status_code == 500
    assert client.get("/missing").status_code == 404
    assert sample("satchel_database_errors_total") - db_before == 1
    assert sample("satchel_storage_errors_total") - disk_before == 1
