"""``satchel.client`` against a live ``satchel serve``: resumable tus uploads, resumed and
decrypting downloads, links, the drive and keys."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveServer

from satchel.client import IntegrityFailed, PasswordNeeded, SatchelClient, ServerRefused
from satchel.client.download import Progress, headers_for
from satchel.client.tus import TusUploader
from satchel.crypto import e2e

CHUNK = 64 * 1024
ALL_PERMISSIONS = "read,download,write,delete,restore,manage_keys"


@dataclass(frozen=True)
class Account:
    name: str
    api_key: str
    v2_keys: tuple[str, str]


def make_account(server: LiveServer) -> Account:
    name = f"lib{uuid.uuid4().hex[:8]}"
    server.admin("create-user", name, "--password", "a long password 123")
    key = server.admin("create-api-key", name, "--permissions", ALL_PERMISSIONS)
    key1, key2 = server.admin("create-v2-keys", name).split()
    return Account(name, key, (key1, key2))


@pytest.fixture(scope="module")
def account(live_server: LiveServer) -> Account:
    return make_account(live_server)


@pytest.fixture
def client(live_server: LiveServer, account: Account, tmp_path: Path) -> Iterator[SatchelClient]:
    with SatchelClient(
        live_server.url,
        account.api_key,
        v2_keys=account.v2_keys,
        state_dir=tmp_path / "state",
        chunk_size=CHUNK,
    ) as satchel:
        yield satchel


@pytest.fixture
def guest(live_server: LiveServer, tmp_path: Path) -> Iterator[SatchelClient]:
    with SatchelClient(live_server.url, state_dir=tmp_path / "state", chunk_size=CHUNK) as c:
        yield c


def write(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


class Stop(Exception):
    """Stands for the connection or the process going away mid-transfer."""


def stop_after(limit: int) -> Progress:
    def progress(name: str, done: int, total: int | None) -> None:
        if done >= limit:
            raise Stop()

    return progress


def tus_entry(satchel: SatchelClient) -> dict[str, object]:
    entries = json.loads(satchel.upload_state.path.read_text())
    assert len(entries) == 1
    entry: dict[str, object] = next(iter(entries.values()))
    return entry


def test_interrupted_upload_resumes_from_the_servers_offset(
    guest: SatchelClient, live_server: LiveServer, tmp_path: Path
) -> None:
    data = write(tmp_path / "big.bin", 10 * CHUNK + 123)
    log_start = len(live_server.log_text())
    with pytest.raises(Stop):
        guest.upload([tmp_path / "big.bin"], progress=stop_after(3 * CHUNK))
    url = str(tus_entry(guest)["url"])
    uploader = TusUploader(guest.http, guest.url("/tus/"), {}, guest.upload_state)
    assert uploader.offset(url) == 3 * CHUNK

    seen: list[int] = []
    [result] = guest.upload(
        [tmp_path / "big.bin"], progress=lambda name, done, total: seen.append(done)
    )
    assert seen[0] == 3 * CHUNK  # the second run started where the server was
    assert json.loads(guest.upload_state.path.read_text()) == {}
    assert httpx.get(result.download_url).content == data
    # The access lines of this test's requests (they name the route, not the upload's id).
    patches = re.findall(
        r'"message": "PATCH /tus/\{upload_id\} 204"', live_server.log_text()[log_start:]
    )
    assert len(patches) == 11  # every chunk sent once: nothing again after the resume


class DropOneAnswer(httpx.HTTPTransport):
    """Sends the third PATCH, then loses its answer, as a dropped connection does."""

    def __init__(self) -> None:
        super().__init__()
        self.patches = 0
        self.methods: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.methods.append(request.method)
        if request.method == "PATCH":
            self.patches += 1
            if self.patches == 3:
                response.close()
                raise httpx.ReadError("connection reset", request=request)
        return response


def test_a_failed_patch_is_retried_from_the_offset_head_reports(
    live_server: LiveServer, tmp_path: Path
) -> None:
    data = write(tmp_path / "flaky.bin", 5 * CHUNK)
    transport = DropOneAnswer()
    with SatchelClient(
        live_server.url, state_dir=tmp_path / "s", chunk_size=CHUNK, transport=transport
    ) as satchel:
        [result] = satchel.upload([tmp_path / "flaky.bin"])
    assert transport.methods == ["POST"] + ["PATCH"] * 3 + ["HEAD"] + ["PATCH"] * 2 + ["GET"]
    assert httpx.get(result.download_url).content == data


def test_empty_file_uploads_through_tus(guest: SatchelClient, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    [result] = guest.upload([tmp_path / "empty.txt"])
    assert result.size == 0
    assert httpx.get(result.download_url).content == b""


class RecordHeaders(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)


def test_download_resumes_a_partial_file(guest: SatchelClient, tmp_path: Path) -> None:
    data = write(tmp_path / "movie.bin", 3 * 1024 * 1024 + 5)
    [result] = guest.upload([tmp_path / "movie.bin"])
    out = tmp_path / "out.bin"
    with pytest.raises(Stop):
        guest.download(result.download_url, out, progress=stop_after(1))
    part = tmp_path / "out.bin.part"
    have = part.stat().st_size
    assert 0 < have < len(data)

    transport = RecordHeaders()
    with SatchelClient(guest.base_url, state_dir=tmp_path / "state", transport=transport) as again:
        done = again.download(result.download_url, out)
    assert done.path == out
    assert out.read_bytes() == data
    assert not part.exists()
    assert transport.requests[0].headers["Range"] == f"bytes={have}-"


def test_e2e_key_link_round_trip_and_the_key_never_reaches_the_server(
    guest: SatchelClient, live_server: LiveServer, tmp_path: Path
) -> None:
    data = write(tmp_path / "secret plans.pdf", 200_000)
    [result] = guest.upload([tmp_path / "secret plans.pdf"], e2e=True)
    assert result.e2e
    assert result.size == len(data)
    url, key = e2e.parse_link(result.link)
    assert url == result.download_url
    assert key is not None
    assert result.download_url.endswith("/encrypted")
    stored = httpx.get(result.download_url)
    assert stored.headers["x-e2e-format"] == "v1"
    assert data not in stored.content

    out = guest.download(result.link, f"{tmp_path}/dl/")
    assert out.name == "secret plans.pdf"
    assert out.e2e
    assert (tmp_path / "dl" / "secret plans.pdf").read_bytes() == data
    fragment = e2e.key_to_fragment(key)[2:]
    assert fragment not in live_server.log_text()


def test_e2e_with_a_wrong_key_fails_the_integrity_check(
    guest: SatchelClient, tmp_path: Path
) -> None:
    write(tmp_path / "a.bin", 1000)
    [result] = guest.upload([tmp_path / "a.bin"], e2e=True)
    wrong = e2e.share_link(result.download_url, e2e.new_key())
    with pytest.raises(IntegrityFailed, match="wrong key"):
        guest.download(wrong, tmp_path / "x.bin")
    assert not (tmp_path / "x.bin").exists()


def test_e2e_password_round_trip(guest: SatchelClient, tmp_path: Path) -> None:
    data = write(tmp_path / "diary.txt", 5000)
    [result] = guest.upload([tmp_path / "diary.txt"], e2e_password="correct horse")
    assert result.link.endswith("#p")
    with pytest.raises(IntegrityFailed, match="password"):
        guest.download(result.link, tmp_path / "d1")
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return "correct horse"

    out = guest.download(result.link, tmp_path / "d2.txt", ask_password=ask)
    assert out.path.read_bytes() == data
    assert len(asked) == 1


def test_interrupted_e2e_upload_resumes_with_the_same_key(
    guest: SatchelClient, tmp_path: Path
) -> None:
    data = write(tmp_path / "e2e.bin", 6 * CHUNK)
    with pytest.raises(Stop):
        guest.upload([tmp_path / "e2e.bin"], e2e=True, progress=stop_after(2 * CHUNK))
    [result] = guest.upload([tmp_path / "e2e.bin"], e2e=True)
    assert guest.download(result.link, tmp_path / "back.bin").path.read_bytes() == data


def test_password_protected_download(guest: SatchelClient, tmp_path: Path) -> None:
    data = write(tmp_path / "p.bin", 100)
    [result] = guest.upload([tmp_path / "p.bin"], password="open sesame", resumable=False)
    with pytest.raises(PasswordNeeded):
        guest.download(result.link, tmp_path / "a.bin")
    with pytest.raises(ServerRefused) as refused:
        guest.download(result.link, tmp_path / "a.bin", password="wrong")
    assert refused.value.status == 403
    assert guest.download(result.link, tmp_path / "a.bin", password="open sesame")
    assert (tmp_path / "a.bin").read_bytes() == data


def test_manage_and_delete(guest: SatchelClient, tmp_path: Path) -> None:
    write(tmp_path / "m.txt", 10)
    [result] = guest.upload([tmp_path / "m.txt"], short=True)
    assert result.short_url
    assert "/s/" in result.short_url
    shown = guest.manage(result.manage_url)
    assert shown["public"] is True
    assert shown["max_downloads"] is None
    changed = guest.manage(result.manage_url, max_downloads=2, public=False, password="pw")
    assert changed["public"] is False
    assert changed["max_downloads"] == 2
    assert changed["has_password"] is True
    guest.delete(result.delete_url)
    with pytest.raises(ServerRefused) as gone:
        guest.manage(result.manage_url)
    assert gone.value.status == 404


def test_several_files_one_zip_or_separate(guest: SatchelClient, tmp_path: Path) -> None:
    write(tmp_path / "a.txt", 10)
    write(tmp_path / "b.txt", 20)
    [zipped] = guest.upload([tmp_path / "a.txt", tmp_path / "b.txt"])
    assert zipped.files == 2
    assert zipped.name == "files.zip"
    apart = guest.upload([tmp_path / "a.txt", tmp_path / "b.txt"], separate=True)
    assert [r.name for r in apart] == ["a.txt", "b.txt"]


def test_drive_operations(client: SatchelClient, tmp_path: Path) -> None:
    data = write(tmp_path / "report.pdf", 3 * CHUNK + 7)
    drive = client.drive
    folder = drive.mkdir("reports")
    other = drive.mkdir("archive")
    [put] = drive.put([tmp_path / "report.pdf"], folder["id"])
    assert put["folder_id"] == folder["id"]
    assert put["size"] == len(data)
    assert [f["name"] for f in drive.ls(folder["id"]).files] == ["report.pdf"]
    assert drive.get(put["id"], tmp_path / "got.pdf").path.read_bytes() == data

    moved = drive.mv(put["id"], other["id"])
    assert moved["folder_id"] == other["id"]
    copy = drive.cp(put["id"], None)
    assert copy["folder_id"] is None
    assert copy["id"] != put["id"]
    drive.mv(folder["id"], other["id"], folder=True)
    assert drive.ls(folder["id"]).folder["parent_id"] == other["id"]  # type: ignore[index]

    assert {f["id"] for f in drive.search("report").files} >= {put["id"], copy["id"]}
    drive.rm(copy["id"])
    assert copy["id"] in {f["id"] for f in drive.trash().files}
    drive.restore(copy["id"], kind="file")
    assert copy["id"] in {f["id"] for f in drive.ls().files}


def test_keys_create_list_revoke(client: SatchelClient) -> None:
    created = client.keys.create("ci", ["read"], ["192.0.2.0/24"])
    assert created["key"].startswith("sat_")
    assert created["permissions"]["read"]
    assert created["id"] in {k["id"] for k in client.keys.list()}
    client.keys.revoke(created["id"])
    assert created["id"] not in {k["id"] for k in client.keys.list()}


def test_the_api_key_goes_only_to_its_own_server() -> None:
    headers = headers_for("http://files.example:8000", "sat_x")
    assert headers("http://files.example:8000/f/1/a") == {"Authorization": "Bearer sat_x"}
    assert headers("http://elsewhere.example/f/1/a") == {}
    assert headers("https://files.example:8000/f/1/a") == {}


def test_a_changed_password_restarts_an_interrupted_upload(
    guest: SatchelClient, tmp_path: Path
) -> None:
    data = write(tmp_path / "pw.bin", 6 * CHUNK)
    with pytest.raises(Stop):
        guest.upload(
            [tmp_path / "pw.bin"], e2e_password="first one", progress=stop_after(2 * CHUNK)
        )
    first_url = tus_entry(guest)["url"]
    assert "first one" not in guest.upload_state.path.read_text()
    seen: list[int] = []
    [result] = guest.upload(
        [tmp_path / "pw.bin"],
        e2e_password="second one",
        progress=lambda name, done, total: seen.append(done),
    )
    assert seen[0] == 0  # the bytes sent under the first password were not kept
    back = guest.download(result.link, tmp_path / "back.bin", e2e_password="second one")
    assert back.path.read_bytes() == data
    assert httpx.head(str(first_url), headers={"Tus-Resumable": "1.0.0"}).status_code == 404
