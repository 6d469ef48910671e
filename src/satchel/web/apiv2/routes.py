"""``/api/v2``: the YetiShare-compatible API (SPEC §6).

Parameters come from the query string or the body (urlencoded, multipart or JSON) on GET and
POST alike. Every answer is the YetiShare envelope; errors are HTTP 200 with ``_status`` and
``status`` "error" and the reference's messages, an unknown endpoint the same with 404.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from multipart import parse_options_header
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from satchel.core.drive import Cursor, FileChanges, FolderChanges, FolderSharing
from satchel.core.files import Actor
from satchel.core.ids import parse_number
from satchel.core.ingest import UploadIngest
from satchel.core.options import UploadOptions
from satchel.db.models import Folder, StoredFile, User
from satchel.errors import RateLimited, SatchelError, ServiceUnavailable
from satchel.web.apiv2 import openapi, shapes
from satchel.web.http import client_ip, read_small_form
from satchel.web.public.uploads import (
    check_quota,
    check_space,
    checked_length,
    ingest_body,
    max_upload,
    upload_slot,
)
from satchel.web.state import AppState

NO_TOKEN = "Please provide the access_token param."  # noqa: S105 - a message
NO_ACCOUNT = "Please provide the account_id param."
BAD_TOKEN = "Could not validate access_token and account_id, please reauthenticate or try again."  # noqa: S105
BAD_LOGIN = (
    "Could not authenticate user. The username and password may be invalid or your account "
    "may be locked from too many failed logins."
)
NO_FILE = "Could not find file based on file_id."
NO_FILE_ID = "Please provide the file_id param."
NO_FOLDER = "Could not find folder based on folder_id."
DEST_FOLDER = "Could not find the destination folder id defined by folder_id."
NO_PARENT = "Could not find the parent folder id defined by parent_id."
MD5 = re.compile(r"[0-9a-fA-F]{32}")
ROOT_VALUES = {"", "0", "null"}
UPLOAD_FIELD = frozenset({"upload_file", "upload_file[]"})  # [] as PHP-style clients send it


class V2Error(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


Handler = Callable[[Request, AppState, dict[str, str], User], Awaitable[dict[str, Any]]]


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def success(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse({**body, "_status": "success", "_datetime": now_text()})


def failure(message: str, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        {"response": message, "_status": "error", "status": "error", "_datetime": now_text()},
        status_code=status_code,
    )


async def params_of(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        kind, _ = parse_options_header(request.headers.get("content-type", ""))
        if kind or request.headers.get("content-length", "0") != "0":
            params.update(await read_small_form(request))
    return params


def _id_param(params: dict[str, str], name: str, missing: str) -> int:
    text = params.get(name, "").strip()
    if not text:
        raise V2Error(missing)
    number = parse_number(text)
    if number is None:
        raise V2Error(NO_FILE if name == "file_id" else NO_FOLDER)
    return number


def _folder_param(params: dict[str, str], name: str, not_found: str) -> int | None:
    """Empty, 0 or "null" is the root."""
    text = params.get(name, "").strip()
    if text.lower() in ROOT_VALUES:
        return None
    number = parse_number(text)
    if number is None:
        raise V2Error(not_found)
    return number


def _is_public(text: str) -> int:
    return int(text) if text.strip() in ("0", "1", "2") else 0


def _password(text: str) -> str | None:
    value = text.strip()
    return value.lower() if MD5.fullmatch(value) else None


async def authenticate(state: AppState, params: dict[str, str]) -> User:
    token = params.get("access_token", "")
    if not token:
        raise V2Error(NO_TOKEN)
    account = params.get("account_id", "")
    if not account:
        raise V2Error(NO_ACCOUNT)
    user = await asyncio.to_thread(state.v2auth.user_for_token, token, account)
    if user is None:
        raise V2Error(BAD_TOKEN)
    return user


async def _file(state: AppState, user: User, file_id: int) -> StoredFile:
    try:
        return await asyncio.to_thread(state.drive.file, user.id, file_id)
    except SatchelError:
        raise V2Error(NO_FILE) from None


async def _own_file(state: AppState, user: User, params: dict[str, str]) -> StoredFile:
    """The live drive file ``file_id`` names, or the reference's messages."""
    return await _file(state, user, _id_param(params, "file_id", NO_FILE_ID))


