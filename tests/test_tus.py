"""The tus 1.0.0 endpoint at /tus/: the protocol, its refusals, Satchel's options in
Upload-Metadata, ownership, expiry, what reaches the disk, and resuming after a cut."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from httpx import Response
from sqlalchemy import select
from starlette.testclient import TestClient
from tests.conftest import LiveServer
from tests.helpers import bearer, make_folder, path_of, user_key

from satchel.config import Settings, load_settings
from satchel.core.accounts import NewUser
from satchel.core.actors import Guest
from satchel.db.models import TusUpload, utcnow
from satchel.web.app import create_app
from satchel.web.state import SESSION_COOKIE, AppState

MiB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"
# Odd piece sizes: no request ends on a boundary of the 1 MiB chunks data is sealed in.
ODD_PIECES = (1, 700_001, MiB + 3, 333_333, MiB - 1, 2 * MiB + 17)


def payload(size: int, seed: bytes = b"satchel") -> bytes:
    """``size`` bytes that differ at every offset, so a misplaced piece shows."""
    blocks = []
    counter = 0
    while sum(map(len, blocks)) < size:
        blocks.append(hashlib.sha256(seed + counter.to_bytes(8, "big")).digest() * 128)
        counter += 1
    return b"".join(blocks)[:size]


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def metadata(**fields: str) -> str:
    return ",".join(f"{key} {b64(value)}" for key, value in fields.items())


def state_of(client: TestClient) -> AppState:
    state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
    return state


def create(
    client: TestClient,
    length: int,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    **fields: str,
) -> Response:
    sent = {**TUS, "Upload-Length": str(length), **(headers or {})}
    if fields:
        sent["Upload-Metadata"] = metadata(**fields)
    if body is not None:
        sent["Content-Type"] = OCTETS
    return client.post("/tus/", headers=sent, content=body)


def new_upload(
    client: TestClient, length: int, headers: dict[str, str] | None = None, **fields: str
) -> str:
    """Creates an upload; its path (``/tus/<id>``)."""
    response = create(client, length, headers, **fields)
    assert response.status_code == 201, response.text
    return path_of(response.headers["location"])


def patch(
    client: TestClient,
    path: str,
    offset: int,
    data: bytes,
    headers: dict[str, str] | None = None,
) -> Response:
    sent = {**TUS, "Content-Type": OCTETS, "Upload-Offset": str(offset), **(headers or {})}
    return client.patch(path, content=data, headers=sent)


def head(client: TestClient, path: str, headers: dict[str, str] | None = None) -> Response:
    return client.head(path, headers={**TUS, **(headers or {})})


def offset_of(client: TestClient, path: str, headers: dict[str, str] | None = None) -> int:
    response = head(client, path, headers)
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


def send_in_pieces(
    client: TestClient,
    path: str,
    data: bytes,
    pieces: tuple[int, ...] = ODD_PIECES,
    headers: dict[str, str] | None = None,
) -> Response:
    """PATCHes ``data`` in pieces of the given sizes (the last takes the rest); the last answer."""
    offset = 0
    response: Response | None = None
    sizes = iter(pieces)
    while offset < len(data):
        piece = data[offset : offset + next(sizes, len(data))]
        response = patch(client, path, offset, piece, headers)
        assert response.status_code == 204, response.text
        offset += len(piece)
        assert response.headers["upload-offset"] == str(offset)
    assert response is not None
    return response


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def blob_key_of(client: TestClient, path: str) -> str:
    with state_of(client).db.read() as session:
        upload = session.get(TusUpload, path.rsplit("/", 1)[1])
        assert upload is not None
        return upload.blob_key


def staged_size(client: TestClient, path: str) -> int | None:
    size: int | None = state_of(client).files.store.staging_size(blob_key_of(client, path))
    return size


def result_of(client: TestClient, path: str, headers: dict[str, str] | None = None) -> Response:
    return client.get(f"{path}/result", headers=headers)


# -- discovery, creation, HEAD ---------------------------------------------------------------


def test_options_announces_version_extensions_checksums_and_size(
    client: TestClient, settings: Settings
) -> None:
    response = client.options("/tus/")
    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["tus-version"] == "1.0.0"
    extensions = set(response.headers["tus-extension"].split(","))
    assert extensions == {
        "creation",
        "creation-with-upload",
        "expiration",
        "checksum",
        "termination",
    }
    assert set(response.headers["tus-checksum-algorithm"].split(",")) == {"sha1", "sha256"}
    assert response.headers["tus-max-size"] == str(settings.guest_max_upload_size)


def test_creation_answers_location_expiry_and_offset_zero(client: TestClient) -> None:
    before = utcnow()
    response = create(client, 12345, filename="notes.txt")
    assert response.status_code == 201, response.text
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["upload-offset"] == "0"
    location = response.headers["location"]
    assert location.startswith("http://testserver/tus/")
    expires = parsedate_to_datetime(response.headers["upload-expires"])
    assert timedelta(hours=23, minutes=59) < expires - before < timedelta(hours=24, minutes=1)

    found = head(client, path_of(location))
    assert found.status_code == 200
    assert found.headers["upload-offset"] == "0"
    assert found.headers["upload-length"] == "12345"
    assert found.headers["upload-metadata"] == metadata(filename="notes.txt")
    assert found.headers["cache-control"] == "no-store"
    assert "upload-expires" in found.headers
    # Not finished: no result yet.
    assert result_of(client, path_of(location)).status_code == 409


def test_odd_pieces_over_several_requests_download_byte_exact(client: TestClient) -> None:
    data = payload(5 * MiB + 12_345)
    path = new_upload(client, len(data), filename="big.bin", filetype="application/x-test")
    last = send_in_pieces(client, path, data)
    assert offset_of(client, path) == len(data)

    result = result_of(client, path)
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["name"] == "big.bin"
    assert body["size"] == len(data)
    assert body["download_url"] == last.headers["satchel-download-url"]
    assert body["manage_url"] == last.headers["satchel-manage-url"]
    assert "satchel-short-url" not in last.headers
    download = client.get(path_of(last.headers["satchel-download-url"]))
    assert download.status_code == 200
    assert download.content == data
    assert client.get(path_of(body["download_url"])).content == data
    assert client.get(body["redirect"]).json()["size"] == len(data)
    # A finished upload takes no more data.
    assert patch(client, path, len(data), b"x").status_code == 409


def test_creation_with_upload_whole_file(client: TestClient) -> None:
    data = payload(MiB + 4321)
    response = create(client, len(data), body=data, filename="one-shot.bin")
    assert response.status_code == 201, response.text
    assert response.headers["upload-offset"] == str(len(data))
    download = client.get(path_of(response.headers["satchel-download-url"]))
    assert download.content == data
    result = result_of(client, path_of(response.headers["location"])).json()
    assert result["download_url"] == response.headers["satchel-download-url"]


def test_creation_with_upload_of_a_part_then_patch(client: TestClient) -> None:
    data = payload(2 * MiB + 99)
    response = create(client, len(data), body=data[:777_777], filename="part.bin")
    assert response.status_code == 201, response.text
    assert response.headers["upload-offset"] == "777777"
    assert "satchel-download-url" not in response.headers
    path = path_of(response.headers["location"])
    assert offset_of(client, path) == 777_777
    last = patch(client, path, 777_777, data[777_777:])
    assert last.status_code == 204
    assert client.get(path_of(last.headers["satchel-download-url"])).content == data


def test_empty_file(client: TestClient) -> None:
    response = create(client, 0, body=b"", filename="empty.txt")
    assert response.status_code == 201, response.text
    path = path_of(response.headers["location"])
    if "satchel-download-url" not in response.headers:
        # A client may also finish a zero-length upload with an empty PATCH.
        assert patch(client, path, 0, b"").status_code == 204
    result = result_of(client, path)
    assert result.status_code == 200, "an empty upload should be complete once created"
    assert client.get(path_of(result.json()["download_url"])).content == b""


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [None, "0.2.2", "1.0"])
def test_missing_or_other_tus_version_is_412(client: TestClient, version: str | None) -> None:
    path = new_upload(client, 10)
    headers = {"Upload-Length": "10"}
    if version is not None:
        headers["Tus-Resumable"] = version
    for response in (
        client.post("/tus/", headers=headers),
        client.head(path, headers=headers),
        client.patch(
            path,
            content=b"x",
            headers={**headers, "Content-Type": OCTETS, "Upload-Offset": "0"},
        ),
        client.delete(path, headers=headers),
    ):
        assert response.status_code == 412
    assert offset_of(client, path) == 0


def test_412_names_the_version_the_server_speaks(client: TestClient) -> None:
    response = client.post("/tus/", headers={"Tus-Resumable": "0.2.2", "Upload-Length": "10"})
    assert response.status_code == 412
    # tus 1.0.0: a 412 for an unsupported version MUST include Tus-Version.
    assert response.headers.get("tus-version") == "1.0.0", (
        f"412 without Tus-Version; headers: {dict(response.headers)}"
    )


def test_error_answers_carry_tus_resumable(client: TestClient) -> None:
    path = new_upload(client, 10)
    answers = {
        "412 bad version": client.post("/tus/", headers={"Upload-Length": "10"}),
        "400 no length": client.post("/tus/", headers=TUS),
        "404 unknown": head(client, "/tus/nope"),
        "409 wrong offset": patch(client, path, 5, b"x"),
        "415 content type": client.patch(path, content=b"x", headers={**TUS, "Upload-Offset": "0"}),
    }
    # tus 1.0.0: Tus-Resumable MUST be in every response except to OPTIONS.
    missing = [name for name, answer in answers.items() if "tus-resumable" not in answer.headers]
    assert not missing, f"answers without Tus-Resumable: {missing}"


def test_upload_length_is_required_and_deferring_it_is_refused(client: TestClient) -> None:
    missing = client.post("/tus/", headers=TUS)
    assert missing.status_code == 400
    assert "Upload-Length" in missing.json()["error"]
    assert client.post("/tus/", headers={**TUS, "Upload-Length": "-5"}).status_code == 400
    assert client.post("/tus/", headers={**TUS, "Upload-Length": "ten"}).status_code == 400
    deferred = client.post("/tus/", headers={**TUS, "Upload-Defer-Length": "1"})
    assert deferred.status_code == 400
    assert "Upload-Defer-Length" in deferred.json()["error"]


@pytest.fixture
def limited(settings: Settings) -> Iterator[TestClient]:
    """Guests may send 64 KiB; a user's package holds 100 KiB in all."""
    small = load_settings(
        environ={},
        overrides={
            **settings.values,
            "guest_max_upload_size": "64KiB",
            "packages": {"free": {"max_storage_bytes": "100KiB"}},
        },
    )
    with TestClient(create_app(small, migrate=False, run_jobs=False)) as test_client:
        yield test_client


