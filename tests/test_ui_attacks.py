"""Attacks on the web interface as a hostile site or user would make them: every route that
changes something refuses a browser's session cookie that comes without the page's CSRF
token; and what the attacks on the running server found."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient
from tests.helpers import api_upload, log_in, make_folder, path_of, token_of, upload, user_key

from satchel.core.accounts import NewUser
from satchel.core.drive.folders import FolderChanges, FolderSharing
from satchel.db.models import FolderVisibility
from satchel.web.apiv2.errors import NO_TOKEN
from satchel.web.app import UNSAFE_METHODS
from satchel.web.csrf import CSRF_COOKIE, new_csrf_token
from satchel.web.state import SESSION_COOKIE, AppState

COOKIE_DOMAIN = "testserver.local"  # what a response's cookie gets for http://testserver

# Routes that change state but take no browser session, so a session cookie alone does
# nothing there and they need no CSRF token: what each answers such a request instead.
NO_SESSION = {
    # /apiv1 authenticates API keys only (Authorization header), never a cookie.
    "/apiv1/": "401",
    # /api/v2 authenticates its access_token parameter only, never a cookie.
    "/api/v2/": "v2-token",
}


def state_of(client: TestClient) -> AppState:
    state: AppState = client.app.state.satchel
    return state


@dataclass
class Victim:
    """An admin with something of every kind a route can name, and a session cookie."""

    params: dict[str, str]
    session: str


def _victim(client: TestClient) -> Victim:
    state = state_of(client)
    admin = state.accounts.create_user(NewUser("root", "password-root", is_admin=True))
    other = state.accounts.create_user(NewUser("other", "password-other"))
    key = user_key(client, "root")
    folder_id = make_folder(client, key, "Shared")
    [drive_file] = api_upload(client, key, ("a.txt", b"a"), folder_id=folder_id)
    md5 = hashlib.md5(b"folder-pw", usedforsecurity=False).hexdigest()
    sharing = FolderSharing(FolderVisibility.UNLISTED, md5)
    state.folders.edit(admin.id, folder_id, FolderChanges(sharing=sharing))
    folder = state.folders.live(admin.id, folder_id)
    assert folder is not None
    shared = upload(client, password="file-pw")  # a guest's, before any cookie is set
    tus = client.post("/tus/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "3"})
    assert tus.status_code == 201, tus.text
    state.admin.create_invite(admin, None)
    params = {
        "file_id": str(drive_file["id"]),
        "folder_id": str(folder_id),
        "item_id": str(drive_file["id"]),
        "key_id": str(state.apikeys.list(admin)[0].id),
        "user_id": str(other.id),
        "invite_id": str(state.admin.invite_list()[0].id),
        "token": token_of(shared),
        "uuid": shared["share_url"].rsplit("/", 1)[1],
        "public_id": shared["share_url"].rsplit("/", 1)[1],
        "code": folder.share_code,
        "slug": "Shared",
        "upload_id": tus.headers["location"].rsplit("/", 1)[1],
        "endpoint": "folder/create",
    }
    return Victim(params, state.sessions.create(admin, "127.0.0.1"))


def _path(route: Route, params: dict[str, str]) -> str:
    """The route's path with a real value for each of its parameters; a parameter this test
    does not know fails it (add a value above, for something of the victim's)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in params, f"{route.path}: give the test a value for {{{name}}}"
        return params[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, route.path)


def _changing_routes(client: TestClient) -> list[tuple[str, Route]]:
    found = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route):
            found += [
                (method, route) for method in sorted((route.methods or set()) & UNSAFE_METHODS)
            ]
    return found


def _send(client: TestClient, method: str, path: str) -> httpx.Response:
    """What a page of another site, or a form without the token, makes a browser send."""
    tus = {
        "Tus-Resumable": "1.0.0",
        "Upload-Length": "3",
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
    }
    if path.startswith("/tus"):
        return client.request(method, path, headers=tus, content=b"abc")
    if path in ("/upload", "/apiv1/upload"):
        return client.post(path, files={"files": ("x.txt", b"x", "text/plain")})
    form = {"name": "x", "password": "x", "username": "root", "item": "folder-1", "label": "x"}
    return client.request(method, path, data=form)


def _refusal(path: str, response: httpx.Response) -> str:
    """How the route refused the request, in the terms of NO_SESSION (or "csrf")."""
    body: Any = response.json()
    if response.status_code == 403 and "CSRF" in str(body.get("error", "")):
        return "csrf"
    if response.status_code == 401:
        return "401"
    if response.status_code == 405:
        return "405"  # a method the route takes only to refuse it
    if body.get("_status") == "error" and body.get("response") == NO_TOKEN:
        return "v2-token"
    return f"{response.status_code} {body}"