async def _destination(
    state: AppState, user: User, params: dict[str, str], name: str
) -> int | None:
    """The folder a move or copy goes to: ``name`` must be sent; empty, 0 or "null" is the
    root."""
    if name not in params:
        raise V2Error(f"Please provide the {name} param.")
    missing = f"Could not find the destination folder id defined by {name}."
    target = _folder_param(params, name, missing)
    await _folder(state, user, target, missing)
    return target


async def _folder(state: AppState, user: User, folder_id: int | None, message: str) -> None:
    try:
        await asyncio.to_thread(state.drive.folder, user.id, folder_id)
    except SatchelError:
        raise V2Error(message) from None


async def _folder_json(
    state: AppState, folder: Folder, with_password: bool = True, sent_md5: str | None = None
) -> dict[str, Any]:
    stats = await asyncio.to_thread(state.drive.folder_stats, folder)
    return shapes.folder_data(state, folder, stats, with_password, sent_md5)


async def _file_json(state: AppState, record: StoredFile) -> dict[str, Any]:
    return await asyncio.to_thread(shapes.file_info, state, record)


# -- authorization ----------------------------------------------------------------------


async def authorize(request: Request, state: AppState, params: dict[str, str]) -> Response:
    await state.limiter.hit("login", Actor(ip=client_ip(request, state.trusted)))
    methods = set(state.settings.api_v2_auth)
    user: User | None = None
    if params.get("key1") and params.get("key2") and "keys" in methods:
        user = await asyncio.to_thread(state.v2auth.user_for_keys, params["key1"], params["key2"])
    elif params.get("username") and params.get("password") and "password" in methods:
        ip = client_ip(request, state.trusted)
        user = await asyncio.to_thread(
            state.accounts.authenticate, params["username"], params["password"], ip
        )
        if user is not None and not user.api_enabled:
            user = None
    elif not any(params.get(name) for name in ("key1", "key2", "username", "password")):
        wanted = " or ".join(
            {"keys": "key1 and key2", "password": "username and password"}[m]
            for m in ("keys", "password")
            if m in methods
        )
        raise V2Error(f"Please provide the {wanted} params.")
    if user is None:
        raise V2Error(BAD_LOGIN)
    token = await asyncio.to_thread(state.v2auth.issue_token, user)
    return success({"data": {"access_token": token, "account_id": str(user.id)}})


async def disable_access_token(
    request: Request, state: AppState, params: dict[str, str]
) -> Response:
    token = params.get("access_token", "")
    if not token:
        raise V2Error(NO_TOKEN)
    account = params.get("account_id", "")
    if not account:
        raise V2Error(NO_ACCOUNT)
    if not await asyncio.to_thread(state.v2auth.disable_token, token, account):
        raise V2Error(BAD_TOKEN)
    return success({"response": "Token removed or no longer available."})


# -- account ----------------------------------------------------------------------------


