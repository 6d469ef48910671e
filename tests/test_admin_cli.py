from __future__ import annotations

import os
from pathlib import Path

from starlette.testclient import TestClient
from tests.helpers import path_of, upload

from satchel.cli import main
from satchel.config import Settings, load_settings
from satchel.web.app import create_app


def env_for(settings: Settings) -> dict[str, str]:
    return {
        "SATCHEL_DATA_DIR": str(settings.data_path),
        "SATCHEL_DATABASE_URL": settings.sqlalchemy_url,
    }


def test_rotate_keys_rewraps_every_data_key(settings: Settings, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    keyfile_settings = settings.replace(master_keys=[])
    tus = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}
    with TestClient(create_app(keyfile_settings, migrate=False, run_jobs=False)) as client:
        results = [upload(client, f"file {n}".encode()) for n in range(3)]
        # A tus upload half done when the keys rotate must still finish afterwards.
        created = client.post("/tus/", headers={**tus, "Upload-Length": "8"}, content=b"half")
        tus_path = path_of(created.headers["location"])
    keyfile = keyfile_settings.data_path / "master.keys"
    old_keys = keyfile.read_text().split()
    for name, value in env_for(keyfile_settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SATCHEL_MASTER_KEYS", raising=False)
    assert main(["admin", "rotate-keys"]) == 0
    assert "re-wrapped 4 data key(s)" in capsys.readouterr().out
    new_keys = keyfile.read_text().split()
    assert new_keys[1:] == old_keys
    # With only the new key, every file still opens: its data key was re-wrapped.
    only_new = load_settings(
        environ={}, overrides={**keyfile_settings.values, "master_keys": [new_keys[0]]}
    )
    with TestClient(create_app(only_new, migrate=False, run_jobs=False)) as client:
        for n, result in enumerate(results):
            assert client.get(path_of(result["download_url"])).content == f"file {n}".encode()
        done = client.patch(tus_path, headers={**tus, "Upload-Offset": "4"}, content=b" way")
        assert done.status_code == 204
        assert client.get(path_of(done.headers["satchel-download-url"])).content == b"half way"


def test_migrate_and_settings_commands(settings: Settings, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    for name, value in env_for(settings).items():
        monkeypatch.setenv(name, value)
    assert main(["admin", "migrate"]) == 0
    assert main(["admin", "settings"]) == 0
    out = capsys.readouterr().out
    assert "database is up to date" in out
    assert f"SATCHEL_DATA_DIR={settings.data_path}" in out


def test_run_jobs_command(settings: Settings, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    for name, value in env_for(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SATCHEL_MASTER_KEYS", settings.master_keys[0])
    assert main(["admin", "run-jobs"]) == 0
    out = capsys.readouterr().out
    assert "expire_files: deleted 0 file(s)" in out
    assert "sweep_orphans" in out


def test_readyz_reports_a_broken_store(settings: Settings) -> None:
    with TestClient(create_app(settings, migrate=False, run_jobs=False)) as client:
        assert client.get("/readyz").json() == {"status": "ok"}
        store_tmp = settings.data_path / "store" / "tmp"
        os.chmod(store_tmp, 0o500)
        try:
            if os.geteuid() == 0:
                # root ignores permissions: take the folder away instead
                os.chmod(store_tmp, 0o700)
                store_tmp.rename(store_tmp.with_name("gone"))
            response = client.get("/readyz")
        finally:
            if store_tmp.with_name("gone").exists():
                store_tmp.with_name("gone").rename(store_tmp)
            os.chmod(store_tmp, 0o700)
    assert response.status_code == 503
    assert response.json()["problems"] == ["storage: FileNotFoundError"] or "storage" in str(
        response.json()
    )


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found"}


def test_security_headers_everywhere(settings: Settings, tmp_path: Path) -> None:
    from satchel.web.app import SecurityHeaders

    app = SecurityHeaders(create_app(settings, migrate=False, run_jobs=False))
    with TestClient(app) as client:
        for path in ("/", "/healthz", "/nope"):
            headers = client.get(path).headers
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "no-referrer"
            assert headers["x-frame-options"] == "DENY"


def test_cross_site_form_posts_are_refused(settings: Settings) -> None:
    from satchel.web.app import SecurityHeaders

    app = SecurityHeaders(create_app(settings, migrate=False, run_jobs=False))
    with TestClient(app) as client:
        result = upload(client)
        evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
        refused = client.post(result["redirect"], data={"public": "off"}, headers=evil)
        assert refused.status_code == 403
        assert refused.json() == {"error": "Cross-site request refused"}
        assert (
            client.post(
                "/upload", files={"files": ("a", b"x")}, headers={"Origin": "https://evil.example"}
            ).status_code
            == 403
        )
        same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
        assert (
            client.post(result["redirect"], data={"public": "off"}, headers=same).status_code == 200
        )
        assert client.get(result["redirect"]).json()["public"] is False