def test_too_large_for_the_limit_is_413_at_creation(limited: TestClient) -> None:
    assert limited.options("/tus/").headers["tus-max-size"] == str(64 * 1024)
    assert create(limited, 64 * 1024).status_code == 201
    response = create(limited, 64 * 1024 + 1)
    assert response.status_code == 413
    assert "too large" in response.json()["error"]
    with state_of(limited).db.read() as session:
        assert session.query(TusUpload).count() == 1


def test_quota_is_507_at_creation(limited: TestClient) -> None:
    auth = bearer(user_key(limited, "alice", "write"))
    assert create(limited, 100 * 1024, auth).status_code == 201
    response = create(limited, 100 * 1024 + 1, auth)
    assert response.status_code == 507
    assert "quota" in response.json()["error"]


def test_quota_is_checked_again_when_the_upload_finishes(limited: TestClient) -> None:
    auth = bearer(user_key(limited, "alice", "write"))
    first = new_upload(limited, 60 * 1024, auth, filename="first.bin")
    second = new_upload(limited, 60 * 1024, auth, filename="second.bin")  # each fits alone
    assert patch(limited, first, 0, payload(60 * 1024), auth).status_code == 204
    key = blob_key_of(limited, second)
    response = patch(limited, second, 0, payload(60 * 1024, b"other"), auth)
    assert response.status_code == 507, (
        f"{response.status_code}: the last PATCH took the user past their quota "
        "(as /upload checks again once the file is in)"
    )
    store = state_of(limited).files.store
    assert store.staging_size(key) is None
    assert len(list(store.iter_blobs())) == 1
    assert head(limited, second, auth).status_code == 404