async def account_info(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    return {"data": shapes.account_info(user, state.accounts.package_of(user))}


async def account_package(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    return {"data": shapes.package_data(state.accounts.package_of(user))}


# -- files ------------------------------------------------------------------------------


async def file_upload(request: Request, state: AppState, params: dict[str, str]) -> Response:
    """Streams ``upload_file`` into the drive; the token may come before the file in the
    body or in the query string (checked before any of the file is stored)."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != "multipart/form-data" or not options.get("boundary"):
        await authenticate(state, {**params, **(await params_of(request))})
        raise V2Error("Did not receive uploaded file.")
    checked: dict[str, User] = {}
    if params.get("access_token"):
        checked["user"] = await authenticate(state, params)
    ip = client_ip(request, state.trusted)
    who = checked.get("user")
    await state.limiter.hit("upload", Actor(ip=ip, user_id=who.id if who else None, user=who))

    def before_file(fields: dict[str, str]) -> None:
        if "user" not in checked:
            token, account = fields.get("access_token", ""), fields.get("account_id", "")
            if not token:
                raise V2Error(NO_TOKEN)
            if not account:
                raise V2Error(NO_ACCOUNT)
            found = state.v2auth.user_for_token(token, account)
            if found is None:
                raise V2Error(BAD_TOKEN)
            checked["user"] = found
        folder = _folder_param({**params, **fields}, "folder_id", DEST_FOLDER)
        try:
            state.drive.folder(checked["user"].id, folder)
        except SatchelError:
            raise V2Error(DEST_FOLDER) from None

    provisional = (
        Actor(
            ip=client_ip(request, state.trusted), user_id=checked["user"].id, user=checked["user"]
        )
        if "user" in checked
        else Actor(ip=client_ip(request, state.trusted))
    )
    max_bytes = (
        max_upload(state, provisional)
        if "user" in checked
        else int(state.settings.user_max_upload_size)
    )
    content_length = checked_length(request, max_bytes)
    await check_space(state, provisional, content_length)
    ingest = UploadIngest(
        state.files.store,
        str(options["boundary"]),
        content_length or -1,
        max_bytes,
        before_file,
        separate=True,
        file_fields=UPLOAD_FIELD,
        digest=True,
    )
    with upload_slot(state, provisional):
        result = await ingest_body(
            request,
            ingest,
            lambda last_batch: _finish_upload(state, ingest, last_batch, params, checked, request),
        )
    return success({"response": "File uploaded", "data": result})


def _finish_upload(
    state: AppState,
    ingest: UploadIngest,
    last_batch: list[bytes],
    params: dict[str, str],
    checked: dict[str, User],
    request: Request,
) -> list[dict[str, Any]]:
    ingest.feed_many(last_batch)
    try:
        blobs = ingest.finish_separate()
    except SatchelError as exc:
        if exc.detail == "No files":
            raise V2Error("Did not receive uploaded file.") from None
        raise
    user = checked.get("user")
    if user is None:
        raise V2Error(NO_TOKEN)
    actor = Actor(ip=client_ip(request, state.trusted), user_id=user.id, user=user)
    if any(blob.size == 0 for blob in blobs):
        raise V2Error("Filesize received was zero.")
    limit = max_upload(state, actor)
    if sum(blob.size for blob in blobs) > limit:
        raise V2Error(f"The file is too large: the limit is {limit} bytes.")
    check_quota(state, actor, sum(blob.size for blob in blobs))
    folder_id = _folder_param({**params, **ingest.fields}, "folder_id", DEST_FOLDER)
    options = UploadOptions(is_temp=False, folder_id=folder_id, public=True, short_url=True)
    created = []
    try:
        for blob in blobs:
            created.append((state.files.register_upload(blob, options, actor), blob.md5))
    except BaseException:
        state.files.delete_files([c.file.id for c, _md5 in created])
        raise
    return [shapes.uploaded(state, c.file, c.manage_token, md5) for c, md5 in created]


async def file_download(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    if params.get("short_url") and not params.get("file_id"):
        code = params["short_url"].strip().rsplit("/", 1)[-1]
        try:
            found = await asyncio.to_thread(state.files.resolve_short_code, code)
        except SatchelError:
            raise V2Error(NO_FILE) from None
        file_id = found.id
    else:
        file_id = _id_param(params, "file_id", NO_FILE_ID)
    record = await _file(state, user, file_id)
    token = await asyncio.to_thread(state.v2auth.download_token, record.id)
    return {
        "data": {
            "file_id": str(record.id),
            "filename": record.name,
            "download_url": shapes.download_link(state, record, token),
        }
    }


async def url_upload_add(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    encoded = params.get("file_url_base64", "").strip()
    if not encoded:
        raise V2Error("Please provide the file_url_base64 param.")
    try:
        url = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=False).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise V2Error(
            "Could not parse the file_url_base64 parameter. Ensure it's base64 encoded."
        ) from None
    folder_id = _folder_param(params, "folder_id", DEST_FOLDER)
    await _folder(state, user, folder_id, DEST_FOLDER)
    try:
        item = await asyncio.to_thread(state.imports.add, user, url, folder_id)
    except SatchelError as exc:
        raise V2Error(exc.detail) from None
    state.import_workers.wake()  # this instance starts it now; others find it when they poll
    return {
        "response": "File download from URL scheduled",
        "data": {"scheduled_item_id": item.id, "url": item.url},
    }


async def url_upload_status(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    text = params.get("scheduled_item_id", "").strip()
    if not text:
        raise V2Error("Please provide the scheduled_item_id param.")
    item_id = parse_number(text)
    if item_id is None:
        raise V2Error("Could not find scheduled item.")
    try:
        item = await asyncio.to_thread(state.imports.get, user.id, item_id)
    except SatchelError:
        raise V2Error("Could not find scheduled item.") from None
    downloaded_file = None
    if item.file_id is not None:
        try:
            record = await asyncio.to_thread(state.drive.file, user.id, item.file_id)
        except SatchelError:
            record = None
        if record is not None:
            downloaded_file = {
                "file_id": record.id,
                "name": record.name,
                "size": record.size,
                "url": shapes.file_url(state, record),
            }
    return {
        "response": "Scheduled URL file download found",
        "data": {
            "scheduled_item_id": item.id,
            "status": item.status,
            "created": shapes.ymd(item.created_at),
            "started": shapes.ymd(item.started_at),
            "finished": shapes.ymd(item.finished_at),
            "total_size": item.total_size or 0,
            "downloaded_size": item.downloaded,
            "downloaded_file": downloaded_file,
            "error": item.error,
        },
    }


async def file_info(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    return {"data": await _file_json(state, await _own_file(state, user, params))}


async def file_edit(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    file_id = _id_param(params, "file_id", NO_FILE_ID)
    await _file(state, user, file_id)
    folder_text = params.get("folder_id", "").strip()
    folder_given = bool(folder_text)
    folder_id = _folder_param(params, "folder_id", DEST_FOLDER) if folder_given else None
    if folder_given:
        await _folder(state, user, folder_id, DEST_FOLDER)
    changes = FileChanges(
        name=params.get("filename", "").strip() or None,
        content_type=params.get("fileType", "").strip() or None,
        folder_id=folder_id,
        folder_given=folder_given,
    )
    record = await asyncio.to_thread(state.drive.edit_file, user.id, file_id, changes)
    return {"response": "File successfully updated.", "data": await _file_json(state, record)}


async def file_delete(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    file_id = _id_param(params, "file_id", NO_FILE_ID)
    await _file(state, user, file_id)
    await asyncio.to_thread(state.drive.trash_file, user.id, file_id)
    with state.db.read() as session:
        record = session.get(StoredFile, file_id)
    assert record is not None
    return {
        "response": "File successfully set as deleted.",
        "data": await _file_json(state, record),
    }


async def file_move(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    file_id = (await _own_file(state, user, params)).id
    target = await _destination(state, user, params, "new_parent_folder_id")
    changes = FileChanges(folder_id=target, folder_given=True)
    record = await asyncio.to_thread(state.drive.edit_file, user.id, file_id, changes)
    return {"response": "File successfully moved.", "data": await _file_json(state, record)}


async def file_copy(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    original = await _own_file(state, user, params)
    target = await _destination(state, user, params, "copy_to_folder_id")
    actor = Actor(ip=client_ip(request, state.trusted), user_id=user.id, user=user)
    await asyncio.to_thread(check_quota, state, actor, original.size)
    copied = await asyncio.to_thread(state.drive.copy_file, user.id, original.id, target)
    return {
        # The reference's spelling: clients may compare the message.
        "response": "File successfully copyied.",
        "original_file": {"data": await _file_json(state, original)},
        "new_file": {"data": await _file_json(state, copied)},
    }


# -- folders ----------------------------------------------------------------------------


async def folder_create(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    name = params.get("folder_name", "").strip()
    if not name:
        raise V2Error("Please provide the folder_name param.")
    parent = _folder_param(params, "parent_id", NO_PARENT)
    await _folder(state, user, parent, NO_PARENT)
    sharing = FolderSharing(
        _is_public(params.get("is_public", "0")), _password(params.get("access_password", ""))
    )
    try:
        folder = await asyncio.to_thread(state.drive.create_folder, user.id, name, parent, sharing)
    except SatchelError as exc:
        raise V2Error(exc.detail) from None
    data = await _folder_json(state, folder, sent_md5=sharing.access_password_md5)
    return {"response": "Folder successfully created.", "data": data}


async def folder_listing(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    parent = _folder_param(params, "parent_folder_id", NO_FOLDER)
    await _folder(state, user, parent, NO_FOLDER)

    def everything() -> tuple[list[Folder], list[StoredFile]]:
        folders: list[Folder] = []
        files: list[StoredFile] = []
        cursor = None
        while True:
            page = state.drive.listing(user.id, parent, 1000, cursor)
            folders += page.folders
            files += page.files
            if page.next_cursor is None:
                return folders, files
            cursor = Cursor.decode(page.next_cursor)

    folders, files = await asyncio.to_thread(everything)
    return {
        "data": {
            "folders": [await _folder_json(state, f, with_password=False) for f in folders],
            "files": [
                await asyncio.to_thread(shapes.file_entry, state, record) for record in files
            ],
        }
    }


async def _own_folder(state: AppState, user: User, params: dict[str, str]) -> Folder:
    name = "folder_id" if params.get("folder_id", "").strip() else "parent_folder_id"
    folder_id = _id_param(params, name, "Please provide the folder_id param.")
    try:
        found = await asyncio.to_thread(state.drive.folder, user.id, folder_id)
    except SatchelError:
        raise V2Error(NO_FOLDER) from None
    assert found is not None
    return found


async def folder_info(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    folder = await _own_folder(state, user, params)
    return {"data": await _folder_json(state, folder)}


async def folder_edit(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    folder = await _own_folder(state, user, params)
    parent_given = "parent_id" in params
    parent = _folder_param(params, "parent_id", NO_PARENT) if parent_given else None
    if parent_given:
        await _folder(state, user, parent, NO_PARENT)
    sharing = None
    sent_password = params.get("access_password")
    if sent_password is not None and (not sent_password.strip() or _password(sent_password)):
        # Empty removes the password, an MD5 sets it; anything else leaves it as it was.
        visibility = params.get("is_public")
        sharing = FolderSharing(
            _is_public(visibility) if visibility is not None else folder.is_public,
            _password(sent_password),
        )
    changes = FolderChanges(
        name=params.get("folder_name", "").strip() or None,
        parent_id=parent,
        parent_given=parent_given,
        is_public=_is_public(params["is_public"]) if "is_public" in params else None,
        sharing=sharing,
    )
    try:
        edited = await asyncio.to_thread(state.drive.edit_folder, user.id, folder.id, changes)
    except SatchelError as exc:
        raise V2Error(exc.detail) from None
    sent = sharing.access_password_md5 if sharing is not None else None
    data = await _folder_json(state, edited, sent_md5=sent)
    return {"response": "Folder successfully updated.", "data": data}


async def folder_delete(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    folder = await _own_folder(state, user, params)
    await asyncio.to_thread(state.drive.trash_folder, user.id, folder.id)
    return {"response": "Folder successfully set as deleted."}


async def folder_move(
    request: Request, state: AppState, params: dict[str, str], user: User
) -> dict[str, Any]:
    if not params.get("folder_id", "").strip():
        raise V2Error("Please provide the folder_id param.")
    folder = await _own_folder(state, user, params)
    target = await _destination(state, user, params, "new_parent_folder_id")
    changes = FolderChanges(parent_id=target, parent_given=True)
    try:
        moved = await asyncio.to_thread(state.drive.edit_folder, user.id, folder.id, changes)
    except SatchelError as exc:
        raise V2Error(exc.detail) from None
    return {"response": "Folder successfully moved.", "data": await _folder_json(state, moved)}


AUTHENTICATED: dict[str, Handler] = {
    "account/info": account_info,
    "account/package": account_package,
    "file/download": file_download,
    "file/url_upload_add": url_upload_add,
    "file/url_upload_status": url_upload_status,
    "file/info": file_info,
    "file/edit": file_edit,
    "file/delete": file_delete,
    "file/move": file_move,
    "file/copy": file_copy,
    "folder/create": folder_create,
    "folder/listing": folder_listing,
    "folder/info": folder_info,
    "folder/edit": folder_edit,
    "folder/delete": folder_delete,
    "folder/move": folder_move,
}
OPEN = {"authorize": authorize, "disable_access_token": disable_access_token}


async def dispatch(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    endpoint = request.path_params["endpoint"].strip("/")
    try:
        if endpoint == "file/upload":
            return await file_upload(request, state, dict(request.query_params))
        params = await params_of(request)
        if endpoint in OPEN:
            return await OPEN[endpoint](request, state, params)
        handler = AUTHENTICATED.get(endpoint)
        if handler is None:
            return failure(f"Unknown endpoint: {endpoint}", 404)
        user = await authenticate(state, params)
        await state.limiter.hit(
            "apiv1", Actor(ip=client_ip(request, state.trusted), user_id=user.id, user=user)
        )
        return success(await handler(request, state, params, user))
    except V2Error as exc:
        return failure(exc.message)
    except (RateLimited, ServiceUnavailable) as exc:
        response = failure(exc.detail, 429 if isinstance(exc, RateLimited) else 503)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except SatchelError as exc:
        # Limits, quotas and bad input keep their meaning, in the v2 envelope.
        return failure(exc.detail)


def routes() -> list[Route]:
    return [
        # Before the catch-all, which would take it for an unknown endpoint.
        Route("/api/v2/openapi.json", openapi.openapi, methods=["GET"]),
        Route("/api/v2/{endpoint:path}", dispatch, methods=["GET", "POST"]),
    ]
