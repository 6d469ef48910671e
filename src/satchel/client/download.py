"""Downloads to disk: a ``.part`` file resumed with ``Range``, then, for an end-to-end
encrypted file, decrypted into place. A link's ``#k=`` key is split off before any request."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

import httpx

from satchel.client.errors import (
    IntegrityFailed,
    PasswordNeeded,
    ServerFailed,
    ServerRefused,
    UsageError,
    network_error,
    raise_for_status,
    strip_secret,
)
from satchel.client.state import ResumeState
from satchel.crypto import e2e

WRITE_SIZE = 1 << 20
MAX_ATTEMPTS = 5
E2E_FORMAT = "v1"

Progress = Callable[[str, int, int | None], None]  # (name, bytes done, total or None)
AskPassword = Callable[[str], str | None]  # (prompt) → a password, or None to give up


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    name: str
    size: int
    e2e: bool


@dataclass(frozen=True)
class _Fetched:
    """What the server said about the file; kept in the resume state with the part."""

    name: str
    total: int | None
    e2e: bool


class Target:
    """Where the bytes go: ``-o FILE``, or a directory (the current one by default) where the
    file gets the name the server (or the decrypted metadata) gives it."""

    def __init__(self, url: str, dest: Path | None) -> None:
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        if dest is not None and dest.is_symlink():
            dest = dest.resolve()  # the file it points to is the one written
        # A device or a pipe (-o /dev/null) is written into, never replaced by a rename.
        self.special = (
            dest is not None and dest.exists() and not dest.is_dir() and not dest.is_file()
        )
        if self.special:
            assert dest is not None
            self.fixed: Path | None = dest
            self.directory = Path(tempfile.gettempdir())
            self.part = self.directory / f"satchel-{digest}-{os.getpid()}.part"
        elif dest is not None and not dest.is_dir():
            self.fixed = dest
            self.directory = dest.parent
            self.part = dest.with_name(dest.name + ".part")
        else:
            self.fixed = None
            self.directory = dest or Path.cwd()
            self.part = self.directory / f".satchel-{digest}.part"

    def place(self, source: Path, final: Path) -> None:
        """``source`` becomes ``final``: renamed, or copied into a device or pipe."""
        if self.special:
            with source.open("rb") as reader, final.open("wb") as writer:
                shutil.copyfileobj(reader, writer, WRITE_SIZE)
            source.unlink()
        else:
            os.replace(source, final)

    def final(self, name: str) -> Path:
        if self.fixed is not None:
            return self.fixed
        return _unused(self.directory / safe_name(name))


def safe_name(name: str) -> str:
    """A base name that cannot leave the directory or hide in it."""
    base = re.split(r"[/\\]", name)[-1].strip().lstrip(".")
    base = "".join(c for c in base if c.isprintable())
    return base or "download"


def _unused(path: Path) -> Path:
    if not path.exists():
        return path
    stem, suffix = path.stem, path.suffix
    number = 2
    while (candidate := path.with_name(f"{stem} ({number}){suffix}")).exists():
        number += 1
    return candidate


# A share page, /d/{uuid}: its file is the download /f/{uuid}.
_SHARE_PAGE = re.compile(r"^(https?://[^/?#]+(?:/[^?#]*)?)/d/([0-9a-fA-F-]{36})/?(?:\?.*)?$")


def file_url(url: str) -> str:
    """The download URL of a link: a share page's (``…/d/{uuid}``) is its ``…/f/{uuid}``;
    any other link is fetched as it is."""
    match = _SHARE_PAGE.match(url)
    return f"{match.group(1)}/f/{match.group(2)}" if match else url


def filename_from(response: httpx.Response) -> str:
    disposition = response.headers.get("content-disposition", "")
    match = re.search(r"filename\*\s*=\s*UTF-8''([^;]+)", disposition, re.IGNORECASE)
    if match:
        return unquote(match.group(1).strip())
    match = re.search(r'filename\s*=\s*"([^"]*)"', disposition)
    if match:
        return match.group(1)
    return unquote(response.url.path.rstrip("/").rsplit("/", 1)[-1]) or "download"


def _total(response: httpx.Response) -> int | None:
    if response.status_code == 206:
        _, _, total = response.headers.get("content-range", "").rpartition("/")
        return int(total) if total.isdigit() else None
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else None


def _range_start(response: httpx.Response) -> int:
    match = re.match(r"bytes (\d+)-", response.headers.get("content-range", ""))
    return int(match.group(1)) if match else -1


class Downloader:
    def __init__(
        self, http: httpx.Client, state: ResumeState, headers: Callable[[str], dict[str, str]]
    ) -> None:
        self.http = http
        self.state = state
        self.headers = headers  # extra headers for a URL (the API key, for our own server)
        self.sleep: Callable[[float], None] = time.sleep
        self.need_secret = False

    def download(
        self,
        url: str,
        dest: Path | None = None,
        *,
        password: str | None = None,
        e2e_password: str | None = None,
        resume: bool = True,
        progress: Progress | None = None,
        ask_password: AskPassword | None = None,
    ) -> DownloadResult:
        try:
            fetch_url, key = e2e.parse_link(url)  # the key stays here, whatever happens next
        except e2e.E2EError as exc:
            raise IntegrityFailed(f"bad link: {exc}") from None
        if not fetch_url.lower().startswith(("http://", "https://")):
            raise UsageError(f"not a link: {strip_secret(fetch_url)!r} (http:// or https://)")
        fetch_url = file_url(fetch_url)
        target = Target(fetch_url, dest)
        resume = resume and not target.special
        # Without a key, a password or someone to ask, an E2E file cannot be decrypted:
        # say so before fetching it rather than after.
        self.need_secret = key is None and not (e2e_password or password) and ask_password is None
        fetched, server_password = self._to_part(
            fetch_url, target, password, resume, progress, ask_password
        )
        if fetched.e2e or key is not None:
            secret = _Secret(key, e2e_password or password or server_password, ask_password)
            result = _decrypt_part(target, secret, progress)
        else:
            final = target.final(fetched.name)
            size = target.part.stat().st_size
            target.place(target.part, final)
            result = DownloadResult(final, final.name, size, False)
        self.state.drop(str(target.part.resolve()))
        return result

    # -- fetching into the .part file -------------------------------------------------------

    def _to_part(
        self,
        url: str,
        target: Target,
        password: str | None,
        resume: bool,
        progress: Progress | None,
        ask_password: AskPassword | None,
    ) -> tuple[_Fetched, str | None]:
        while True:
            try:
                return self._fetch_with_retries(url, target, password, resume, progress), password
            except ServerRefused as exc:
                if exc.status != 401 or password is not None:
                    raise
                password = ask_password("Password for this file: ") if ask_password else None
                if not password:
                    raise PasswordNeeded(f"{exc.detail}: pass --password") from None

    def _fetch_with_retries(
        self,
        url: str,
        target: Target,
        password: str | None,
        resume: bool,
        progress: Progress | None,
    ) -> _Fetched:
        failures = 0
        while True:
            try:
                return self._fetch(url, target, password, resume, progress)
            except ServerFailed:
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    raise
                self.sleep(min(0.5 * 2**failures, 15.0))
                resume = True  # what arrived before the failure is kept

    def _fetch(
        self,
        url: str,
        target: Target,
        password: str | None,
        resume: bool,
        progress: Progress | None,
    ) -> _Fetched:
        key = str(target.part.resolve())
        entry = self._entry(key, url, target.part) if resume else None
        have = target.part.stat().st_size if entry else 0
        if entry and entry.get("total") == have:
            return _Fetched(str(entry["name"]), have, bool(entry["e2e"]))  # done last time
        headers = dict(self.headers(url))
        if entry:
            headers.update({"Range": f"bytes={have}-", "If-Range": str(entry["etag"])})
        params = {"pw": password} if password is not None else None
        try:
            with self.http.stream("GET", url, headers=headers, params=params) as response:
                return self._receive(response, key, url, target, have, progress)
        except httpx.TransportError as exc:
            raise network_error(exc, url) from exc

    def _entry(self, key: str, url: str, part: Path) -> dict[str, Any] | None:
        entry = self.state.get(key)
        if entry is None or entry.get("url") != url or not entry.get("etag"):
            return None
        return entry if part.exists() else None

    def _receive(
        self,
        response: httpx.Response,
        key: str,
        url: str,
        target: Target,
        have: int,
        progress: Progress | None,
    ) -> _Fetched:
        if response.status_code == 416:
            self.state.drop(key)  # the part no longer fits the file: start again
            target.part.unlink(missing_ok=True)
            raise ServerFailed("the partial download does not match the file; run again")
        raise_for_status(response)
        appending = response.status_code == 206 and _range_start(response) == have
        fetched = _Fetched(
            filename_from(response),
            _total(response),
            response.headers.get("x-e2e-format") == E2E_FORMAT,
        )
        if fetched.e2e and self.need_secret:
            raise IntegrityFailed(
                "this file is end-to-end encrypted: use its link with #k=… "
                "or give --e2e-password (nothing was downloaded)"
            )
        self._remember(key, url, response, fetched)
        done = have if appending else 0
        target.part.parent.mkdir(parents=True, exist_ok=True)
        with target.part.open("ab" if appending else "wb") as out:
            for piece in response.iter_bytes(WRITE_SIZE):
                out.write(piece)
                done += len(piece)
                if progress:
                    progress(fetched.name, done, fetched.total)
        if fetched.total is not None and done != fetched.total:
            raise IntegrityFailed(f"got {done} bytes of {fetched.total}")
        return fetched

    def _remember(self, key: str, url: str, response: httpx.Response, fetched: _Fetched) -> None:
        etag = response.headers.get("etag")
        if etag:
            entry = {"url": url, "etag": etag, "name": fetched.name, "e2e": fetched.e2e}
            self.state.put(key, {**entry, "total": fetched.total})
        else:
            self.state.drop(key)


@dataclass
class _Secret:
    key: bytes | None
    password: str | None
    ask: AskPassword | None


def _decrypt_part(target: Target, secret: _Secret, progress: Progress | None) -> DownloadResult:
    with target.part.open("rb") as source:
        try:
            decryptor = e2e.Decryptor(_pieces(source))
            metadata = _unlock(decryptor, secret)
        except e2e.E2EError as exc:
            raise IntegrityFailed(f"cannot decrypt: {exc}") from None
        final = target.final(metadata.name)
        temp = (
            target.part.with_suffix(".plain")  # a device's folder is no place for it
            if target.special
            else final.with_name(f".{final.name}.satchel-tmp")
        )
        try:
            _write_plain(decryptor.chunks(), temp, metadata, progress)
        except e2e.E2EError as exc:
            temp.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                target.part.unlink()  # altered bytes: a re-run fetches them again
            raise IntegrityFailed(f"cannot decrypt: {exc}") from None
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    target.place(temp, final)
    target.part.unlink()
    return DownloadResult(final, metadata.name, metadata.size, True)


def _pieces(source: BinaryIO) -> Iterator[bytes]:
    return iter(lambda: source.read(WRITE_SIZE), b"")


def _unlock(decryptor: e2e.Decryptor, secret: _Secret) -> e2e.Metadata:
    if secret.key is not None:
        return decryptor.unlock(key=secret.key)
    if not decryptor.needs_password:
        raise e2e.SecretRequired("this file is end-to-end encrypted: use its link with #k=…")
    password, tries = secret.password, 0
    while True:
        if not password:
            password = secret.ask("Password to decrypt the file: ") if secret.ask else None
            if not password:
                raise e2e.SecretRequired("this file needs its E2E password: pass --password")
        try:
            return decryptor.unlock(password=password)
        except e2e.WrongKey:
            tries += 1
            if secret.ask is None or tries >= 3:
                raise
            password = None


def _write_plain(
    chunks: Iterator[bytes], temp: Path, metadata: e2e.Metadata, progress: Progress | None
) -> None:
    done = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with os.fdopen(os.open(temp, flags, 0o666), "wb") as out:
        for chunk in chunks:
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(metadata.name, done, metadata.size)


def headers_for(base_url: str | None, api_key: str | None) -> Callable[[str], dict[str, str]]:
    """The API key goes only to the server it belongs to, never to another host."""

    def headers(url: str) -> dict[str, str]:
        if api_key and base_url and _origin(url) == _origin(base_url):
            return {"Authorization": f"Bearer {api_key}"}
        return {}

    return headers


def _origin(url: str) -> tuple[str, str]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.netloc.decode("ascii")
