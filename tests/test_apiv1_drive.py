"""/apiv1 drive endpoints over HTTP: upload, download, listing, folders, search, trash."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from starlette.testclient import TestClient
from tests.helpers import api_upload, bearer, make_folder, user_key

from satchel.db.models import JobLease
from satchel.jobs.runner import JobRunner
from satchel.web.state import AppState


def run_jobs_at(state: AppState, moment: datetime) -> str | None:
    """Runs the job runner's due jobs as if it were ``moment``; the purge job's result."""
    state.files.clock = state.trash.clock = lambda: moment
    JobRunner(state.db, state.jobs.jobs, clock=lambda: moment).run_due()
    with state.db.read() as session:
        return session.scalar(select(JobLease.last_result).where(JobLease.name == "purge_trash"))


def names(listing: dict) -> list[str]:  # type: ignore[type-arg]
    return [f["name"] for f in listing["folders"]] + [f["name"] for f in listing["files"]]


def test_upload_several_files_each_its_own_and_download(client: TestClient) -> None:
    key = user_key(client, "alice")
    files = api_upload(client, key, ("a.txt", b"first"), ("b.bin", b"\x00" * 3000))
    assert [f["name"] for f in files] == ["a.txt", "b.bin"]
    assert [f["size"] for f in files] == [5, 3000]
    assert all(f["public"] is False and f["expires_at"] is None for f in files)
    assert all(f["manage_url"].startswith("http://testserver/manage/") for f in files)
    got = client.get(f"/apiv1/download/{files[0]['id']}", headers=bearer(key))
    assert got.status_code == 200
    assert got.content == b"first"
    ranged = client.get(
        f"/apiv1/download/{files[1]['id']}", headers={**bearer(key), "Range": "bytes=10-19"}
    )
    assert ranged.status_code == 206
    assert ranged.content == b"\x00" * 10
    assert ranged.headers["content-range"] == "bytes 10-19/3000"
    # Private by default: the public link does not serve it to anyone else.
    assert client.get(files[0]["download_url"]).status_code == 403


def test_name_clashes_are_numbered(client: TestClient) -> None:
    key = user_key(client, "alice")
    api_upload(client, key, ("a.txt", b"1"))
    second = api_upload(client, key, ("a.txt", b"2"), ("A.txt", b"3"))
    assert [f["name"] for f in second] == ["a (2).txt", "A (3).txt"]
    folder = make_folder(client, key, "docs")
    again = client.post("/apiv1/folders", json={"name": "docs"}, headers=bearer(key))
    assert again.json()["name"] == "docs (2)"
    inside = api_upload(client, key, ("a.txt", b"4"), folder_id=folder)
    assert inside[0]["name"] == "a.txt"  # another folder, no clash
    assert inside[0]["folder_id"] == folder


def test_nested_folders_and_listing(client: TestClient) -> None:
    key = user_key(client, "alice")
    top = make_folder(client, key, "top")
    sub = make_folder(client, key, "sub", parent_id=top)
    api_upload(client, key, ("deep.txt", b"deep"), folder_id=sub)
    api_upload(client, key, ("root.txt", b"root"))
    root = client.get("/apiv1/files", headers=bearer(key)).json()
    assert root["folder"] is None
    assert names(root) == ["top", "root.txt"]
    listing = client.get(f"/apiv1/files/{sub}", headers=bearer(key)).json()
    assert listing["folder"]["parent_id"] == top
    assert names(listing) == ["deep.txt"]
    assert listing["next_cursor"] is None
    assert client.get("/apiv1/files/999999", headers=bearer(key)).status_code == 404
    missing_parent = client.post(
        "/apiv1/folders", json={"name": "x", "parent_id": 424242}, headers=bearer(key)
    )
    assert missing_parent.status_code == 404
    assert client.post("/apiv1/folders", json={}, headers=bearer(key)).status_code == 400
    assert (
        client.post("/apiv1/folders", json={"name": "  "}, headers=bearer(key)).status_code == 400
    )


def test_pagination_walks_every_item_once(client: TestClient) -> None:
    key = user_key(client, "alice")
    for index in range(3):
        make_folder(client, key, f"dir{index}")
    api_upload(client, key, *[(f"f{index:02}.txt", b"x") for index in range(7)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        page = client.get("/apiv1/files", params=params, headers=bearer(key)).json()
        seen += names(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"dir{i}" for i in range(3)] + [f"f{i:02}.txt" for i in range(7)]
    bad = client.get("/apiv1/files", params={"cursor": "garbage!"}, headers=bearer(key))
    assert bad.status_code == 400
    assert client.get("/apiv1/files?limit=0", headers=bearer(key)).status_code == 400
    assert client.get("/apiv1/files?limit=1001", headers=bearer(key)).status_code == 400


def test_properties(client: TestClient) -> None:
    key = user_key(client, "alice")
    [uploaded] = api_upload(client, key, ("report.pdf", b"%PDF-1.4"))
    props = client.get(f"/apiv1/files/{uploaded['id']}/properties", headers=bearer(key)).json()
    assert props["name"] == "report.pdf"
    assert props["size"] == 8
    assert props["downloads"] == 0
    assert props["type"] == "file"
    assert props["created_at"].endswith("Z")


def test_search_treats_wildcards_literally(client: TestClient) -> None:
    key = user_key(client, "alice")
    api_upload(client, key, ("100%_done.txt", b"1"), ("100x done.txt", b"2"), ("Report.TXT", b"3"))
    make_folder(client, key, "reports")
    found = client.get("/apiv1/search", params={"q": "%_"}, headers=bearer(key)).json()
    assert names(found) == ["100%_done.txt"]
    found = client.get("/apiv1/search", params={"q": "_"}, headers=bearer(key)).json()
    assert names(found) == ["100%_done.txt"]
    found = client.get("/apiv1/search", params={"q": "report"}, headers=bearer(key)).json()
    assert names(found) == ["reports", "Report.TXT"]  # case-insensitive, folders first
    page = client.get(
        "/apiv1/search", params={"q": "report", "limit": "1"}, headers=bearer(key)
    ).json()
    assert names(page) == ["reports"]
    rest = client.get(
        "/apiv1/search",
        params={"q": "report", "cursor": page["next_cursor"]},
        headers=bearer(key),
    ).json()
    assert names(rest) == ["Report.TXT"]
    assert client.get("/apiv1/search", headers=bearer(key)).status_code == 400


def test_trash_restore_and_delete_file(client: TestClient) -> None:
    key = user_key(client, "alice")
    [kept, gone] = api_upload(client, key, ("keep.txt", b"k"), ("gone.txt", b"g"))
    trashed = client.delete(f"/apiv1/files/{kept['id']}", headers=bearer(key))
    assert trashed.json() == {"success": True, "trashed": {"type": "file", "id": kept["id"]}}
    client.delete(f"/apiv1/files/{gone['id']}", headers=bearer(key))
    assert names(client.get("/apiv1/files", headers=bearer(key)).json()) == []
    trash = client.get("/apiv1/trash", headers=bearer(key)).json()
    assert names(trash) == ["gone.txt", "keep.txt"]
    assert trash["files"][0]["purge_at"] is not None
    # Trashed files are not downloadable, searchable or listed.
    assert client.get(f"/apiv1/download/{kept['id']}", headers=bearer(key)).status_code == 404
    assert names(client.get("/apiv1/search?q=keep", headers=bearer(key)).json()) == []
    restored = client.post(f"/apiv1/trash/{kept['id']}/restore", headers=bearer(key))
    assert restored.status_code == 200
    assert restored.json()["restored"]["name"] == "keep.txt"
    assert "trashed_at" not in restored.json()["restored"]
    assert client.get(f"/apiv1/download/{kept['id']}", headers=bearer(key)).content == b"k"
    deleted = client.delete(f"/apiv1/trash/{gone['id']}", headers=bearer(key))
    assert deleted.json() == {"success": True, "deleted_files": 1}
    assert names(client.get("/apiv1/trash", headers=bearer(key)).json()) == []
    assert client.delete(f"/apiv1/trash/{gone['id']}", headers=bearer(key)).status_code == 404
    # A live file is not "in the trash".
    assert client.post(f"/apiv1/trash/{kept['id']}/restore", headers=bearer(key)).status_code == 404


def test_public_links_of_trashed_files_are_dead_until_restored(client: TestClient) -> None:
    key = user_key(client, "alice")
    [record] = api_upload(client, key, ("shared.txt", b"shared"))
    token = record["manage_url"].rsplit("/", 1)[1]
    assert client.post(f"/manage/{token}", data={"public": "true"}, headers=bearer(key)).is_success
    assert client.get(record["download_url"]).content == b"shared"
    client.delete(f"/apiv1/files/{record['id']}", headers=bearer(key))
    assert client.get(record["download_url"]).status_code == 404
    assert client.get(f"/manage/{token}", headers=bearer(key)).status_code == 404
    client.post(f"/apiv1/trash/{record['id']}/restore", headers=bearer(key))
    assert client.get(record["download_url"]).content == b"shared"


def test_restore_renames_on_clash(client: TestClient) -> None:
    key = user_key(client, "alice")
    [old] = api_upload(client, key, ("a.txt", b"old"))
    client.delete(f"/apiv1/files/{old['id']}", headers=bearer(key))
    api_upload(client, key, ("a.txt", b"new"))
    restored = client.post(f"/apiv1/trash/{old['id']}/restore", headers=bearer(key)).json()
    assert restored["restored"]["name"] == "a (2).txt"


def test_trashed_folder_restored_file_by_file(client: TestClient) -> None:
    key = user_key(client, "alice")
    top = make_folder(client, key, "top")
    sub = make_folder(client, key, "sub", parent_id=top)
    [one] = api_upload(client, key, ("one.txt", b"1"), folder_id=top)
    [two] = api_upload(client, key, ("two.txt", b"2"), folder_id=sub)
    assert client.delete(f"/apiv1/folders/{top}", headers=bearer(key)).status_code == 200
    assert names(client.get("/apiv1/files", headers=bearer(key)).json()) == []
    assert client.get(f"/apiv1/files/{top}", headers=bearer(key)).status_code == 404
    trash = client.get("/apiv1/trash", headers=bearer(key)).json()
    assert names(trash) == ["sub", "top", "one.txt", "two.txt"]
    by_name = {f["name"]: f for f in trash["files"] + trash["folders"]}
    assert by_name["two.txt"]["trashed_with_folder_id"] == top
    # Each file alone: its folder is in the trash, so it comes back to the root.
    for record in (one, two):
        restored = client.post(
            f"/apiv1/trash/{record['id']}/restore?type=file", headers=bearer(key)
        ).json()["restored"]
        assert restored["folder_id"] is None
    assert names(client.get("/apiv1/files", headers=bearer(key)).json()) == ["one.txt", "two.txt"]
    assert client.get(f"/apiv1/download/{two['id']}", headers=bearer(key)).content == b"2"
    # The folders are still in the trash, empty now; deleting the top one takes "sub" too.
    gone = client.delete(f"/apiv1/trash/{top}?type=folder", headers=bearer(key))
    assert gone.json() == {"success": True, "deleted_files": 0}
    assert names(client.get("/apiv1/trash", headers=bearer(key)).json()) == []


def test_trashed_folder_restored_whole(client: TestClient) -> None:
    key = user_key(client, "alice")
    top = make_folder(client, key, "top")
    sub = make_folder(client, key, "sub", parent_id=top)
    [inner] = api_upload(client, key, ("inner.txt", b"i"), folder_id=sub)
    [alone] = api_upload(client, key, ("alone.txt", b"a"), folder_id=top)
    client.delete(f"/apiv1/files/{alone['id']}", headers=bearer(key))  # trashed on its own
    client.delete(f"/apiv1/folders/{top}", headers=bearer(key))
    restored = client.post(f"/apiv1/trash/{top}/restore?type=folder", headers=bearer(key))
    assert restored.json()["restored"]["type"] == "folder"
    assert names(client.get(f"/apiv1/files/{sub}", headers=bearer(key)).json()) == ["inner.txt"]
    # Trashed before the folder, separately: stays in the trash.
    assert names(client.get(f"/apiv1/files/{top}", headers=bearer(key)).json()) == ["sub"]
    assert names(client.get("/apiv1/trash", headers=bearer(key)).json()) == ["alone.txt"]
    assert inner["folder_id"] == sub


def test_restore_folder_when_its_parent_is_gone(client: TestClient) -> None:
    key = user_key(client, "alice")
    top = make_folder(client, key, "top")
    sub = make_folder(client, key, "sub", parent_id=top)
    client.delete(f"/apiv1/folders/{sub}", headers=bearer(key))
    client.delete(f"/apiv1/folders/{top}", headers=bearer(key))
    client.delete(f"/apiv1/trash/{top}?type=folder", headers=bearer(key))
    restored = client.post(f"/apiv1/trash/{sub}/restore", headers=bearer(key)).json()
    assert restored["restored"]["parent_id"] is None


def test_ambiguous_trash_id_needs_a_type(client: TestClient) -> None:
    key = user_key(client, "alice")
    folder = make_folder(client, key, "dir")
    [record] = api_upload(client, key, ("f.txt", b"f"))
    assert folder == record["id"] == 1  # files and folders are numbered separately
    client.delete(f"/apiv1/files/{record['id']}", headers=bearer(key))
    client.delete(f"/apiv1/folders/{folder}", headers=bearer(key))
    assert client.post("/apiv1/trash/1/restore", headers=bearer(key)).status_code == 409
    assert client.post("/apiv1/trash/1/restore?type=bogus", headers=bearer(key)).status_code == 400
    ok = client.post("/apiv1/trash/1/restore?type=folder", headers=bearer(key))
    assert ok.json()["restored"]["type"] == "folder"
    assert (
        client.post("/apiv1/trash/1/restore", headers=bearer(key)).json()["restored"]["type"]
        == "file"
    )


def test_empty_trash_deletes_blobs(client: TestClient) -> None:
    state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
    key = user_key(client, "alice")
    folder = make_folder(client, key, "dir")
    api_upload(client, key, ("a.txt", b"a"), ("b.txt", b"b"), folder_id=folder)
    [c] = api_upload(client, key, ("c.txt", b"c"))
    blobs_before = len(list(state.files.store.iter_blobs()))
    client.delete(f"/apiv1/folders/{folder}", headers=bearer(key))
    client.delete(f"/apiv1/files/{c['id']}", headers=bearer(key))
    emptied = client.delete("/apiv1/trash/empty", headers=bearer(key))
    assert emptied.json() == {"success": True, "deleted_files": 3}
    assert len(list(state.files.store.iter_blobs())) == blobs_before - 3
    assert names(client.get("/apiv1/trash", headers=bearer(key)).json()) == []


def test_trash_is_purged_after_48_hours(client: TestClient) -> None:
    state: AppState = client.app.state.satchel  # type: ignore[attr-defined]
    key = user_key(client, "alice")
    folder = make_folder(client, key, "dir")
    api_upload(client, key, ("in.txt", b"i"), folder_id=folder)
    [loose] = api_upload(client, key, ("loose.txt", b"l"))
    [kept] = api_upload(client, key, ("kept.txt", b"k"))
    client.delete(f"/apiv1/folders/{folder}", headers=bearer(key))
    client.delete(f"/apiv1/files/{loose['id']}", headers=bearer(key))
    start = state.files.clock()
    assert run_jobs_at(state, start + timedelta(hours=47, minutes=59)) == (
        "purged 0 file(s) from the trash"
    )
    assert len(client.get("/apiv1/trash", headers=bearer(key)).json()["files"]) == 2
    assert run_jobs_at(state, start + timedelta(hours=48, minutes=1)) == (
        "purged 2 file(s) from the trash"
    )
    trash = client.get("/apiv1/trash", headers=bearer(key)).json()
    assert names(trash) == []
    live = client.get("/apiv1/files", headers=bearer(key)).json()
    assert names(live) == ["kept.txt"]
    assert client.get(f"/apiv1/download/{kept['id']}", headers=bearer(key)).content == b"k"


def test_ids_are_never_reused(client: TestClient) -> None:
    key = user_key(client, "alice")
    [first] = api_upload(client, key, ("a.txt", b"a"))
    folder = make_folder(client, key, "f")
    client.delete(f"/apiv1/files/{first['id']}", headers=bearer(key))
    client.delete(f"/apiv1/folders/{folder}", headers=bearer(key))
    client.delete("/apiv1/trash/empty", headers=bearer(key))
    [second] = api_upload(client, key, ("b.txt", b"b"))
    assert second["id"] > first["id"]
    assert make_folder(client, key, "g") > folder


def test_folder_names_with_slashes_are_refused(client: TestClient) -> None:
    key = user_key(client, "alice")
    for name in ("a/b", "a\\b", ".."):
        response = client.post("/apiv1/folders", json={"name": name}, headers=bearer(key))
        assert response.status_code == 400, name
