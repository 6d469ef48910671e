"""The ``satchel upload | download | manage | delete | drive | keys`` commands, run as a user
runs them, against a live ``satchel serve``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import LiveServer, free_port

from satchel.crypto import e2e

ALL_PERMISSIONS = "read,download,write,delete,restore,manage_keys"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def credentials(live_server: LiveServer) -> dict[str, str]:
    name = f"cli{uuid.uuid4().hex[:8]}"
    live_server.admin("create-user", name, "--password", "a long password 123")
    key = live_server.admin("create-api-key", name, "--permissions", ALL_PERMISSIONS)
    key1, key2 = live_server.admin("create-v2-keys", name).split()
    return {"SATCHEL_API_KEY": key, "SATCHEL_V2_KEYS": f"{key1}:{key2}"}


@pytest.fixture
def run(live_server: LiveServer, tmp_path: Path) -> Run:
    """``satchel …`` in a subprocess, as a guest, with a private HOME and cache."""
    home = tmp_path / "home"
    home.mkdir()
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SATCHEL_") and not key.startswith("XDG_")
    }
    base.update({"HOME": str(home), "SATCHEL_URL": live_server.url})

    def satchel(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "satchel.cli", *args],
            env={**base, **(env or {})},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    return satchel


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def upload(run: Run, *args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = ok_json(run("upload", "--json", *args, env=env))["uploads"]
    return uploads


def test_plain_upload_and_download_are_byte_exact(run: Run, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    (tmp_path / "photo.jpg").write_bytes(data)
    [result] = upload(run, "photo.jpg", "--short")
    assert result["short_url"]
    assert result["link"] == result["download_url"]
    got = ok_json(run("download", result["download_url"], "-o", "out/", "--json"))
    assert got["name"] == "photo.jpg"
    assert not got["e2e"]
    assert (tmp_path / "out" / "photo.jpg").read_bytes() == data
    text = run("download", result["short_url"], "-o", "short.jpg")
    assert text.returncode == 0
    assert "short.jpg" in text.stdout
    assert (tmp_path / "short.jpg").read_bytes() == data


def test_human_output_lists_the_links(run: Run, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hi")
    result = run("upload", "a.txt")
    assert result.returncode == 0, result.stderr
    for label in ("link:", "manage:", "delete:", "expires:"):
        assert label in result.stdout
    assert result.stderr == ""  # no progress bars without a terminal


def test_password_download_needs_the_password(run: Run, tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("protected")
    [result] = upload(run, "p.txt", "--password", "s3cret!")
    refused = run("download", result["link"], "-o", "p1.txt")
    assert refused.returncode == 2
    assert "Password required" in refused.stderr
    assert "--password" in refused.stderr
    wrong = run("download", result["link"], "-o", "p1.txt", "--password", "nope")
    assert wrong.returncode == 2
    assert "Wrong password" in wrong.stderr
    assert run("download", result["link"], "-o", "p1.txt", "--password", "s3cret!").returncode == 0
    assert (tmp_path / "p1.txt").read_text() == "protected"


def test_e2e_key_link_decrypts_and_the_key_stays_off_the_server(
    run: Run, tmp_path: Path, live_server: LiveServer
) -> None:
    data = os.urandom(100_000)
    (tmp_path / "tax return.pdf").write_bytes(data)
    [result] = upload(run, "tax return.pdf", "--e2e", "--short")
    link = result["link"]
    _, key = e2e.parse_link(link)
    assert key is not None
    assert result["e2e"]
    got = ok_json(run("download", link, "-o", "dl/", "--json"))
    assert got["e2e"]
    assert got["name"] == "tax return.pdf"
    assert (tmp_path / "dl" / "tax return.pdf").read_bytes() == data
    short = run("download", result["short_link"], "-o", "short.pdf")
    assert short.returncode == 0
    assert (tmp_path / "short.pdf").read_bytes() == data
    log = live_server.log_text()
    assert e2e.key_to_fragment(key)[2:] not in log
    assert '"route": "/f/{public_id}/{filename:path}"' in log  # the log does hold the downloads
    assert result["download_url"].split("/f/")[1] not in log  # by route, not by file id


def test_wrong_e2e_key_exits_4(run: Run, tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"x" * 1000)
    [result] = upload(run, "a.bin", "--e2e")
    wrong = e2e.share_link(result["download_url"], e2e.new_key())
    failed = run("download", wrong, "-o", "a2.bin", "--json")
    assert failed.returncode == 4
    assert "wrong key" in failed.stderr
    assert json.loads(failed.stdout)["exit_code"] == 4
    assert not (tmp_path / "a2.bin").exists()
    keyless = run("download", result["download_url"], "-o", "a3.bin")
    assert keyless.returncode == 4
    assert "#k=" in keyless.stderr


def test_e2e_password(run: Run, tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# private\n")
    [result] = upload(run, "notes.md", "--e2e-password", "hunter22")
    assert result["link"].endswith("#p")
    missing = run("download", result["link"], "-o", "n1.md")
    assert missing.returncode == 4
    assert "password" in missing.stderr
    done = run("download", result["link"], "-o", "n2.md", "--password", "hunter22")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "n2.md").read_text() == "# private\n"


def test_several_files_become_one_zip_unless_separate(run: Run, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.txt").write_text("beta")
    [zipped] = upload(run, "a.txt", "b.txt")
    assert zipped["files"] == 2
    ok_json(run("download", zipped["link"], "-o", "both.zip", "--json"))
    with zipfile.ZipFile(tmp_path / "both.zip") as archive:
        assert sorted(archive.namelist()) == ["a.txt", "b.txt"]
        assert archive.read("b.txt") == b"beta"
    apart = upload(run, "a.txt", "b.txt", "--separate", "--expires", "30m")
    assert [r["name"] for r in apart] == ["a.txt", "b.txt"]
    assert apart[0]["download_url"] != apart[1]["download_url"]


def test_manage_and_delete(run: Run, tmp_path: Path) -> None:
    (tmp_path / "m.txt").write_text("manage me")
    [result] = upload(run, "m.txt")
    token = result["manage_url"].rsplit("/", 1)[1]
    shown = ok_json(run("manage", token, "--json"))
    assert shown["public"] is True
    assert shown["name"] == "m.txt"
    changed = ok_json(run("manage", token, "--private", "--max-downloads", "5", "--json"))
    assert changed["public"] is False
    assert changed["max_downloads"] == 5
    assert run("download", result["link"], "-o", "x.txt").returncode == 2  # private now
    assert run("delete", result["delete_url"]).returncode == 0
    gone = run("download", result["link"], "-o", "x.txt")
    assert gone.returncode == 2
    assert "404" in gone.stderr
    assert run("manage", token).returncode == 2


def test_drive_commands(run: Run, tmp_path: Path, credentials: dict[str, str]) -> None:
    def drive(*args: str) -> Any:
        return ok_json(run("drive", *args, "--json", env=credentials))

    data = os.urandom(50_000)
    (tmp_path / "budget.xlsx").write_bytes(data)
    folder = drive("mkdir", "finance")
    archive = drive("mkdir", "archive", "--parent", str(folder["id"]))
    [put] = drive("put", "budget.xlsx", "--folder", str(folder["id"]))["files"]
    listing = drive("ls", str(folder["id"]))
    assert [f["name"] for f in listing["folders"]] == ["archive"]
    assert [f["id"] for f in listing["files"]] == [put["id"]]
    got = drive("get", str(put["id"]), "-o", "got.xlsx")
    assert got["size"] == len(data)
    assert (tmp_path / "got.xlsx").read_bytes() == data

    assert drive("mv", str(put["id"]), str(archive["id"]))["folder_id"] == archive["id"]
    copy = drive("cp", str(put["id"]), "root")
    assert copy["folder_id"] is None
    assert copy["name"] == "budget.xlsx"
    found = drive("search", "budget")
    assert {put["id"], copy["id"]} <= {f["id"] for f in found["files"]}

    drive("rm", "--folder", str(folder["id"]))
    trash = drive("trash")
    assert folder["id"] in {f["id"] for f in trash["folders"]}
    assert put["id"] in {f["id"] for f in trash["files"]}
    drive("restore", str(folder["id"]), "--type", "folder")
    assert folder["id"] in {f["id"] for f in drive("ls")["folders"]}
    text = run("drive", "ls", str(folder["id"]), env=credentials)
    assert text.returncode == 0
    assert "archive/" in text.stdout


def test_drive_mv_without_v2_keys_says_how(
    run: Run, tmp_path: Path, credentials: dict[str, str]
) -> None:
    result = run(
        "drive", "mv", "1", "root", env={"SATCHEL_API_KEY": credentials["SATCHEL_API_KEY"]}
    )
    assert result.returncode == 1
    assert "--v2-keys" in result.stderr


def test_upload_into_the_drive(run: Run, tmp_path: Path, credentials: dict[str, str]) -> None:
    (tmp_path / "d.txt").write_text("drive")
    [result] = upload(run, "d.txt", "--to-drive", "root", env=credentials)
    assert isinstance(result["drive_file_id"], int)
    assert result["expires_at"] is None


def test_keys_commands(run: Run, credentials: dict[str, str]) -> None:
    created = ok_json(
        run("keys", "create", "--label", "backup", "--permissions", "read,download", "--json",
            env=credentials)
    )  # fmt: skip
    assert created["key"].startswith("sat_")
    assert created["permissions"]["download"]
    assert not created["permissions"]["write"]
    listed = ok_json(run("keys", "list", "--json", env=credentials))["keys"]
    assert created["id"] in {k["id"] for k in listed}
    assert run("keys", "revoke", str(created["id"]), env=credentials).returncode == 0
    listed = ok_json(run("keys", "list", "--json", env=credentials))["keys"]
    assert created["id"] not in {k["id"] for k in listed}
    text = run("keys", "create", "--label", "x", env=credentials)
    assert text.returncode == 0
    assert text.stdout.strip().splitlines()[-1].startswith("sat_")


def test_exit_codes(run: Run, tmp_path: Path, live_server: LiveServer) -> None:
    missing = run("download", f"{live_server.url}/f/{uuid.uuid4()}/x.txt", "--json")
    assert missing.returncode == 2
    assert json.loads(missing.stdout)["exit_code"] == 2
    assert run("upload", "no-such-file.txt").returncode == 1
    assert run("upload").returncode == 1  # argparse usage error
    assert run("keys", "list", env={"SATCHEL_API_KEY": "sat_" + "x" * 40}).returncode == 2
    assert run("keys", "list").returncode == 1  # no key configured
    (tmp_path / "x").write_text("x")
    down = run("upload", "x", env={"SATCHEL_URL": f"http://127.0.0.1:{free_port()}"})
    assert down.returncode == 3
    assert "cannot reach" in down.stderr
    nourl = run("upload", "x", env={"SATCHEL_URL": ""})
    assert nourl.returncode == 1
    assert "SATCHEL_URL" in nourl.stderr


def test_config_file(run: Run, tmp_path: Path, live_server: LiveServer) -> None:
    (tmp_path / "c.txt").write_text("config")
    config = tmp_path / "client.toml"
    config.write_text(f'url = "{live_server.url}"\n')
    result = run("upload", "c.txt", "--json", "--config", str(config), env={"SATCHEL_URL": ""})
    assert ok_json(result)["uploads"][0]["name"] == "c.txt"
    default = tmp_path / "home" / ".config" / "satchel"
    default.mkdir(parents=True)
    (default / "client.toml").write_text(f'url = "{live_server.url}"\n')
    assert run("upload", "c.txt", env={"SATCHEL_URL": ""}).returncode == 0
    (default / "client.toml").write_text('surl = "x"\n')
    bad = run("upload", "c.txt", env={"SATCHEL_URL": ""})
    assert bad.returncode == 1
    assert "unknown key" in bad.stderr


def test_output_into_a_pipe_or_through_a_symlink_is_written_not_replaced(
    run: Run, tmp_path: Path
) -> None:
    data = os.urandom(50_000)
    (tmp_path / "data.bin").write_bytes(data)
    [result] = upload(run, "data.bin")
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    (tmp_path / "link.bin").symlink_to(real)
    assert run("download", result["download_url"], "-o", "link.bin").returncode == 0
    assert (tmp_path / "link.bin").is_symlink()
    assert real.read_bytes() == data
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    done = run("download", result["download_url"], "-o", "pipe")
    reader.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert received == [data]
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a pipe


def test_local_mistakes_exit_1_without_a_traceback(run: Run, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"a")
    [result] = upload(run, "a.txt")
    into_a_file = run("download", result["download_url"], "-o", "a.txt/inside.txt")
    assert into_a_file.returncode == 1
    assert "Traceback" not in into_a_file.stderr
    not_a_link = run("download", "not a url")
    assert not_a_link.returncode == 1
    assert "not a link" in not_a_link.stderr
    both = run("upload", "a.txt", "--e2e", "--password", "pw")
    assert both.returncode == 1
    assert "--e2e-password" in both.stderr


def test_an_e2e_link_without_its_key_fails_before_downloading(run: Run, tmp_path: Path) -> None:
    (tmp_path / "secret.bin").write_bytes(os.urandom(2_000_000))
    [result] = upload(run, "secret.bin", "--e2e")
    keyless = result["link"].split("#", 1)[0]
    failed = run("download", keyless, "-o", "out.bin")
    assert failed.returncode == 4
    assert "#k=" in failed.stderr
    assert not list(tmp_path.glob("out.bin*"))  # nothing fetched, no .part left


def test_the_client_loads_none_of_the_servers_modules() -> None:
    """The client's commands start fast: `satchel upload` never pays for the database layer,
    the web framework or the server, which only `serve`, `jobs` and `admin` need."""
    script = (
        "import sys\n"
        "from satchel.cli import main\n"
        "try:\n"
        "    code = main(['upload', '--url', 'http://127.0.0.1:9', '--e2e', sys.argv[1]])\n"
        "    print('exit', code)\n"
        "except SystemExit:\n"
        "    pass\n"
        "server = ('sqlalchemy', 'alembic', 'starlette', 'granian', 'argon2', 'jinja2')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(server)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, __file__], capture_output=True, text=True, timeout=60
    )
    assert "exit 3" in done.stdout, done.stdout + done.stderr  # the upload ran, and failed
    assert "cannot reach" in done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
