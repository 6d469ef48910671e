"""The share page ``/d/{uuid}``, its password form and file pass, and ``/preview/{uuid}``:
the same access rules as ``/f/``, previews only for types that cannot run script."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient
from tests.helpers import path_of, token_of

from satchel.crypto import e2e
from satchel.web.pages.share import PASS_COOKIE

BROWSER = {"Accept": "text/html,application/xhtml+xml", "User-Agent": "Mozilla/5.0"}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def put(client: TestClient, name: str, data: bytes, kind: str, **fields: Any) -> Any:
    response = client.post("/upload", files={"files": (name, data, kind)}, data=fields)
    assert response.status_code == 200, response.text
    return response.json()


def share_path(result: dict[str, Any]) -> str:
    return path_of(result["share_url"])


def preview_path(result: dict[str, Any]) -> str:
    return "/preview/" + result["file_id"]


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_share_page_shows_the_file_and_links_its_download(client: TestClient) -> None:
    result = put(client, "notes <b>.txt", b"hello share", "text/plain", max_downloads="")
    assert result["share_url"].endswith("/d/" + result["file_id"])
    page = client.get(share_path(result), headers=BROWSER)
    assert page.status_code == 200
    assert "notes &lt;b&gt;.txt" in page.text  # escaped
    assert "<b>.txt" not in page.text
    assert result["download_url"] in page.text
    assert ">Download</a>" in page.text
    assert "no limit" in page.text
    assert f'src="{result["share_url"].replace("/d/", "/preview/")}"' in page.text
    assert "script-src" in page.headers["content-security-policy"]
    facts = client.get(share_path(result)).json()
    assert facts["name"] == "notes <b>.txt"
    assert facts["size"] == 11
    assert facts["downloads_left"] is None
    assert facts["preview"] == "text"
    assert facts["download_url"] == result["download_url"]
    assert facts["expires_at"] == result["expires_at"]
    # Showing the page is not a download.
    assert client.get(path_of(result["manage_url"])).json()["downloads"] == 0


def test_previews_are_sandboxed_and_only_for_harmless_types(client: TestClient) -> None:
    image = put(client, "dot.png", PNG, "image/png")
    shown = client.get(preview_path(image))
    assert shown.status_code == 200
    assert shown.content == PNG
    assert shown.headers["content-type"] == "image/png"
    assert "sandbox" in shown.headers["content-security-policy"]
    assert shown.headers["x-content-type-options"] == "nosniff"
    assert shown.headers["content-disposition"].startswith("inline;")
    text = put(client, "t.md", b"# hi", "text/markdown")
    assert client.get(preview_path(text)).headers["content-type"] == "text/plain; charset=utf-8"
    ranged = client.get(preview_path(image), headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206
    assert ranged.content == PNG[:4]
    for name, kind in [
        ("p.html", "text/html"),
        ("p.svg", "image/svg+xml"),
        ("p.xml", "text/xml"),
        ("p.xhtml", "application/xhtml+xml"),
        ("p.js", "application/javascript"),
    ]:
        result = put(client, name, b"<script>alert(1)</script>", kind)
        assert client.get(preview_path(result)).status_code == 404, kind
        assert client.get(share_path(result)).json()["preview"] is None
        assert "/preview/" not in client.get(share_path(result), headers=BROWSER).text
    assert client.get(path_of(image["manage_url"])).json()["downloads"] == 0


def test_private_files_are_refused_as_by_the_download(client: TestClient) -> None:
    result = put(client, "dot.png", PNG, "image/png", public="false")
    assert client.get(path_of(result["download_url"])).status_code == 403
    assert client.get(share_path(result)).status_code == 403
    assert client.get(share_path(result), headers=BROWSER).status_code == 403
    assert client.get(preview_path(result)).status_code == 403


def test_expired_deleted_and_unknown_files_are_a_clean_404(client: TestClient) -> None:
    result = put(client, "a.txt", b"a", "text/plain")
    assert client.post(path_of(result["delete_url"])).status_code == 200
    page = client.get(share_path(result), headers=BROWSER)
    assert page.status_code == 404
    assert "<h1>" in page.text
    assert client.get(preview_path(result)).status_code == 404
    for path in ("/d/not-a-uuid", "/d/6f1c1a52-5f0e-4d7a-9d7e-0d7f3f0c2a11", "/preview/x"):
        assert client.get(path, headers=BROWSER).status_code == 404


def test_download_limit_means_no_preview_and_shows_what_is_left(client: TestClient) -> None:
    result = put(client, "dot.png", PNG, "image/png", max_downloads="2")
    assert client.get(preview_path(result)).status_code == 404
    facts = client.get(share_path(result)).json()
    assert (facts["preview"], facts["downloads_left"], facts["max_downloads"]) == (None, 2, 2)
    page = client.get(share_path(result), headers=BROWSER).text
    assert "2 of 2" in page
    assert "/preview/" not in page
    assert client.get(path_of(result["download_url"])).status_code == 200
    assert client.get(share_path(result)).json()["downloads_left"] == 1
    assert client.get(path_of(result["download_url"])).status_code == 200
    assert client.get(share_path(result), headers=BROWSER).status_code == 404  # used up


def test_password_form_sets_a_file_pass_that_opens_page_preview_and_download(
    client: TestClient,
) -> None:
    result = put(client, "dot.png", PNG, "image/png", password="open sesame")
    path = share_path(result)
    form = client.get(path, headers=BROWSER)
    assert form.status_code == 401
    assert 'name="password"' in form.text
    assert "dot.png" not in form.text  # nothing about the file before the password
    assert client.get(path).status_code == 401
    assert client.get(preview_path(result)).status_code == 401
    assert client.get(preview_path(result), params={"pw": "open sesame"}).status_code == 401
    token = csrf_of(form.text)

    assert client.post(path, data={"password": "open sesame"}, headers=BROWSER).status_code == 403
    wrong = client.post(path, data={"password": "nope", "csrf_token": token}, headers=BROWSER)
    assert wrong.status_code == 403
    assert "Wrong password" in wrong.text
    assert PASS_COOKIE not in client.cookies

    right = client.post(
        path,
        data={"password": "open sesame", "csrf_token": token},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert right.status_code == 303
    assert right.headers["location"] == path
    cookies = right.headers.get_list("set-cookie")
    assert any(f"Path={path};" in c or c.endswith(f"Path={path}") for c in cookies), cookies
    assert any(f"Path=/preview/{result['file_id']}" in c for c in cookies)
    assert all("HttpOnly" in c and "open sesame" not in c for c in cookies)

    page = client.get(path, headers=BROWSER)
    assert page.status_code == 200
    assert "dot.png" in page.text
    assert f"/d/{result['file_id']}/download" in page.text
    assert "open sesame" not in page.text
    assert client.get(preview_path(result)).content == PNG
    assert client.get(f"{path}/download").content == PNG
    # The pass of one file opens no other.
    other = put(client, "b.png", PNG, "image/png", password="open sesame")
    stolen = client.cookies.get(PASS_COOKIE, path=path)
    client.cookies.set(PASS_COOKIE, stolen or "", path=share_path(other))
    assert client.get(share_path(other)).status_code == 401


def test_a_new_password_ends_the_file_pass(client: TestClient) -> None:
    result = put(client, "a.txt", b"secret text", "text/plain", password="first")
    path = share_path(result)
    token = csrf_of(client.get(path, headers=BROWSER).text)
    client.post(path, data={"password": "first", "csrf_token": token}, headers=BROWSER)
    assert client.get(path).status_code == 200
    manage = path_of(result["manage_url"])
    assert client.post(manage, data={"password": "second"}).status_code == 200
    assert client.get(path).status_code == 401
    assert client.get(f"{path}/download").status_code == 401
    assert (
        client.get(f"{path}/download", headers=BROWSER, follow_redirects=False).status_code == 303
    )


def test_wrong_guesses_at_the_share_page_are_limited_as_pw_is(client: TestClient) -> None:
    result = put(client, "a.txt", b"x", "text/plain", password="right one")
    path = share_path(result)
    token = csrf_of(client.get(path, headers=BROWSER).text)
    for _ in range(5):
        wrong = client.post(path, data={"password": "guess", "csrf_token": token}, headers=BROWSER)
        assert wrong.status_code == 403
    for _ in range(5):  # the same counter as ?pw= on /f/
        assert (
            client.get(path_of(result["download_url"]), params={"pw": "guess"}).status_code == 403
        )
    blocked = client.post(
        path, data={"password": "right one", "csrf_token": token}, headers=BROWSER
    )
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers
    assert 'name="password"' in blocked.text
    assert (
        client.get(path_of(result["download_url"]), params={"pw": "right one"}).status_code == 429
    )


def test_e2e_file_gets_the_decrypting_page_and_no_preview(client: TestClient) -> None:
    key = e2e.new_key()
    blob = e2e.encrypt_bytes(b"top secret", key=key, name="s.txt", content_type="text/plain")
    response = client.post(
        "/upload",
        files={"files": ("file.se2e", blob, "application/octet-stream")},
        data={"e2e": "v1"},
    )
    result = response.json()
    page = client.get(share_path(result), headers=BROWSER)
    assert page.status_code == 200
    assert "/static/js/share-e2e.js" in page.text
    assert f'data-id="{result["file_id"]}"' in page.text
    assert client.get(preview_path(result)).status_code == 404
    facts = client.get(share_path(result)).json()
    assert facts["e2e"]
    assert facts["preview"] is None
    assert facts["encrypted_url"] == result["encrypted_url"]
    save = client.get(share_path(result) + "/save", follow_redirects=False)
    assert save.status_code == 303
    assert save.headers["location"] == share_path(result)


def test_the_manage_token_is_not_a_share_page(client: TestClient) -> None:
    result = put(client, "a.txt", b"x", "text/plain")
    assert client.get("/d/" + token_of(result)).status_code == 404


def test_the_client_fetches_a_share_link_as_its_download() -> None:
    from satchel.client.download import file_url

    uuid = "6f1c1a52-5f0e-4d7a-9d7e-0d7f3f0c2a11"
    assert file_url(f"https://h.example/d/{uuid}") == f"https://h.example/f/{uuid}"
    assert file_url(f"http://h:8/base/d/{uuid}/") == f"http://h:8/base/f/{uuid}"
    for other in (f"https://h.example/f/{uuid}/d.txt", "https://h.example/s/abc123"):
        assert file_url(other) == other
