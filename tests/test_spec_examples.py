"""Every curl line and Python/JS snippet of the public API documents, run against a live
server with only the host changed (placeholders such as ``{file_id}`` get real values)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from tests.conftest import LiveServer

EXAMPLES = Path(__file__).with_name("spec_examples")
DOC_HOST = "https://one.gy"


def run_snippet(name: str, server: LiveServer, cwd: Path, **placeholders: str) -> str:
    code = (EXAMPLES / name).read_text().replace(DOC_HOST, server.url)
    for key, value in placeholders.items():
        code = code.replace(key, value)
    script = cwd / name
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def printed_dict(output: str) -> dict[str, Any]:
    # The snippets print() a dict; JSON true/false/null come out as Python literals.
    import ast

    value = ast.literal_eval(output.strip().splitlines()[-1])
    assert isinstance(value, dict)
    return value


def curl(line: str, server: LiveServer, cwd: Path) -> str:
    command = line.replace(DOC_HOST, server.url)
    result = subprocess.run(
        command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "file.txt").write_text("hello from the docs\n")
    (tmp_path / "file1.txt").write_text("first file\n")
    (tmp_path / "file2.pdf").write_bytes(b"%PDF-1.4 not really\n")
    return tmp_path


def upload_file(server: LiveServer, content: bytes, **data: str) -> dict[str, Any]:
    response = httpx.post(server.url + "/upload", files={"files": ("file.txt", content)}, data=data)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def test_python_upload(live_server: LiveServer, workdir: Path) -> None:
    result = printed_dict(run_snippet("upload_single.py", live_server, workdir))
    assert result["redirect"].startswith("/manage/")
    assert result["download_url"].startswith(live_server.url + "/f/")
    assert httpx.get(result["download_url"]).text == "hello from the docs\n"


def test_python_multiple_upload(live_server: LiveServer, workdir: Path) -> None:
    result = printed_dict(run_snippet("upload_multiple.py", live_server, workdir))
    assert result["download_url"].endswith(".zip")


def test_curl_upload_two_files(live_server: LiveServer, workdir: Path) -> None:
    (workdir / "path" / "to").mkdir(parents=True)
    shutil.copy(workdir / "file.txt", workdir / "path/to/file.txt")
    shutil.copy(workdir / "file2.pdf", workdir / "path/to/another.pdf")
    line = (
        "curl -X POST https://one.gy/upload \\\n"
        '   -F "files=@/path/to/file.txt" \\\n'
        '   -F "files=@/path/to/another.pdf"'
    )
    output = curl(line.replace("@/path", f"@{workdir}/path"), live_server, workdir)
    assert json.loads(output)["download_url"].endswith("files.zip")


def test_curl_downloads_public_and_protected(live_server: LiveServer, workdir: Path) -> None:
    public = upload_file(live_server, b"public body")
    out = workdir / "public"
    out.mkdir()
    curl(f"curl -O -J https://one.gy/f/{public['file_id']}", live_server, out)
    assert (out / "file.txt").read_bytes() == b"public body"
    protected = upload_file(live_server, b"protected body", password="yourpassword")
    out = workdir / "protected"
    out.mkdir()
    curl(f'curl -O -J "https://one.gy/f/{protected["file_id"]}?pw=yourpassword"', live_server, out)
    assert (out / "file.txt").read_bytes() == b"protected body"


def test_python_download_with_password(live_server: LiveServer, workdir: Path) -> None:
    result = upload_file(live_server, b"downloaded by requests", password="yourpassword")
    run_snippet("download.py", live_server, workdir, **{"{file_id}": result["file_id"]})
    assert (workdir / "downloaded_file.txt").read_bytes() == b"downloaded by requests"


def test_python_e2e_upload_then_download_and_decrypt(
    live_server: LiveServer, workdir: Path
) -> None:
    uploaded = printed_dict(run_snippet("e2e_upload.py", live_server, workdir))
    file_id = uploaded["download_url"].split("/f/", 1)[1].split("/")[0]
    headers = httpx.get(f"{live_server.url}/f/{file_id}/encrypted").headers
    salt = bytes(int(b) for b in headers["x-e2e-salt"].split(","))
    iv = bytes(int(b) for b in headers["x-e2e-iv"].split(","))
    run_snippet(
        "e2e_download.py",
        live_server,
        workdir,
        **{
            "{file_id}": file_id,
            "YOUR_BASE64_SALT": base64.b64encode(salt).decode(),
            "YOUR_BASE64_IV": base64.b64encode(iv).decode(),
        },
    )
    assert (workdir / "decrypted_file.txt").read_text() == "hello from the docs\n"


def test_curl_e2e_upload(live_server: LiveServer, workdir: Path) -> None:
    salt, iv = os.urandom(16), os.urandom(12)
    (workdir / "file.enc").write_bytes(b"\x01" * 64)
    line = (
        'curl -X POST https://one.gy/upload \\\n-F "files=@file.enc" \\\n-F "e2e=true" \\\n'
        '-F "e2e_salt=YOUR_BASE64_SALT" \\\n-F "e2e_iv=YOUR_BASE64_IV"'
    )
    line = line.replace("YOUR_BASE64_SALT", base64.b64encode(salt).decode())
    line = line.replace("YOUR_BASE64_IV", base64.b64encode(iv).decode())
    result = json.loads(curl(line, live_server, workdir))
    encrypted = httpx.get(f"{live_server.url}/f/{result['file_id']}/encrypted")
    assert encrypted.content == b"\x01" * 64
    assert encrypted.headers["x-e2e-iv"] == ",".join(map(str, iv))


def test_python_manage_update(live_server: LiveServer, workdir: Path) -> None:
    result = upload_file(live_server, b"managed")
    token = result["redirect"].rsplit("/", 1)[1]
    printed = printed_dict(
        run_snippet("manage_update.py", live_server, workdir, **{"{management_token}": token})
    )
    assert printed["success"] is True
    assert printed["has_password"] is True
    info = httpx.get(f"{live_server.url}/manage/{token}").json()
    assert info["public"] is True
    assert info["has_password"] is True


def test_delete_with_python_and_curl(live_server: LiveServer, workdir: Path) -> None:
    first = upload_file(live_server, b"one")
    token = first["redirect"].rsplit("/", 1)[1]
    printed = printed_dict(
        run_snippet("delete.py", live_server, workdir, **{"{management_token}": token})
    )
    assert printed == {"success": True}
    assert httpx.get(first["download_url"]).status_code == 404
    second = upload_file(live_server, b"two")
    token = second["redirect"].rsplit("/", 1)[1]
    output = curl(f"curl -X POST https://one.gy/delete/{token}", live_server, workdir)
    assert json.loads(output) == {"success": True}


def test_js_encrypt_and_upload(live_server: LiveServer, workdir: Path) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed to run the documented JS example"
    snippet = (EXAMPLES / "encrypt_and_upload.js").read_text()
    snippet = snippet.replace('fetch("/upload"', f'fetch("{live_server.url}/upload"')
    runner = snippet + (
        '\nconst file = new File([new TextEncoder().encode("from the browser example")], "note.txt");\n'
        'encryptAndUpload(file, "pw").then((r) => console.log(JSON.stringify(r)));\n'
    )
    (workdir / "run.mjs").write_text(runner)
    result = subprocess.run(
        [node, "run.mjs"], cwd=workdir, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    uploaded = json.loads(result.stdout)
    assert uploaded["download_url"].endswith("/note.txt.enc")
    encrypted = httpx.get(f"{live_server.url}/f/{uploaded['file_id']}/encrypted")
    salt = bytes(int(b) for b in encrypted.headers["x-e2e-salt"].split(","))
    iv = bytes(int(b) for b in encrypted.headers["x-e2e-iv"].split(","))
    key = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=100000).derive(
        b"pw"
    )
    assert AESGCM(key).decrypt(iv, encrypted.content, None) == b"from the browser example"
