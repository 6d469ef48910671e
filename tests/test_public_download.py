from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from starlette.testclient import TestClient
from tests.helpers import path_of, upload

from satchel.core.resumes import RESUMES, ResumeLedger
from satchel.db.engine import Database
from satchel.db.models import DownloadResume
from satchel.jobs.maintenance import expire_files

BROWSER = {"Accept": "text/html,application/xhtml+xml", "User-Agent": "Mozilla/5.0"}


def test_single_ranges(client: TestClient) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    url = path_of(upload(client, data, "big.bin")["download_url"])
    cases = {
        "bytes=0-99": data[0:100],
        "bytes=1048570-1048590": data[1048570:1048591],
        "bytes=3145700-": data[3145700:],
        "bytes=-10": data[-10:],
        "bytes=100-99999999": data[100:],
    }
    for header, expected in cases.items():
        response = client.get(url, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.content == expected, header
        assert response.headers["content-length"] == str(len(expected))
        start = (
            len(data) - len(expected)
            if header.startswith("bytes=-")
            else int(header[6:].split("-")[0])
        )
        assert (
            response.headers["content-range"]
            == f"bytes {start}-{start + len(expected) - 1}/{len(data)}"
        )


def test_unsatisfiable_range_is_416(client: TestClient) -> None:
    url = path_of(upload(client, b"0123456789")["download_url"])
    response = client.get(url, headers={"Range": "bytes=10-20"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */10"


def test_large_download_streams_whole_file(client: TestClient) -> None:
    data = os.urandom(5 * 1024 * 1024 + 3)
    url = path_of(upload(client, data, "big.bin")["download_url"])
    assert client.get(url).content == data


def test_head_gives_headers_without_body_and_does_not_count(client: TestClient) -> None:
    result = upload(client, b"abcdef", max_downloads="1")
    url = path_of(result["download_url"])
    head = client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == "6"
    assert head.content == b""
    assert client.get(result["redirect"]).json()["downloads"] == 0
    assert client.get(url).content == b"abcdef"


def test_resumed_range_of_an_unlimited_file_does_not_count(client: TestClient) -> None:
    result = upload(client, b"abcdef")
    url = path_of(result["download_url"])
    assert client.get(url, headers={"Range": "bytes=2-"}).content == b"cdef"
    client.app.state.satchel.files.counter.flush()  # type: ignore[attr-defined]
    assert client.get(result["redirect"]).json()["downloads"] == 0
    client.get(url, headers={"Range": "bytes=0-1"})
    client.app.state.satchel.files.counter.flush()  # type: ignore[attr-defined]
    assert client.get(result["redirect"]).json()["downloads"] == 1


def test_on_a_limited_file_a_range_counts_unless_it_resumes_a_counted_download(
    client: TestClient,
) -> None:
    result = upload(client, b"abcdef", max_downloads="2")
    url = path_of(result["download_url"])
    first = client.get(url, headers={"Range": "bytes=1-"})
    assert (first.status_code, first.content) == (206, b"bcdef")
    assert client.get(result["redirect"]).json()["downloads"] == 1
    # The rest of that download (cut after two bytes), tied to it by its ETag: not counted again.
    resumed = client.get(url, headers={"Range": "bytes=3-", "If-Range": first.headers["etag"]})
    assert (resumed.status_code, resumed.content) == (206, b"def")
    assert client.get(result["redirect"]).json()["downloads"] == 1
    # A made-up validator resumes nothing: the whole body, as a new download (the last one).
    forged = first.headers["etag"][:-5] + 'beef"'
    whole = client.get(url, headers={"Range": "bytes=1-", "If-Range": forged})
    assert (whole.status_code, whole.content) == (200, b"abcdef")
    assert whole.headers["etag"] != first.headers["etag"]
    # Used up: no new download, but the counted ones may still be resumed for a while.
    assert client.get(url, headers={"Range": "bytes=3-"}).status_code == 410
    late = client.get(url, headers={"Range": "bytes=4-", "If-Range": first.headers["etag"]})
    assert (late.status_code, late.content) == (206, b"ef")
    past_the_window(client)
    late = client.get(url, headers={"Range": "bytes=4-", "If-Range": first.headers["etag"]})
    assert late.status_code == 410


BODY = b"0123456789abcdefghijklmnop"  # longer than RESUMES


def test_a_resumption_stays_inside_its_counted_range_and_is_bounded(client: TestClient) -> None:
    """A resume ETag is no pass to the file: it goes on with the bytes its download was
    counted for, from no earlier than the last resumption, and only so many times."""
    one_byte = upload(client, b"0123456789", max_downloads="1")
    url = path_of(one_byte["download_url"])
    counted = client.get(url, headers={"Range": "bytes=0-0"})
    assert (counted.status_code, counted.content) == (206, b"0")
    beyond = {"Range": "bytes=0-", "If-Range": counted.headers["etag"]}
    assert client.get(url, headers=beyond).status_code == 410  # a new download: none is left
    again = client.get(url, headers={"Range": "bytes=0-0", "If-Range": counted.headers["etag"]})
    assert (again.status_code, again.content) == (206, b"0")  # inside: a resumption

    whole = upload(client, BODY, max_downloads="1")
    url = path_of(whole["download_url"])
    etag = client.get(url).headers["etag"]
    for start in range(RESUMES):
        resumed = client.get(url, headers={"Range": f"bytes={start}-", "If-Range": etag})
        assert (resumed.status_code, resumed.content) == (206, BODY[start:])
    late = client.get(url, headers={"Range": f"bytes={RESUMES}-", "If-Range": etag})
    assert late.status_code == 410  # resumed often enough: the download was counted once

    earlier = upload(client, b"0123456789", max_downloads="1")
    url = path_of(earlier["download_url"])
    etag = client.get(url).headers["etag"]
    assert client.get(url, headers={"Range": "bytes=5-", "If-Range": etag}).status_code == 206
    back = client.get(url, headers={"Range": "bytes=0-", "If-Range": etag})
    assert back.status_code == 410  # no earlier than the last resumption
    assert client.get(url, headers={"Range": "bytes=7-", "If-Range": etag}).status_code == 206


def past_the_window(client: TestClient) -> None:
    """Runs the expiry job as if the resume window of every download had passed."""
    files = client.app.state.satchel.files  # type: ignore[attr-defined]
    real = files.clock
    later = real() + timedelta(seconds=files.settings.download_resume_window + 1)
    files.clock = lambda: later
    try:
        expire_files(files)
    finally:
        files.clock = real


def test_a_range_of_a_one_time_file_is_its_one_download(client: TestClient) -> None:
    result = upload(client, b"0123456789", max_downloads="1")
    url = path_of(result["download_url"])
    taken = client.get(url, headers={"Range": "bytes=1-"})
    assert (taken.status_code, taken.content) == (206, b"123456789")
    for first_byte in (1, 0, 5):
        again = client.get(url, headers={"Range": f"bytes={first_byte}-"})
        assert again.status_code == 410, first_byte


def test_a_cut_final_download_can_still_be_resumed(client: TestClient) -> None:
    """The download that used up the limit ended early: the link is dead for others, but
    that download's own rest still comes, until the resume window has passed."""
    data = os.urandom(3 << 20)
    result = upload(client, data, max_downloads="1")
    url = path_of(result["download_url"])
    with client.stream("GET", url) as response:
        etag = response.headers["etag"]
        got = next(response.iter_bytes())  # and the client goes away
    assert client.get(url).status_code == 410
    rest = client.get(url, headers={"Range": f"bytes={len(got)}-", "If-Range": etag})
    assert rest.status_code == 206
    assert got + rest.content == data
    blob = client.app.state.satchel.files.store  # type: ignore[attr-defined]
    assert len(list(blob.iter_blobs())) == 1  # kept for resumptions
    past_the_window(client)
    assert client.get(url, headers={"Range": "bytes=0-", "If-Range": etag}).status_code == 410
    assert list(blob.iter_blobs()) == []
    assert client.get(url).status_code == 410


def test_download_limit_gives_410_and_removes_the_file(client: TestClient) -> None:
    result = upload(client, b"once", max_downloads="1")
    url = path_of(result["download_url"])
    assert client.get(url).status_code == 200
    gone = client.get(url)
    assert gone.status_code == 410
    assert gone.json() == {"error": "Download limit reached, file has been removed"}
    assert client.get(result["redirect"]).status_code == 404


def test_password_protected_file(client: TestClient) -> None:
    result = upload(client, b"secret data", password="hunter2")
    url = path_of(result["download_url"])
    missing = client.get(url)
    assert missing.status_code == 401
    assert missing.json() == {"error": "Password required"}
    wrong = client.get(url, params={"pw": "nope"})
    assert wrong.status_code == 403
    assert wrong.json() == {"error": "Wrong password"}
    right = client.get(url, params={"pw": "hunter2"})
    assert right.status_code == 200
    assert right.content == b"secret data"


def test_browser_gets_a_password_form(client: TestClient) -> None:
    url = path_of(upload(client, b"x", password="pw")["download_url"])
    page = client.get(url, headers=BROWSER)
    assert page.status_code == 401
    assert 'name="password"' in page.text  # posted to the share page, never put in the URL
    assert "text/html" in page.headers["content-type"]


def test_private_file_is_403_but_its_token_holder_can_fetch_it(client: TestClient) -> None:
    result = upload(client, b"private bytes", public="off")
    response = client.get(path_of(result["download_url"]))
    assert response.status_code == 403
    assert response.json() == {"error": "This file is private"}
    assert client.get(result["redirect"] + "/download").content == b"private bytes"


def test_unknown_ids_are_404(client: TestClient) -> None:
    for path in (
        "/f/00000000-0000-4000-8000-000000000000",
        "/f/not-a-uuid",
        "/f/00000000-0000-4000-8000-000000000000/x.txt",
        "/s/AAAAAAAA",
        "/s/bad$code",
        "/manage/nope",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "error" in response.json()
    assert client.post("/delete/nope").status_code == 404


def test_unicode_file_name_in_content_disposition(client: TestClient) -> None:
    result = upload(client, b"x", "résumé 2026.txt")
    disposition = client.get(path_of(result["download_url"])).headers["content-disposition"]
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%202026.txt" in disposition
    assert 'filename="r_sum_ 2026.txt"' in disposition


def test_unlimited_downloads_are_counted_in_batches(client: TestClient) -> None:
    from sqlalchemy import select

    from satchel.db.models import StoredFile

    result = upload(client, b"popular")
    url = path_of(result["download_url"])
    for _ in range(3):
        assert client.get(url).status_code == 200
    assert client.get(result["redirect"]).json()["downloads"] == 3  # pending ones included
    files = client.app.state.satchel.files  # type: ignore[attr-defined]
    files.counter.flush()
    with files.db.read() as session:
        assert session.scalar(select(StoredFile.downloads)) == 3
    assert client.get(result["redirect"]).json()["downloads"] == 3


def test_setting_a_limit_counts_pending_downloads_first(client: TestClient) -> None:
    result = upload(client, b"popular")
    url = path_of(result["download_url"])
    for _ in range(2):
        client.get(url)
    client.post(result["redirect"], data={"max_downloads": "3"})
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 410


def test_pending_counts_are_written_at_shutdown(settings) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine, select

    from satchel.db.models import StoredFile
    from satchel.web.app import create_app

    with TestClient(create_app(settings, migrate=False, run_jobs=False)) as client:
        result = upload(client, b"popular")
        for _ in range(2):
            client.get(path_of(result["download_url"]))
    engine = create_engine(settings.sqlalchemy_url)
    with engine.connect() as conn:
        assert conn.execute(select(StoredFile.downloads)).scalar() == 2
    engine.dispose()


def test_resumptions_are_forgotten_after_their_window(database_url: str) -> None:
    db = Database(database_url)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    try:
        ledger = ResumeLedger(db, clock=lambda: now)
        until = now + timedelta(hours=6)
        assert ledger.take(1, 1, 0, until)
        assert ledger.take(2, 1, 0, until + timedelta(hours=1))
        assert ledger.sweep() == 0
        ledger.clock = lambda: until
        assert ledger.sweep() == 1
        assert ledger.take(1, 1, 0, until + timedelta(hours=6))  # a fresh record
        with db.read() as session:
            kept = session.scalars(select(DownloadResume.file_id)).all()
        assert sorted(kept) == [1, 2]
    finally:
        db.dispose()