@pytest.mark.parametrize(
    "header",
    [
        "filename not*base64",
        "filename " + base64.b64encode(b"\xff\xfe").decode(),
        f"filename {b64('a')},filename {b64('b')}",
        "x" * 9000,
    ],
)
def test_bad_metadata_is_400(client: TestClient, header: str) -> None:
    response = client.post(
        "/tus/", headers={**TUS, "Upload-Length": "5", "Upload-Metadata": header}
    )
    assert response.status_code == 400
    assert "Upload-Metadata" in response.json()["error"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_downloads", "abc", "max_downloads"),
        ("expires", "forever-ish", "expir"),
        ("public", "perhaps", "public"),
        ("short_url", "maybe", "short_url"),
        ("folder_id", "x1", "folder_id"),
    ],
)
def test_bad_options_in_metadata_are_400(
    client: TestClient, field: str, value: str, message: str
) -> None:
    response = create(client, 5, **{field: value})
    assert response.status_code == 400
    assert message in response.json()["error"].lower()


def test_guest_cannot_create_a_drive_upload(client: TestClient) -> None:
    response = create(client, 5, is_temp="false")
    assert response.status_code == 401


def test_wrong_offset_is_409_and_nothing_is_kept(client: TestClient) -> None:
    data = payload(3000)
    path = new_upload(client, len(data))
    assert patch(client, path, 0, data[:1000]).status_code == 204
    for offset in (0, 999, 1001, 5000):
        response = patch(client, path, offset, data[offset : offset + 10])
        assert response.status_code == 409, offset
    assert offset_of(client, path) == 1000
    assert patch(client, path, 1000, data[1000:]).status_code == 204


