from __future__ import annotations

from starlette.testclient import TestClient
from tests.helpers import path_of, upload

XHR = {"X-Requested-With": "XMLHttpRequest"}


def test_manage_json(client: TestClient) -> None:
    result = upload(client, b"12345", short_url="true")
    info = client.get(result["redirect"]).json()
    assert info["name"] == "hello.txt"
    assert info["size"] == 5
    assert info["download_url"] == result["download_url"]
    assert info["short_url"] == result["short_url"]
    assert info["public"] is True
    assert info["has_password"] is False
    assert info["expires_at"].endswith("Z")
    assert info["max_downloads"] is None
    assert info["downloads"] == 0


def test_update_answers_success_and_absent_fields_stay(client: TestClient) -> None:
    result = upload(client, max_downloads="5")
    response = client.post(result["redirect"], data={"password": "secret"}, headers=XHR)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["has_password"] is True
    info = client.get(result["redirect"]).json()
    assert info["public"] is True
    assert info["max_downloads"] == 5
    response = client.post(result["redirect"], data={"public": "off", "max_downloads": "0"})
    assert response.json()["has_password"] is True
    info = client.get(result["redirect"]).json()
    assert info["public"] is False
    assert info["max_downloads"] is None
    assert client.post(result["redirect"], data={"password": ""}).json()["has_password"] is False


def test_expiry_choices(client: TestClient) -> None:
    result = upload(client)
    for choice in ("30m", "6h", "1d", "3d", "7d"):
        assert client.post(result["redirect"], data={"expires": choice}).status_code == 200
    never = client.post(result["redirect"], data={"expires": "never"})
    assert never.status_code == 400
    assert "never" in never.json()["error"]
    assert client.post(result["redirect"], data={"expires": "8d"}).status_code == 400
    assert client.post(result["redirect"], data={"expires": "soon"}).status_code == 400


def test_html_form_marker_turns_an_unticked_checkbox_off(client: TestClient) -> None:
    result = upload(client)
    response = client.post(
        result["redirect"],
        data={"_form": "1", "password": "", "expires": ""},
        headers={"Accept": "text/html", "User-Agent": "Mozilla/5.0"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    info = client.get(result["redirect"]).json()
    assert info["public"] is False
    assert info["has_password"] is False


def test_json_body_is_accepted(client: TestClient) -> None:
    result = upload(client)
    response = client.post(result["redirect"], json={"public": False, "max_downloads": 2})
    assert response.status_code == 200
    assert client.get(result["redirect"]).json()["max_downloads"] == 2


def test_delete_by_post_and_by_delete(client: TestClient) -> None:
    for method in ("POST", "DELETE"):
        result = upload(client)
        token = result["redirect"].rsplit("/", 1)[1]
        response = client.request(method, f"/delete/{token}")
        assert response.status_code == 200
        assert response.json() == {"success": True}
        assert client.get(path_of(result["download_url"])).status_code == 404
        assert client.get(result["redirect"]).status_code == 404
        assert client.request(method, f"/delete/{token}").status_code == 404
