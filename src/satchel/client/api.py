"""``SatchelClient``: the public upload and download API, resumable tus uploads, the
``/apiv1`` drive and keys, and the ``/api/v2`` moves and copies ``/apiv1`` lacks."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

import httpx

from satchel.client.config import cache_dir
from satchel.client.download import (
    AskPassword,
    Downloader,
    DownloadResult,
    Progress,
    headers_for,
)
from satchel.client.errors import (
    ServerRefused,
    UsageError,
    network_error,
    raise_for_status,
)
from satchel.client.results import Listing, UploadResult
from satchel.client.sources import EncryptedSource, FileSource, content_type_of, unb64
from satchel.client.state import NoState, ResumeState
from satchel.client.tus import DEFAULT_CHUNK_SIZE, ByteSource, TusUploader
from satchel.crypto import e2e

E2E_FORMAT = "v1"
E2E_NAME = "encrypted"  # the name the server stores an E2E file under; the real one is sealed
PAGE_SIZE = 1000
USER_AGENT = "satchel-cli"


class SatchelClient:
    """A Satchel server at ``base_url``; ``api_key`` (``sat_…``) for the drive and keys,
    ``v2_keys`` (key1, key2) only for ``drive.mv`` and ``drive.cp``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        v2_keys: tuple[str, str] | None = None,
        state_dir: Path | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.chunk_size = chunk_size
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
            follow_redirects=True,
        )
        state = state_dir or cache_dir()
        self.upload_state = ResumeState(state / "uploads.json")
        self.download_state = ResumeState(state / "downloads.json")
        self.drive = Drive(self, v2_keys)
        self.keys = Keys(self)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # -- HTTP ------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url + path

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = self.url(path)
        headers = {**self.auth_headers(), **kwargs.pop("headers", {})}
        try:
            response = self.http.request(method, url, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise network_error(exc, url) from exc
        raise_for_status(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    # -- public API ------------------------------------------------------------------------

    def upload(
        self,
        paths: Sequence[str | Path],
        *,
        expires: str | None = None,
        password: str | None = None,
        max_downloads: int | None = None,
        private: bool = False,
        short: bool = False,
        e2e: bool = False,
        e2e_password: str | None = None,
        to_drive_folder: int | None = None,
        separate: bool = False,
        resumable: bool = True,
        progress: Progress | None = None,
    ) -> list[UploadResult]:
        """Uploads files and returns their links.

        One file goes through tus, resumable (``resumable=False``: one ``POST /upload``).
        Several files become one zip made by the server from one ``POST /upload`` (not
        resumable), unless ``separate``: then each gets links of its own, through tus.
        End-to-end encrypted files (``e2e`` with a random key, or ``e2e_password``) are
        always encrypted and uploaded one by one. ``to_drive_folder`` (0 for the root) stores
        into the API key's drive instead of a shared upload.
        """
        files = _existing_files(paths)
        fields = _upload_fields(expires, password, max_downloads, private, short)
        if to_drive_folder is not None:
            if not self.api_key:
                raise UsageError("uploading into the drive needs an API key")
            fields.update({"is_temp": "false", "folder_id": str(to_drive_folder)})
        encrypted = e2e or e2e_password is not None
        if encrypted and password:
            raise UsageError(
                "an end-to-end encrypted upload takes no server password: "
                "use --e2e-password to encrypt with a password instead"
            )
        if encrypted:
            return [self._upload_e2e(p, fields, e2e_password, resumable, progress) for p in files]
        if len(files) > 1 and not separate:
            return [self._upload_multipart(files, fields, progress)]
        if not resumable:
            return [self._upload_multipart([p], fields, progress) for p in files]
        return [
            self._upload_tus(p, FileSource(p), fields, None, resumable, progress) for p in files
        ]

    def _upload_e2e(
        self,
        path: Path,
        fields: dict[str, str],
        password: str | None,
        resumable: bool,
        progress: Progress | None,
    ) -> UploadResult:
        if password == "":
            raise UsageError("the E2E password must not be empty")
        e2e_fields = {**fields, "e2e": E2E_FORMAT, "filename": E2E_NAME}
        e2e_fields["filetype"] = "application/octet-stream"
        state = self._state(resumable)
        saved = (state.get(self._resume_key(path, e2e_fields)) or {}).get("extra", {})
        key = None if password is not None else unb64(saved.get("key")) or e2e.new_key()
        source = EncryptedSource(path, key=key, password=password, salt=unb64(saved.get("salt")))
        return self._upload_tus(path, source, e2e_fields, key, resumable, progress)

    def _upload_tus(
        self,
        path: Path,
        source: ByteSource,
        fields: dict[str, str],
        key: bytes | None,
        resumable: bool,
        progress: Progress | None,
    ) -> UploadResult:
        metadata = {"filename": path.name, "filetype": content_type_of(path), **fields}
        uploader = TusUploader(
            self.http, self.url("/tus/"), self.auth_headers(), self._state(resumable),
            self.chunk_size,
        )  # fmt: skip
        report = (lambda done: progress(path.name, done, source.size)) if progress else None
        resume_key = self._resume_key(path, fields)
        raw = uploader.upload(source, metadata, resume_key, report)
        encrypted = fields.get("e2e") == E2E_FORMAT
        size = path.stat().st_size  # of the plaintext, for an E2E file too
        return _result(raw, path.name, size, key if encrypted else None, encrypted)

    def _upload_multipart(
        self, paths: list[Path], fields: dict[str, str], progress: Progress | None
    ) -> UploadResult:
        total = sum(p.stat().st_size for p in paths)
        label = paths[0].name if len(paths) == 1 else f"{len(paths)} files"
        counter = _Counter(label, total, progress)
        with ExitStack() as stack:
            parts = [
                ("files", (p.name, _Counted(stack.enter_context(p.open("rb")), counter),
                           content_type_of(p)))
                for p in paths
            ]  # fmt: skip
            raw = self.json("POST", "/upload", data=fields, files=parts)
        return _result(raw, raw.get("name", label), int(raw.get("size", total)), None, False)

    def _state(self, resumable: bool) -> ResumeState:
        return self.upload_state if resumable else NoState()

    def _resume_key(self, path: Path, fields: Mapping[str, str]) -> str:
        """The file and its options, passwords left out: nothing derived from a password is
        stored (a resumed upload whose password changed shows in its header, and restarts)."""
        stat = path.stat()
        options = {name: value for name, value in fields.items() if name != "password"}
        digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.base_url}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{digest}"

    def download(
        self,
        url: str,
        dest: str | Path | None = None,
        *,
        password: str | None = None,
        e2e_password: str | None = None,
        resume: bool = True,
        progress: Progress | None = None,
        ask_password: AskPassword | None = None,
    ) -> DownloadResult:
        """Downloads a link to ``dest``: a file, or a directory (an existing one, or a string
        ending in ``/``) where it gets the server's name, or the decrypted one; by default the
        current directory.

        A ``.part`` file is resumed with ``Range``. ``#k=`` links and password E2E files are
        decrypted on this machine; the key is never sent. ``password`` goes to the server
        only when it asks for one (401), and decrypts an E2E file unless ``e2e_password`` is
        given. ``ask_password`` is called when a password is needed and none was given.
        """
        downloader = Downloader(
            self.http,
            self.download_state if resume else NoState(),
            headers_for(self.base_url, self.api_key),
        )
        if isinstance(dest, str) and dest.endswith(("/", os.sep)):
            Path(dest).mkdir(parents=True, exist_ok=True)  # "dir/": a directory, made if need be
        target = Path(dest) if dest is not None else None
        return downloader.download(
            url,
            target,
            password=password,
            e2e_password=e2e_password,
            resume=resume,
            progress=progress,
            ask_password=ask_password,
        )

    def manage(
        self,
        token: str,
        *,
        expires: str | None = None,
        password: str | None = None,
        max_downloads: int | None = None,
        public: bool | None = None,
    ) -> dict[str, Any]:
        """Changes the given settings (``password=""`` removes it, ``max_downloads=0`` the
        limit) and returns the file's state; with no change, just its state."""
        changes: dict[str, str] = {}
        if expires is not None:
            changes["expires"] = expires
        if password is not None:
            changes["password"] = password
        if max_downloads is not None:
            changes["max_downloads"] = str(max_downloads)
        if public is not None:
            changes["public"] = "true" if public else "false"
        path = f"/manage/{token_of(token)}"
        accept = {"Accept": "application/json"}
        if not changes:
            info: dict[str, Any] = self.json("GET", path, headers=accept)
            return info
        self.json("POST", path, data=changes, headers=accept)
        shown: dict[str, Any] = self.json("GET", path, headers=accept)
        return shown

    def delete(self, token: str) -> None:
        self.json("POST", f"/delete/{token_of(token)}", headers={"Accept": "application/json"})


def token_of(text: str) -> str:
    """A management token, from the token itself or a ``/manage/…`` or ``/delete/…`` URL."""
    match = re.search(r"/(?:manage|delete)/([A-Za-z0-9_-]+)", text)
    token = match.group(1) if match else text.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise UsageError("not a management token or link")
    return token


def _existing_files(paths: Sequence[str | Path]) -> list[Path]:
    if not paths:
        raise UsageError("no files to upload")
    files = [Path(p) for p in paths]
    for path in files:
        if not path.is_file():
            raise UsageError(f"{path}: not a file")
    return files


def _upload_fields(
    expires: str | None,
    password: str | None,
    max_downloads: int | None,
    private: bool,
    short: bool,
) -> dict[str, str]:
    fields: dict[str, str] = {}
    if expires:
        fields["expires"] = expires
    if password:
        fields["password"] = password
    if max_downloads:
        fields["max_downloads"] = str(max_downloads)
    if private:
        fields["public"] = "false"
    if short:
        fields["short_url"] = "true"
    return fields


def _result(
    raw: dict[str, Any], name: str, size: int, key: bytes | None, encrypted: bool
) -> UploadResult:
    download_url = str(raw["download_url"])
    short_url = raw.get("short_url")
    share_url = raw.get("share_url")
    drive_id = raw.get("drive_file_id")
    return UploadResult(
        name=name,
        size=size,
        link=e2e.share_link(download_url, key) if encrypted else download_url,
        download_url=download_url,
        manage_url=str(raw["manage_url"]),
        delete_url=str(raw["delete_url"]),
        short_url=short_url,
        short_link=(e2e.share_link(short_url, key) if encrypted else short_url)
        if short_url
        else None,
        expires_at=raw.get("expires_at"),
        e2e=encrypted,
        files=int(raw.get("files", 1)),
        drive_file_id=int(drive_id) if drive_id is not None else None,
        share_url=share_url,
        share_link=(e2e.share_link(share_url, key) if encrypted else share_url)
        if share_url
        else None,
        raw=raw,
    )


class _Counter:
    def __init__(self, name: str, total: int, progress: Progress | None) -> None:
        self.name, self.total, self.progress, self.done = name, total, progress, 0

    def add(self, count: int) -> None:
        self.done += count
        if self.progress:
            self.progress(self.name, min(self.done, self.total), self.total)


class _Counted:
    """A file object whose reads are counted (httpx streams multipart parts by reading)."""

    def __init__(self, handle: BinaryIO, counter: _Counter) -> None:
        self.handle, self.counter = handle, counter

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.counter.add(len(data))
        return data

    def fileno(self) -> int:
        return self.handle.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.handle.seek(offset, whence)

    def tell(self) -> int:
        return self.handle.tell()


class Drive:
    """The ``/apiv1`` drive of the API key's user."""

    def __init__(self, client: SatchelClient, v2_keys: tuple[str, str] | None) -> None:
        self.client = client
        self.v2_keys = v2_keys
        self._v2_session: dict[str, str] | None = None

    def _need_key(self) -> None:
        if not self.client.api_key:
            raise UsageError("the drive needs an API key (sat_…)")

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        self._need_key()
        return self.client.json(method, f"/apiv1{path}", **kwargs)

    def _pages(self, path: str, params: Mapping[str, str] | None = None) -> Listing:
        folders: list[dict[str, Any]] = []
        files: list[dict[str, Any]] = []
        folder = None
        cursor: str | None = None
        while True:
            query = {**(params or {}), "limit": str(PAGE_SIZE)}
            if cursor:
                query["cursor"] = cursor
            page = self._json("GET", path, params=query)
            folder = page.get("folder")
            folders += page.get("folders", [])
            files += page.get("files", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return Listing(folder, folders, files)

    def ls(self, folder_id: int | None = None) -> Listing:
        return self._pages("/files" if folder_id is None else f"/files/{folder_id}")

    def search(self, query: str) -> Listing:
        return self._pages("/search", {"q": query})

    def trash(self) -> Listing:
        return self._pages("/trash")

    def info(self, file_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self._json("GET", f"/files/{file_id}/properties")
        return found

    def mkdir(self, name: str, parent_id: int | None = None) -> dict[str, Any]:
        made: dict[str, Any] = self._json(
            "POST", "/folders", json={"name": name, "parent_id": parent_id}
        )
        return made

    def put(
        self,
        paths: Sequence[str | Path],
        folder_id: int | None = None,
        *,
        resumable: bool = True,
        progress: Progress | None = None,
    ) -> list[dict[str, Any]]:
        """Each file into the folder (None: the root) through tus; the new drive files."""
        self._need_key()
        results = self.client.upload(
            paths,
            to_drive_folder=folder_id or 0,
            separate=True,
            resumable=resumable,
            progress=progress,
        )
        return [self.info(r.drive_file_id) for r in results if r.drive_file_id is not None]

    def get(
        self,
        file_id: int,
        dest: str | Path | None = None,
        *,
        resume: bool = True,
        progress: Progress | None = None,
    ) -> DownloadResult:
        self._need_key()
        return self.client.download(
            self.client.url(f"/apiv1/download/{file_id}"), dest, resume=resume, progress=progress
        )

    def rm(self, item_id: int, *, folder: bool = False) -> dict[str, Any]:
        """Moves a file (or a folder with its contents) to the trash."""
        done: dict[str, Any] = self._json(
            "DELETE", f"/folders/{item_id}" if folder else f"/files/{item_id}"
        )
        return done

    def restore(self, item_id: int, *, kind: str | None = None) -> dict[str, Any]:
        params = {"type": kind} if kind else None
        done: dict[str, Any] = self._json("POST", f"/trash/{item_id}/restore", params=params)
        return done

    def purge(self, item_id: int, *, kind: str | None = None) -> dict[str, Any]:
        params = {"type": kind} if kind else None
        done: dict[str, Any] = self._json("DELETE", f"/trash/{item_id}", params=params)
        return done

    def empty_trash(self) -> dict[str, Any]:
        done: dict[str, Any] = self._json("DELETE", "/trash/empty")
        return done

    # /apiv1 has no move or copy; /api/v2 has, with its own key pair.

    def mv(self, item_id: int, to_folder: int | None, *, folder: bool = False) -> dict[str, Any]:
        """Moves a file (or a folder) into ``to_folder`` (None: the root)."""
        target = str(to_folder or 0)
        if folder:
            params = {"folder_id": str(item_id), "new_parent_folder_id": target}
            return self._v2("folder/move", params)
        moved = self._v2("file/move", {"file_id": str(item_id), "new_parent_folder_id": target})
        return self._as_apiv1(moved)

    def cp(self, file_id: int, to_folder: int | None) -> dict[str, Any]:
        """Copies a file; the new file (as ``/apiv1`` shows it, given an API key)."""
        answer = self._v2(
            "file/copy", {"file_id": str(file_id), "copy_to_folder_id": str(to_folder or 0)}
        )
        new_file: dict[str, Any] = answer.get("new_file", {}).get("data", {})
        return self._as_apiv1(new_file)

    def _as_apiv1(self, v2_file: dict[str, Any]) -> dict[str, Any]:
        if not self.client.api_key or not str(v2_file.get("id", "")).isdigit():
            return v2_file
        return self.info(int(v2_file["id"]))

    def _v2(self, endpoint: str, params: Mapping[str, str]) -> dict[str, Any]:
        session = self._v2_session or self._v2_authorize()
        answer = self._v2_call(endpoint, {**params, **session})
        data: dict[str, Any] = answer.get("data", answer)
        return data

    def _v2_authorize(self) -> dict[str, str]:
        if self.v2_keys is None:
            raise UsageError(
                "moving and copying use /api/v2: pass --v2-keys KEY1:KEY2 or set "
                "SATCHEL_V2_KEYS (`satchel admin create-v2-keys NAME`, or the account page)"
            )
        key1, key2 = self.v2_keys
        data = self._v2_call("authorize", {"key1": key1, "key2": key2})["data"]
        self._v2_session = {
            "access_token": str(data["access_token"]),
            "account_id": str(data["account_id"]),
        }
        return self._v2_session

    def _v2_call(self, endpoint: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = self.client.url(f"/api/v2/{endpoint}")
        try:
            response = self.client.http.post(url, data=dict(params))
        except httpx.TransportError as exc:
            raise network_error(exc, url) from exc
        if response.status_code >= 500:
            raise_for_status(response)
        body: dict[str, Any] = response.json()
        if body.get("_status") != "success":
            status = response.status_code if response.status_code >= 400 else 400
            raise ServerRefused(status, f"/api/v2 {endpoint}: {body.get('response', 'error')}")
        return body


class Keys:
    """The API keys of the key's user (the key needs ``manage_keys``)."""

    def __init__(self, client: SatchelClient) -> None:
        self.client = client

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        if not self.client.api_key:
            raise UsageError("managing keys needs an API key with manage_keys")
        return self.client.json(method, f"/apiv1/keys{path}", **kwargs)

    def list(self) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = self._json("GET", "")["keys"]
        return keys

    def create(
        self, label: str = "", permissions: Iterable[str] = (), allowed_ips: Iterable[str] = ()
    ) -> dict[str, Any]:
        """The new key, with its secret in ``"key"`` (shown this once)."""
        body = {
            "label": label,
            "permissions": dict.fromkeys(permissions, True),
            "allowed_ips": list(allowed_ips),
        }
        created: dict[str, Any] = self._json("POST", "", json=body)
        return created

    def revoke(self, key_id: int) -> None:
        self._json("DELETE", f"/{key_id}")