def test_missing_upload_offset_is_400(client: TestClient) -> None:
    path = new_upload(client, 10)
    response = client.patch(path, content=b"x", headers={**TUS, "Content-Type": OCTETS})
    assert response.status_code == 400


def test_a_patch_while_another_is_writing_is_409(client: TestClient) -> None:
    path = new_upload(client, 100)
    state = state_of(client)
    # Another request holds the upload, as a PATCH does while its body streams in.
    running = state.tus.begin(path.rsplit("/", 1)[1], 0, Guest(ip="testclient"))
    try:
        assert patch(client, path, 0, b"y" * 10).status_code == 409
    finally:
        running.rollback()
    assert patch(client, path, 0, b"y" * 10).status_code == 204


def test_body_past_upload_length_is_400_and_nothing_is_kept(client: TestClient) -> None:
    path = new_upload(client, 1000)
    assert patch(client, path, 0, b"a" * 600).status_code == 204
    declared = patch(client, path, 600, b"b" * 401)
    assert declared.status_code == 400
    assert "Upload-Length" in declared.json()["error"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: found while streaming
        yield b"c" * 300
        yield b"c" * 300

    streamed = client.patch(
        path,
        content=chunked(),
        headers={**TUS, "Content-Type": OCTETS, "Upload-Offset": "600"},
    )
    assert streamed.status_code == 400
    assert offset_of(client, path) == 600
    last = patch(client, path, 600, b"d" * 400)
    assert last.status_code == 204
    assert client.get(path_of(last.headers["satchel-download-url"])).content == (
        b"a" * 600 + b"d" * 400
    )


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "text/plain"])
def test_patch_with_another_content_type_is_415(
    client: TestClient, content_type: str | None
) -> None:
    path = new_upload(client, 10)
    headers = {**TUS, "Upload-Offset": "0"}
    if content_type:
        headers["Content-Type"] = content_type
    response = client.patch(path, content=b"0123456789", headers=headers)
    assert response.status_code == 415
    assert offset_of(client, path) == 0


