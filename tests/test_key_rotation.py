"""Master-key rotation and retirement while the server keeps running."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, select, text
from starlette.testclient import TestClient
from tests.helpers import path_of, upload

from satchel.cli import main
from satchel.config import Settings
from satchel.core.keyring import FRESH_FOR, set_primary
from satchel.core.rotation import rotate
from satchel.crypto.keys import KeyRing, add_primary_key, fingerprint, load_or_create_keyfile
from satchel.db.engine import Database
from satchel.db.models import StoredFile
from satchel.web.app import create_app


@pytest.fixture
def keyfile_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Keys in the data folder's key file, and `satchel admin` acting on the same data."""
    changed = settings.replace(master_keys=[])
    monkeypatch.setenv("SATCHEL_DATA_DIR", str(changed.data_path))
    monkeypatch.setenv("SATCHEL_DATABASE_URL", changed.sqlalchemy_url)
    monkeypatch.delenv("SATCHEL_MASTER_KEYS", raising=False)
    return changed


def wrapped_by(client: TestClient) -> dict[str, str | None]:
    state = client.app.state.satchel  # type: ignore[attr-defined]
    with state.db.read() as session:
        rows = session.execute(select(StoredFile.uuid, StoredFile.wrapped_by)).all()
    return dict(rows)


def test_a_running_server_follows_a_rotation_and_a_retirement(
    keyfile_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    keyfile = keyfile_settings.data_path / "master.keys"
    with TestClient(create_app(keyfile_settings, migrate=False, run_jobs=False)) as client:
        before = upload(client, b"before the rotation")
        old_key = keyfile.read_text().split()[0]
        assert main(["admin", "rotate-keys"]) == 0
        new_key = keyfile.read_text().split()[0]
        assert new_key != old_key
        # The running server opens data keys re-wrapped under a key it had not loaded.
        assert client.get(path_of(before["download_url"])).content == b"before the rotation"
        after = upload(client, b"after the rotation")
        uuid_after = after["download_url"].split("/")[4]
        assert wrapped_by(client)[uuid_after] == fingerprint(new_key)
        assert set(wrapped_by(client).values()) == {fingerprint(new_key)}

        capsys.readouterr()
        assert main(["admin", "retire-keys"]) == 0
        assert "retired 1 key(s)" in capsys.readouterr().out
        assert keyfile.read_text().split() == [new_key]
        for result, body in ((before, b"before the rotation"), (after, b"after the rotation")):
            assert client.get(path_of(result["download_url"])).content == body
        assert upload(client, b"after the retirement")["download_url"]


def test_retire_keys_refuses_while_a_data_key_depends_on_an_old_key(
    keyfile_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    keyfile = keyfile_settings.data_path / "master.keys"
    with TestClient(create_app(keyfile_settings, migrate=False, run_jobs=False)) as client:
        result = upload(client, b"still under the old key")
        state = client.app.state.satchel  # type: ignore[attr-defined]
        # A new primary named, but nothing re-wrapped yet.
        new = add_primary_key(keyfile)
        set_primary(state.db, fingerprint(new))
        capsys.readouterr()
        assert main(["admin", "retire-keys"]) == 1
        assert "1 data key(s) are still wrapped" in capsys.readouterr().err
        assert len(keyfile.read_text().split()) == 2
        assert client.get(path_of(result["download_url"])).content == b"still under the old key"


def test_a_server_without_the_primary_key_refuses_to_wrap_with_another(
    settings: Settings,
) -> None:
    with TestClient(create_app(settings, migrate=False, run_jobs=False)) as client:
        state = client.app.state.satchel  # type: ignore[attr-defined]
        kept = upload(client, b"wrapped under the first key")
        # Another instance rotated to a key this one was never given.
        set_primary(state.db, fingerprint(Fernet.generate_key()))
        time.sleep(FRESH_FOR)  # as long as a process may wrap with what it last saw
        refused = client.post("/upload", files={"files": ("x.txt", b"x")})
        assert refused.status_code == 503
        assert refused.headers["retry-after"]
        # What it can open, it still serves.
        assert client.get(path_of(kept["download_url"])).content == b"wrapped under the first key"


def test_key_file_keeps_comments_when_keys_are_retired(tmp_path: Path) -> None:
    from satchel.crypto.keys import keep_only

    path = tmp_path / "master.keys"
    load_or_create_keyfile(path)
    first = path.read_text().split()[0]
    second = add_primary_key(path)
    path.write_text(f"# keys of this server\n{second}\n{first}\n")
    path.chmod(0o600)
    assert keep_only(path, [fingerprint(second)]) == 1
    assert path.read_text() == f"# keys of this server\n{second}\n"
    with pytest.raises(ValueError, match="without a key"):
        keep_only(path, [fingerprint(first)])
    assert KeyRing(load_or_create_keyfile(path)).primary_fingerprint == fingerprint(second)


TOUCH = text("UPDATE files SET downloads = downloads WHERE id = :id")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_rotation_batch_that_loses_a_deadlock_is_written_again(
    settings: Settings, database_url: str
) -> None:
    """A request holding one file's row and then wanting another the rotation holds: PostgreSQL
    aborts one of the two, and the rotation (made the one to lose) finishes all the same."""
    with TestClient(create_app(settings, migrate=False, run_jobs=False)) as client:
        for body in (b"first", b"second"):
            upload(client, body)
    old = settings.master_keys[0]
    keys = KeyRing([Fernet.generate_key().decode(), old])
    db = Database(database_url)
    other = create_engine(database_url)
    outcome: list[object] = []

    def rotate_now() -> None:
        try:
            outcome.append(rotate(db, keys, settle=0))
        except Exception as exc:  # the assertion below shows it
            outcome.append(exc)

    try:
        with other.begin() as conn:
            first_id, second_id = conn.scalars(text("SELECT id FROM files ORDER BY id")).all()
            # This side waits ten seconds before it looks for a deadlock, the rotation one.
            conn.execute(text("SET LOCAL deadlock_timeout = '10s'"))
            conn.execute(TOUCH, {"id": second_id})
            thread = threading.Thread(target=rotate_now)
            thread.start()
            _wait_for_a_lock_wait(other)
            conn.execute(TOUCH, {"id": first_id})
        thread.join(30)
        assert len(outcome) == 1
        assert not isinstance(outcome[0], Exception), outcome
        with db.read() as session:
            owners = set(session.scalars(select(StoredFile.wrapped_by)))
        assert owners == {keys.primary_fingerprint}
    finally:
        db.dispose()
        other.dispose()


def _wait_for_a_lock_wait(engine: Engine) -> None:
    deadline = time.monotonic() + 10
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            )
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the rotation never waited for the row")
