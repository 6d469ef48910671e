"""A database that refuses connections or stays locked answers 503 with Retry-After, fast."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient
from tests.conftest import PG_URL
from tests.helpers import path_of, token_of, upload

from satchel.config import Settings, load_settings
from satchel.web.app import create_app

TUS = {"Tus-Resumable": "1.0.0", "Upload-Length": "5"}
UUID = "0b0e2f6c-8d8a-4b8e-9d2e-2f6c8d8a4b8e"


def refused_settings(tmp_path: Path) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "data_dir": str(tmp_path / "data"),
            # Nothing listens on port 1: every connection attempt is refused.
            "database_url": "postgresql+psycopg://postgres@127.0.0.1:1/test",
            "public_url": "http://testserver",
            "master_keys": [Fernet.generate_key().decode()],
            "rate_limits_enabled": False,
        },
    )


def test_every_surface_answers_503_when_the_database_refuses(tmp_path: Path) -> None:
    settings = refused_settings(tmp_path)
    with TestClient(create_app(settings, migrate=False, run_jobs=False)) as client:
        requests = [
            ("POST", "/upload", {"files": {"files": ("a.txt", b"hello")}}),
            ("GET", f"/f/{UUID}/a.txt", {}),
            ("GET", "/manage/" + "x" * 43, {}),
            ("POST", "/tus/", {"headers": TUS}),
            ("GET", "/readyz", {}),
        ]
        for method, path, extra in requests:
            started = time.monotonic()
            response = client.request(method, path, **extra)
            assert response.status_code == 503, (path, response.text)
            assert time.monotonic() - started < 3, path
            if path != "/readyz":
                assert int(response.headers["retry-after"]) > 0, path
                assert "database" in response.json()["error"].lower(), path
    store = settings.data_path / "store"
    assert not any((store / "blobs").rglob("*.*")), "an upload left a blob behind"
    assert not any((store / "tmp").iterdir()), "an upload left a temp file behind"
    assert not any((store / "staging").iterdir()), "a tus creation left a staged file behind"


@pytest.mark.skipif(not PG_URL, reason="SATCHEL_TEST_DATABASE_URL is not set (CI sets it)")
def test_a_locked_table_answers_503_after_the_statement_timeout(
    tmp_path: Path, pg_databases: object
) -> None:
    url = pg_databases.create()  # type: ignore[attr-defined]
    settings = load_settings(
        environ={},
        overrides={
            "data_dir": str(tmp_path / "data"),
            "database_url": url,
            "public_url": "http://testserver",
            "master_keys": [Fernet.generate_key().decode()],
            "rate_limits_enabled": False,
            "db_statement_timeout": "1s",
        },
    )
    with TestClient(create_app(settings, migrate=False, run_jobs=False)) as client:
        result = upload(client, b"locked away")
        locked, release = threading.Event(), threading.Event()

        def hold_lock() -> None:
            engine = create_engine(url)
            with engine.begin() as conn:
                conn.execute(text("LOCK TABLE files IN ACCESS EXCLUSIVE MODE"))
                locked.set()
                release.wait(15)
            engine.dispose()

        holder = threading.Thread(target=hold_lock)
        holder.start()
        try:
            assert locked.wait(10)
            started = time.monotonic()
            response = client.get(path_of(result["download_url"]))
            assert response.status_code == 503
            assert time.monotonic() - started < 4
            assert client.get("/manage/" + token_of(result)).status_code == 503
        finally:
            release.set()
            holder.join()
        # Recovered, without a restart.
        assert client.get(path_of(result["download_url"])).content == b"locked away"