@pytest.mark.parametrize("value", ["md5 AAAA", "crc32 AAAA", "sha256 not*base64"])
def test_unsupported_or_garbled_checksum_is_400(client: TestClient, value: str) -> None:
    path = new_upload(client, 10)
    response = patch(client, path, 0, b"0123456789", {"Upload-Checksum": value})
    assert response.status_code == 400
    assert offset_of(client, path) == 0


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_checksums_are_checked(client: TestClient, algorithm: str) -> None:
    data = payload(2 * MiB + 501)
    path = new_upload(client, len(data), filename="checked.bin")
    first = data[: MiB + 250]
    ok = patch(client, path, 0, first, {"Upload-Checksum": checksum(algorithm, first)})
    assert ok.status_code == 204
    staged = staged_size(client, path)

    rest = data[len(first) :]
    bad = patch(client, path, len(first), rest, {"Upload-Checksum": checksum(algorithm, b"x")})
    assert bad.status_code == 460
    assert "checksum" in bad.json()["error"].lower()
    assert offset_of(client, path) == len(first)
    assert staged_size(client, path) == staged

    last = patch(client, path, len(first), rest, {"Upload-Checksum": checksum(algorithm, rest)})
    assert last.status_code == 204
    assert client.get(path_of(last.headers["satchel-download-url"])).content == data


def test_termination_deletes_the_upload_and_its_staged_data(client: TestClient) -> None:
    path = new_upload(client, 3 * MiB)
    assert patch(client, path, 0, payload(MiB + 11)).status_code == 204
    key = blob_key_of(client, path)
    store = state_of(client).files.store
    assert store.staging_size(key)
    response = client.delete(path, headers=TUS)
    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert head(client, path).status_code == 404
    assert patch(client, path, MiB + 11, b"x").status_code == 404
    assert client.delete(path, headers=TUS).status_code == 404
    assert store.staging_size(key) is None
    with state_of(client).db.read() as session:
        assert session.get(TusUpload, path.rsplit("/", 1)[1]) is None


def test_unknown_upload_is_404(client: TestClient) -> None:
    assert head(client, "/tus/nope").status_code == 404
    assert patch(client, "/tus/nope", 0, b"x").status_code == 404
    assert client.delete("/tus/nope", headers=TUS).status_code == 404
    assert result_of(client, "/tus/nope").status_code == 404
    assert head(client, "/tus/" + "a" * 200).status_code == 404


# -- Satchel's options, users and the drive ----------------------------------------------------


