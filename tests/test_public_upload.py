from __future__ import annotations

import io
import re
import zipfile

from starlette.testclient import TestClient
from tests.helpers import path_of, token_of, upload

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def test_single_upload_answers_the_reference_shape(client: TestClient) -> None:
    result = upload(client)
    assert re.fullmatch(r"/manage/[A-Za-z0-9_-]{32}", result["redirect"])
    assert re.fullmatch(rf"http://testserver/f/{UUID_RE}/hello\.txt", result["download_url"])
    assert "short_url" not in result
    assert result["size"] == len(b"hello satchel")
    assert result["manage_url"] == "http://testserver" + result["redirect"]


def test_download_returns_the_bytes_with_attachment_headers(client: TestClient) -> None:
    result = upload(client, b"content 123", "report.txt")
    response = client.get(path_of(result["download_url"]))
    assert response.status_code == 200
    assert response.content == b"content 123"
    assert response.headers["content-length"] == "11"
    assert response.headers["content-disposition"].startswith('attachment; filename="report.txt"')
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"].strip('"') == result["file_id"]
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_download_without_filename_in_the_path(client: TestClient) -> None:
    result = upload(client, b"abc")
    assert client.get(f"/f/{result['file_id']}").content == b"abc"


def test_short_url_serves_cli_clients_and_redirects_browsers(client: TestClient) -> None:
    result = upload(client, b"short!", short_url="true")
    assert re.fullmatch(r"http://testserver/s/[0-9A-Za-z]{8}", result["short_url"])
    short = path_of(result["short_url"])
    cli = client.get(short, headers={"User-Agent": "curl/8.0", "Accept": "*/*"})
    assert cli.status_code == 200
    assert cli.content == b"short!"
    browser = client.get(
        short,
        headers={"User-Agent": "Mozilla/5.0", "Accept": "text/html,*/*"},
        follow_redirects=False,
    )
    assert browser.status_code == 302
    assert browser.headers["location"] == result["download_url"]


def test_several_files_become_one_zip_with_unique_names(client: TestClient) -> None:
    files = [
        ("files", ("a.txt", b"first", "text/plain")),
        ("files", ("a.txt", b"second", "text/plain")),
        ("files", ("../../etc/b.bin", b"\x00" * 3000, "application/octet-stream")),
    ]
    response = client.post("/upload", files=files)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["download_url"].endswith("/files.zip")
    body = client.get(path_of(result["download_url"])).content
    archive = zipfile.ZipFile(io.BytesIO(body))
    # A path keeps its folders inside the ZIP, never above it.
    assert archive.namelist() == ["a.txt", "a (2).txt", "etc/b.bin"]
    assert archive.read("a.txt") == b"first"
    assert archive.read("a (2).txt") == b"second"
    assert archive.read("etc/b.bin") == b"\x00" * 3000
    assert archive.testzip() is None


def test_a_picked_folder_keeps_its_tree_in_the_zip(client: TestClient) -> None:
    files = [
        ("files", ("photos/2024/a.jpg", b"a", "image/jpeg")),
        ("files", ("photos\\2024\\b.jpg", b"b", "image/jpeg")),
        ("files", ("/photos/./../notes.txt", b"n", "text/plain")),
        ("files", ("photos/2024/a.jpg", b"again", "image/jpeg")),
    ]
    result = client.post("/upload", files=files).json()
    archive = zipfile.ZipFile(io.BytesIO(client.get(path_of(result["download_url"])).content))
    assert archive.namelist() == [
        "photos/2024/a.jpg",
        "photos/2024/b.jpg",
        "photos/notes.txt",
        "photos/2024/a (2).jpg",
    ]
    assert archive.read("photos/2024/a (2).jpg") == b"again"
    # One file alone is stored under its base name.
    alone = client.post("/upload", files=[("files", ("photos/2024/c.jpg", b"c", "image/jpeg"))])
    assert alone.json()["name"] == "c.jpg"


def test_file_field_alias_and_names_reduced_to_base_name(client: TestClient) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="..\\..\\evil\x01name.txt"\r\n\r\n'
        b"x\r\n--b--\r\n"
    )
    response = client.post(
        "/upload", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 200
    assert response.json()["name"] == "evilname.txt"


def test_upload_options_are_applied(client: TestClient) -> None:
    result = upload(client, public="off", password="pw", max_downloads="3", expires="30m")
    info = client.get(result["redirect"]).json()
    assert info["public"] is False
    assert info["has_password"] is True
    assert info["max_downloads"] == 3
    assert info["expires_at"] is not None


def test_guest_cannot_keep_files_in_a_drive(client: TestClient) -> None:
    response = client.post("/upload", files={"files": ("a.txt", b"x")}, data={"is_temp": "false"})
    assert response.status_code == 401
    assert "error" in response.json()


def test_browser_form_upload_redirects_to_the_manage_page(client: TestClient) -> None:
    response = client.post(
        "/upload",
        files={"files": ("a.txt", b"x")},
        headers={"Accept": "text/html", "User-Agent": "Mozilla/5.0"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/manage/")
    page = client.get(
        response.headers["location"], headers={"Accept": "text/html", "User-Agent": "Mozilla/5.0"}
    )
    assert "a.txt" in page.text
    assert token_of({"redirect": response.headers["location"]}) in page.text


def test_upload_page_has_a_form(client: TestClient) -> None:
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert 'action="/upload"' in page.text
    assert 'enctype="multipart/form-data"' in page.text


def test_nameless_file_part_with_content_gets_a_name(client: TestClient) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename=""\r\n\r\nhi\r\n--b--\r\n'
    )
    response = client.post(
        "/upload", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 200
    assert response.json()["name"] == "file"


def test_control_and_bidi_characters_are_removed_from_names(client: TestClient) -> None:
    response = client.post("/upload", files={"files": ("a\u202etxt.exe", b"x")})
    assert response.json()["name"] == "atxt.exe"


def test_odd_content_types_are_not_sent_back(client: TestClient) -> None:
    for declared in ("text/€", "text/plain, text/html", "text/html\x0bX", "nonsense"):
        body = (
            b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n'
            b"Content-Type: " + declared.encode() + b"\r\n\r\nhi\r\n--b--\r\n"
        )
        response = client.post(
            "/upload", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
        )
        assert response.status_code == 200, declared
        download = client.get(path_of(response.json()["download_url"]))
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/octet-stream"
    body = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.pdf"\r\n'
        b"Content-Type: Application/PDF\r\n\r\nhi\r\n--b--\r\n"
    )
    response = client.post(
        "/upload", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert (
        client.get(path_of(response.json()["download_url"])).headers["content-type"]
        == "application/pdf"
    )


def test_management_tokens_never_start_with_a_dash() -> None:
    # `satchel manage TOKEN` would read a leading dash as an option.
    from satchel.core.ids import new_manage_token

    tokens = [new_manage_token() for _ in range(3000)]  # ~47 would start with "-" otherwise
    assert not [token for token in tokens if token.startswith("-")]
    assert len(set(tokens)) == len(tokens)
    assert all(len(token) == 32 for token in tokens)