def test_every_route_that_changes_something_refuses_a_session_without_its_csrf_token(
    client: TestClient,
) -> None:
    victim = _victim(client)
    client.cookies.set(SESSION_COOKIE, victim.session, domain=COOKIE_DOMAIN)
    # The browser has its CSRF cookie; what another site cannot do is send it back as the token.
    client.cookies.set(CSRF_COOKIE, new_csrf_token(), domain=COOKIE_DOMAIN)
    routes = _changing_routes(client)
    assert len(routes) > 40  # every surface was enumerated, not a few
    wrong = {}
    for method, route in routes:
        path = _path(route, victim.params)
        expected = next((v for k, v in NO_SESSION.items() if path.startswith(k)), "csrf")
        got = _refusal(path, _send(client, method, path))
        if got != expected and not (got == "405" and method not in ("GET", "POST")):
            wrong[f"{method} {route.path}"] = got
    assert not wrong, wrong
    # And nothing of the victim's changed.
    state = state_of(client)
    assert state.apikeys.list(state.accounts.get("root"))[0].revoked_at is None
    assert not state.accounts.get("other").is_disabled


@pytest.mark.parametrize("allowed", sorted(NO_SESSION))
def test_the_routes_without_csrf_do_not_take_a_session(client: TestClient, allowed: str) -> None:
    """The allow-list is earned: with the session cookie and even the right CSRF token, these
    routes still do not act as the session's user."""
    victim = _victim(client)
    token = new_csrf_token()
    client.cookies.set(SESSION_COOKIE, victim.session, domain=COOKIE_DOMAIN)
    client.cookies.set(CSRF_COOKIE, token, domain=COOKIE_DOMAIN)
    client.headers["X-CSRF-Token"] = token
    for method, route in _changing_routes(client):
        path = _path(route, victim.params)
        if path.startswith(allowed):
            refusal = _refusal(path, _send(client, method, path))
            assert refusal in (NO_SESSION[allowed], "405"), path
            assert refusal != "405" or method not in ("GET", "POST"), path


BROWSER = {"Accept": "text/html,application/xhtml+xml", "User-Agent": "Mozilla/5.0"}


def _form(page: str) -> tuple[str, str, list[str]]:
    """The page's form: its method, its action and the names of its fields."""
    match = re.search(r'<form method="(\w+)"(?: action="([^"]*)")?>(.*?)</form>', page, re.S)
    assert match is not None, page
    return match.group(1), match.group(2) or "", re.findall(r'name="([^"]+)"', match.group(3))