def test_metadata_options_are_honoured(client: TestClient) -> None:
    data = payload(1500)
    before = utcnow()
    path = new_upload(
        client,
        len(data),
        filename="secret.txt",
        filetype="text/plain",
        expires="30m",
        max_downloads="2",
        password="hunter2",
        short_url="true",
    )
    # The password is kept only hashed: not in the row, not in what HEAD echoes.
    echoed = client.head(path, headers={"Tus-Resumable": "1.0.0"}).headers["upload-metadata"]
    assert "password" not in echoed
    assert "filename" in echoed
    state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
    with state.db.read() as session:
        stored = session.scalars(select(TusUpload)).one()
    assert "hunter2" not in repr(stored.options)
    assert base64.b64encode(b"hunter2").decode() not in stored.metadata_header
    last = patch(client, path, 0, data)
    assert last.status_code == 204
    result = result_of(client, path).json()
    assert result["short_url"] == last.headers["satchel-short-url"]
    expires_at = datetime.fromisoformat(result["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=29) < expires_at - before < timedelta(minutes=31)

    info = client.get(result["redirect"]).json()
    assert info["name"] == "secret.txt"
    assert info["content_type"].startswith("text/plain")
    assert info["public"] is True
    assert info["has_password"] is True
    assert info["max_downloads"] == 2

    url = path_of(result["download_url"])
    assert client.get(url).status_code == 401
    assert client.get(url, params={"pw": "wrong"}).status_code == 403
    assert client.get(url, params={"pw": "hunter2"}).content == data
    short = client.get(path_of(result["short_url"]), params={"pw": "hunter2"})
    assert short.content == data
    assert client.get(url, params={"pw": "hunter2"}).status_code == 410  # two downloads allowed


def test_public_false_makes_a_private_upload(client: TestClient) -> None:
    path = new_upload(client, 5, filename="private.txt", public="false")
    assert patch(client, path, 0, b"hello").status_code == 204
    result = result_of(client, path).json()
    assert client.get(result["redirect"]).json()["public"] is False
    assert client.get(path_of(result["download_url"])).status_code == 403


def test_upload_by_a_key_is_its_users_alone(client: TestClient) -> None:
    alice = bearer(user_key(client, "alice", "write"))
    bob = bearer(user_key(client, "bob", "write"))
    data = payload(4000)
    path = new_upload(client, len(data), alice, filename="alice.bin")
    assert patch(client, path, 0, data[:1000], alice).status_code == 204

    for other in (bob, {}):  # another user, and a guest
        assert head(client, path, other).status_code == 403
        assert patch(client, path, 1000, data[1000:], other).status_code == 403
        assert client.delete(path, headers={**TUS, **other}).status_code == 403
    assert offset_of(client, path, alice) == 1000

    last = patch(client, path, 1000, data[1000:], alice)
    assert last.status_code == 204
    assert result_of(client, path, bob).status_code == 403
    assert result_of(client, path).status_code == 403
    assert result_of(client, path, alice).status_code == 200


def test_a_key_without_write_is_refused(client: TestClient) -> None:
    reader = bearer(user_key(client, "carol", "read"))
    assert create(client, 10, reader).status_code == 403
    assert create(client, 10, bearer("not-a-key")).status_code == 401


def test_session_user_upload_is_not_a_guests(client: TestClient) -> None:
    state = state_of(client)
    user = state.accounts.create_user(NewUser("dave", "password1"))
    session = state.sessions.create(user, "127.0.0.1")
    no_token = {"Cookie": f"{SESSION_COOKIE}={session}"}
    assert create(client, 2000, no_token).status_code == 403  # a session needs the CSRF token
    cookie = {
        "Cookie": f"{SESSION_COOKIE}={session}; satchel_csrf=page-token",
        "X-CSRF-Token": "page-token",
    }
    data = payload(2000)
    path = new_upload(client, len(data), cookie, filename="dave.bin")
    assert patch(client, path, 0, data[:10], no_token).status_code == 403
    assert head(client, path).status_code == 403
    last = patch(client, path, 0, data, cookie)
    assert last.status_code == 204
    assert result_of(client, path, cookie).json()["size"] == len(data)


def test_drive_upload_into_a_folder(client: TestClient) -> None:
    key = user_key(client, "alice")
    folder = make_folder(client, key, "videos")
    data = payload(MiB + 77_777)
    path = new_upload(
        client,
        len(data),
        bearer(key),
        filename="clip.bin",
        is_temp="false",
        folder_id=str(folder),
    )
    send_in_pieces(client, path, data, (400_001,), bearer(key))
    result = result_of(client, path, bearer(key)).json()
    assert result["expires_at"] is None
    listing = client.get(f"/apiv1/files/{folder}", headers=bearer(key)).json()["files"]
    assert [f["name"] for f in listing] == ["clip.bin"]
    download = client.get(f"/apiv1/download/{result['drive_file_id']}", headers=bearer(key))
    assert download.status_code == 200
    assert download.content == data
    # A drive file is private: its public link does not serve it.
    assert client.get(path_of(result["download_url"])).status_code == 403


def test_drive_upload_into_a_foreign_folder_is_refused(client: TestClient) -> None:
    alice = user_key(client, "alice")
    folder = make_folder(client, alice, "mine")
    bob = bearer(user_key(client, "bob", "write"))
    response = create(client, 10, bob, is_temp="false", folder_id=str(folder))
    assert response.status_code == 404


# -- expiry and what reaches the disk ----------------------------------------------------------


def test_idle_unfinished_upload_expires_with_its_staged_data(client: TestClient) -> None:
    state = state_of(client)
    path = new_upload(client, 3 * MiB)
    assert patch(client, path, 0, payload(MiB + 5)).status_code == 204
    key = blob_key_of(client, path)
    finished = new_upload(client, 10)
    assert patch(client, finished, 0, b"0123456789").status_code == 204
    download = path_of(result_of(client, finished).json()["download_url"])

    state.tus.clock = lambda: utcnow() + timedelta(hours=23)
    assert state.tus.sweep() == 0
    assert head(client, path).status_code == 200

    state.tus.clock = lambda: utcnow() + timedelta(hours=24, minutes=1)
    assert head(client, path).status_code == 404
    assert state.tus.sweep() == 2
    assert state.files.store.staging_size(key) is None
    with state.db.read() as session:
        assert session.query(TusUpload).count() == 0
    # The finished upload's result is gone with its row, its file is not.
    assert client.get(download).content == b"0123456789"


def test_a_patch_renews_the_expiry(client: TestClient) -> None:
    state = state_of(client)
    path = new_upload(client, 100)
    state.tus.clock = lambda: utcnow() + timedelta(hours=20)
    renewed = patch(client, path, 0, b"x" * 10)
    assert renewed.status_code == 204
    expires = parsedate_to_datetime(renewed.headers["upload-expires"])
    assert expires - utcnow() > timedelta(hours=43)
    state.tus.clock = lambda: utcnow() + timedelta(hours=30)
    assert state.tus.sweep() == 0
    assert offset_of(client, path) == 10


MARKER = b"PLAINTEXT-MARKER"


def test_no_plaintext_of_an_unfinished_upload_on_disk(
    client: TestClient, settings: Settings
) -> None:
    data = MARKER * (MiB // len(MARKER) * 2 + 4000)  # two whole sealed chunks and a tail
    path = new_upload(client, len(data) + 10_000, filename="marked.txt")
    send_in_pieces(client, path, data, (123_457, MiB))
    assert offset_of(client, path) == len(data)
    scanned = 0
    for name, body in stored_bytes(settings):
        scanned += 1
        assert MARKER not in body, f"plaintext found in {name}"
    assert scanned
    assert staged_size(client, path)


def stored_bytes(settings: Settings) -> Iterator[tuple[str, bytes]]:
    """Everything Satchel wrote: the data folder and, on SQLite, the database beside it; on
    S3 the bucket's objects under the store's prefix as well."""
    for file in Path(settings.data_dir).parent.rglob("*"):
        if file.is_file():
            yield str(file), file.read_bytes()
    if settings.storage.startswith("s3:"):
        import boto3

        bucket, _, prefix = settings.storage.removeprefix("s3:").partition("/")
        s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint, region_name=settings.s3_region)
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            yield item["Key"], s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()


# -- a connection cut mid-body, against a real server -----------------------------------------


def cut_patch(server: LiveServer, path: str, offset: int, declared: int, sent: bytes) -> None:
    """A PATCH that announces ``declared`` bytes, sends ``sent`` and closes the connection."""
    url = urlsplit(server.url)
    request = (
        f"PATCH {path} HTTP/1.1\r\nHost: {url.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        f"Content-Type: {OCTETS}\r\nUpload-Offset: {offset}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(request + sent)
        time.sleep(0.3)


def live_offset(server: LiveServer, path: str) -> int:
    response = httpx.head(server.url + path, headers=TUS, timeout=30)
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


def test_a_cut_patch_keeps_what_arrived_and_resumes(live_server: LiveServer) -> None:
    data = payload(3 * MiB + 1001, seed=os.urandom(8))
    created = httpx.post(
        live_server.url + "/tus/",
        headers={
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(filename="cut.bin"),
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    path = path_of(created.headers["location"])
    half = MiB + 500_001
    cut_patch(live_server, path, 0, len(data), data[:half])

    deadline = time.monotonic() + 15
    while (offset := live_offset(live_server, path)) != half and time.monotonic() < deadline:
        time.sleep(0.1)
    assert offset == half, "the bytes that arrived before the cut should be kept"

    rest = httpx.patch(
        live_server.url + path,
        content=data[half:],
        headers={**TUS, "Content-Type": OCTETS, "Upload-Offset": str(half)},
        timeout=60,
    )
    assert rest.status_code == 204, rest.text
    assert httpx.get(rest.headers["satchel-download-url"], timeout=60).content == data


def test_a_cut_patch_with_a_checksum_keeps_nothing(live_server: LiveServer) -> None:
    data = payload(2 * MiB + 3, seed=os.urandom(8))
    created = httpx.post(
        live_server.url + "/tus/", headers={**TUS, "Upload-Length": str(len(data))}, timeout=30
    )
    path = path_of(created.headers["location"])
    url = urlsplit(live_server.url)
    request = (
        f"PATCH {path} HTTP/1.1\r\nHost: {url.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        f"Content-Type: {OCTETS}\r\nUpload-Offset: 0\r\nContent-Length: {len(data)}\r\n"
        f"Upload-Checksum: {checksum('sha256', data)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(request + data[: MiB + 9])
        time.sleep(0.3)
    # The lease is given back once the server has seen the cut; the offset stays 0.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        retry = httpx.patch(
            live_server.url + path,
            content=data,
            headers={**TUS, "Content-Type": OCTETS, "Upload-Offset": "0"},
            timeout=60,
        )
        if retry.status_code != 409:
            break
        time.sleep(0.1)
    assert retry.status_code == 204, (
        f"{retry.status_code} {retry.text}: offset {live_offset(live_server, path)}, expected 0"
    )
    assert httpx.get(retry.headers["satchel-download-url"], timeout=60).content == data


@pytest.fixture
def short_expiry(settings: Settings) -> Iterator[TestClient]:
    one_hour = load_settings(environ={}, overrides={**settings.values, "tus_expiry": "1h"})
    with TestClient(create_app(one_hour, migrate=False, run_jobs=False)) as test_client:
        yield test_client


def test_tus_expiry_setting_applies_to_unfinished_uploads_and_results(
    short_expiry: TestClient,
) -> None:
    state = state_of(short_expiry)
    unfinished = new_upload(short_expiry, 100)
    finished = new_upload(short_expiry, 3)
    assert patch(short_expiry, finished, 0, b"abc").status_code == 204
    state.tus.clock = lambda: utcnow() + timedelta(minutes=50)
    assert head(short_expiry, unfinished).status_code == 200
    state.tus.clock = lambda: utcnow() + timedelta(minutes=70)
    assert head(short_expiry, unfinished).status_code == 404
    # SATCHEL_TUS_EXPIRY: "a finished one keeps its result this long".
    assert result_of(short_expiry, finished).status_code == 404, (
        "a finished upload's result outlives SATCHEL_TUS_EXPIRY (1h here)"
    )
