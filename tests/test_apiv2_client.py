"""A client written the way a YetiShare user writes one (Python requests, form posts, checks
`_status`), run end to end against a real `satchel serve`."""

from __future__ import annotations

import hashlib
import os
import secrets
from typing import Any

import requests
from tests.conftest import LiveServer


class YetiShareClient:
    """What scripts for YetiShare hosts do: authorize once, then post forms with the token."""

    def __init__(self, base: str) -> None:
        self.api = base.rstrip("/") + "/api/v2/"
        self.session = requests.Session()
        self.auth: dict[str, str] = {}

    def _post(self, endpoint: str, files: Any = None, **params: Any) -> dict[str, Any]:
        answer = self.session.post(
            self.api + endpoint, data={**self.auth, **params}, files=files, timeout=30
        )
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        if body.get("_status") != "success":
            raise RuntimeError(f"{endpoint}: {body.get('response')}")
        return body

    def authorize(self, key1: str, key2: str) -> None:
        data = self._post("authorize", key1=key1, key2=key2)["data"]
        self.auth = {"access_token": data["access_token"], "account_id": data["account_id"]}

    def create_folder(self, name: str, parent: str = "") -> str:
        folder_id: str = self._post("folder/create", folder_name=name, parent_id=parent)["data"][
            "id"
        ]
        return folder_id

    def listing(self, folder: str = "") -> dict[str, Any]:
        data: dict[str, Any] = self._post("folder/listing", parent_folder_id=folder)["data"]
        return data

    def upload(self, path: str, folder: str = "") -> dict[str, Any]:
        with open(path, "rb") as handle:
            files = {"upload_file": (os.path.basename(path), handle)}
            entry: dict[str, Any] = self._post("file/upload", files=files, folder_id=folder)[
                "data"
            ][0]
        return entry

    def info(self, file_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self._post("file/info", file_id=file_id)["data"]
        return data

    def edit(self, file_id: str, filename: str) -> dict[str, Any]:
        data: dict[str, Any] = self._post("file/edit", file_id=file_id, filename=filename)["data"]
        return data

    def move(self, file_id: str, folder: str) -> dict[str, Any]:
        data: dict[str, Any] = self._post(
            "file/move", file_id=file_id, new_parent_folder_id=folder
        )["data"]
        return data

    def copy(self, file_id: str, folder: str) -> dict[str, Any]:
        data: dict[str, Any] = self._post("file/copy", file_id=file_id, copy_to_folder_id=folder)[
            "new_file"
        ]["data"]
        return data

    def download(self, file_id: str) -> bytes:
        url = self._post("file/download", file_id=file_id)["data"]["download_url"]
        answer = requests.get(url, timeout=30)  # no token or cookie: the URL carries the right
        answer.raise_for_status()
        return answer.content

    def delete(self, file_id: str) -> None:
        self._post("file/delete", file_id=file_id)

    def disable_token(self) -> None:
        self._post("disable_access_token")


def test_a_yetishare_client_end_to_end(live_server: LiveServer, tmp_path: Any) -> None:
    name = f"yeti{secrets.token_hex(3)}"
    live_server.admin("create-user", name, f"--password={secrets.token_urlsafe(12)}")
    key1, key2 = live_server.admin("create-v2-keys", name).split()
    client = YetiShareClient(live_server.url)
    client.authorize(key1, key2)

    photos = client.create_folder("Photos")
    archive = client.create_folder("Archive", parent=photos)
    path = tmp_path / "holiday.jpg"
    content = os.urandom(300_000)
    path.write_bytes(content)
    uploaded = client.upload(str(path), folder=photos)
    assert uploaded["hash"] == hashlib.md5(content).hexdigest()  # noqa: S324 - YetiShare's field
    file_id = uploaded["file_id"]

    listing = client.listing(photos)
    assert [f["folderName"] for f in listing["folders"]] == ["Archive"]
    assert [f["filename"] for f in listing["files"]] == ["holiday.jpg"]
    assert client.info(file_id)["fileSize"] == str(len(content))
    assert client.edit(file_id, "beach.jpg")["filename"] == "beach.jpg"
    assert client.move(file_id, archive)["folderId"] == archive
    copy = client.copy(file_id, "")
    assert copy["folderId"] is None
    assert client.download(file_id) == content
    assert client.download(copy["id"]) == content
    # The short link anyone may follow answers with the same bytes.
    short = requests.get(uploaded["url"], timeout=30)
    assert short.content == content

    client.delete(file_id)
    assert client.listing(archive)["files"] == []
    client.disable_token()
    refused = requests.post(client.api + "account/info", data=client.auth, timeout=30).json()
    assert refused["_status"] == "error"
    assert refused["status"] == "error"