def test_a_browser_asked_for_a_file_password_posts_it_never_in_the_url(
    client: TestClient,
) -> None:
    """/f/ of a protected file asks a browser with the share page's form, which posts the
    password (a ``?pw=`` form put it in the address bar, the history and proxies' logs)."""
    result = upload(client, b"the plans", password="blue whale")
    public_id = result["share_url"].rsplit("/", 1)[1]
    for asked in (result["download_url"], result["download_url"] + "?pw=wrong"):
        page = client.get(asked, headers=BROWSER)
        assert page.status_code == (401 if "?" not in asked else 403)
        method, action, fields = _form(page.text)
        assert (method, action) == ("post", f"/d/{public_id}")
        assert "pw" not in fields
        assert "password" in fields
        assert "the plans" not in page.text
    unlocked = client.post(
        f"/d/{public_id}",
        data={"password": "blue whale", "csrf_token": client.cookies[CSRF_COOKIE]},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert unlocked.status_code == 303
    assert client.get(f"/d/{public_id}/download").content == b"the plans"


def test_a_file_password_holds_in_a_folder_shared_by_link(client: TestClient) -> None:
    """A shared folder opens its files to whoever has the link, but not one that its owner
    gave a password of its own: that file asks for it there too, and its link in the
    folder's page is its share page, which asks for it in a form."""
    log_in(client, "alice")
    state = state_of(client)
    alice = state.accounts.get("alice")
    folder = state.folders.create(
        alice.id, "Holiday", None, FolderSharing(FolderVisibility.UNLISTED)
    )
    fields = {"folder_id": str(folder.id), "is_temp": "false", "public": "true"}
    plain = client.post(
        "/upload", files={"files": ("open.txt", b"open", "text/plain")}, data=fields
    )
    locked = client.post(
        "/upload",
        files={"files": ("locked.txt", b"only with the password", "text/plain")},
        data={**fields, "password": "blue whale"},
    )
    private = client.post(
        "/upload",
        files={"files": ("private.txt", b"private, with a password", "text/plain")},
        data={**fields, "password": "blue whale", "public": "false"},
    )
    assert plain.status_code == locked.status_code == private.status_code == 200
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token")
    listing = client.get(f"/folder/{folder.share_code}").json()
    urls = {item["name"]: item["url"] for item in listing["files"]}
    assert urls["locked.txt"] == locked.json()["share_url"]
    assert client.get(urls["open.txt"]).content == b"open"
    path = f"/folder/{folder.share_code}/file/{_drive_id(state, alice.id, 'locked.txt')}"
    assert client.get(path).status_code == 401
    assert client.get(path, params={"pw": "wrong"}).status_code == 403
    assert client.get(path, params={"pw": "blue whale"}).content == b"only with the password"
    # A private one has no share page: the folder's download asks for the password itself.
    assert urls["private.txt"].startswith(f"http://testserver/folder/{folder.share_code}/file/")
    asked = client.get(path_of(urls["private.txt"]), headers=BROWSER)
    assert asked.status_code == 401
    assert 'name="pw"' in asked.text
    assert "private, with" not in asked.text
    opened = client.get(path_of(urls["private.txt"]), params={"pw": "blue whale"})
    assert opened.content == b"private, with a password"


def _drive_id(state: AppState, owner_id: int, name: str) -> int:
    page = state.listings.search(owner_id, name, 10, None)
    [found] = [record for record in page.files if record.name == name]
    return found.id


def test_signed_values_a_browser_sends_back_are_refused_whatever_their_characters(
    client: TestClient,
) -> None:
    """The file pass, a folder's access cookie and a download's resume tag are checked
    against a MAC: one with non-ASCII characters is refused as a wrong one is (it raised,
    a 500, before)."""
    state = state_of(client)
    alice = state.accounts.create_user(NewUser("alice", "password-alice"))
    md5 = hashlib.md5(b"pw", usedforsecurity=False).hexdigest()
    sharing = FolderSharing(FolderVisibility.UNLISTED, md5)
    folder = state.folders.create(alice.id, "Locked", None, sharing)
    shared = upload(client, b"limited", password="pw")
    limited = upload(client, b"0123456789", max_downloads="2")
    public_id = shared["share_url"].rsplit("/", 1)[1]
    mac = "\u00e9" * 64
    for path, cookie in (
        (f"/d/{public_id}", f"satchel_file=99999999999.{mac}"),
        (f"/preview/{public_id}", f"satchel_file=99999999999.{mac}"),
        (f"/d/{public_id}/download", f"satchel_file=99999999999.{mac}"),
        (f"/folder/{folder.share_code}", f"satchel_folder={mac}"),
    ):
        answer = client.get(path, headers={"Cookie": cookie.encode()})
        assert answer.status_code == 401, (path, answer.text)
    limited_id = limited["share_url"].rsplit("/", 1)[1]
    tag = f'"{limited_id}.1.99999999999.{mac[:32]}"'
    resumed = client.get(
        path_of(limited["download_url"]),
        headers={"Range": "bytes=5-", "If-Range": tag.encode()},
    )
    assert resumed.status_code in (200, 206), resumed.text


def test_the_stats_page_of_a_protected_file_asks_for_its_password_in_a_post(
    client: TestClient,
) -> None:
    """/stats/ asked a browser with a ``?pw=`` form too: it now asks with the share page's
    form, whose file pass opens the stats page after it."""
    result = upload(client, b"the plans", "plans.txt", password="blue whale")
    public_id = result["share_url"].rsplit("/", 1)[1]
    stats = f"/stats/{public_id}"
    page = client.get(stats, headers=BROWSER)
    assert page.status_code == 401
    method, action, fields = _form(page.text)
    assert (method, action) == ("post", f"/d/{public_id}")
    assert "pw" not in fields
    assert "plans.txt" not in page.text
    unlocked = client.post(
        action,
        data={"password": "blue whale", "next": "stats", "csrf_token": client.cookies[CSRF_COOKIE]},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert unlocked.status_code == 303
    assert unlocked.headers["location"] == stats
    shown = client.get(stats, headers=BROWSER)
    assert shown.status_code == 200
    assert "plans.txt" in shown.text


def test_a_file_pass_is_refused_once_expired_or_with_its_time_changed(
    client: TestClient,
) -> None:
    """The pass a right password gives lasts FILE_PASS_LIFETIME: one signed for a time gone is
    refused, and so is a pass whose time was moved later (the MAC covers it)."""
    result = upload(client, b"the plans", password="blue whale")
    public_id = result["share_url"].rsplit("/", 1)[1]
    page = f"/d/{public_id}"
    client.get(page, headers=BROWSER)
    client.post(page, data={"password": "blue whale", "csrf_token": client.cookies[CSRF_COOKIE]})
    value = client.cookies.get("satchel_file", path=page)
    assert value is not None
    until, _, mac = value.partition(".")
    state = state_of(client)
    record = state.files.lookup(public_id)
    claim_of = lambda at: f"{record.uuid}:{record.password_hash}:None:{at}".encode()  # noqa: E731
    assert state.keys.sign(b"file-pass", claim_of(until)) == mac  # the claim, as core.access has it
    claim = claim_of(int(until) - 7200)
    expired = f"{int(until) - 7200}.{state.keys.sign(b'file-pass', claim)}"
    for sent, status in ((value, 200), (f"{int(until) + 86400}.{mac}", 401), (expired, 401)):
        client.cookies.clear()
        assert client.get(page, headers={"Cookie": f"satchel_file={sent}"}).status_code == status
