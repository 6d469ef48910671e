"""The OpenAPI 3.1 document of ``/api/v2``, served at ``/api/v2/openapi.json``.

Every endpoint takes its parameters from the query string (GET) or the form body (POST), and
answers HTTP 200 whether it succeeded or not: ``_status`` tells which. So each answer's schema
is one of the endpoint's success shape and the error envelope. The schemas are JSON Schema; the
tests validate real answers against them and the fuzz suite generates requests from them.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

_YMD = "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
_DATE = {"type": "string", "pattern": _YMD, "description": "Y-m-d H:i:s, UTC"}
_NULL_DATE = {**_DATE, "type": ["string", "null"]}
_DIGITS = {"type": "string", "pattern": "^[0-9]+$"}
_NULL_DIGITS = {**_DIGITS, "type": ["string", "null"]}
_COUNT = {"type": "integer", "minimum": 0}
_TEXT = {"type": "string"}
_URL = {"type": "string", "format": "uri"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def _success(properties: dict[str, Any]) -> dict[str, Any]:
    """A success envelope around ``properties``."""
    return _object({**properties, "_status": {"const": "success"}, "_datetime": _DATE})


_FILE_FIELDS: dict[str, Any] = {
    "id": _DIGITS,
    "filename": _TEXT,
    "shortUrl": _TEXT,
    "fileType": _TEXT,
    "extension": _TEXT,
    "fileSize": _DIGITS,
    "uploadedIP": _TEXT,
    "uploadedDate": _DATE,
    "file_status": {"enum": ["active", "trash"]},
    "status": {"enum": ["active", "trash"]},
    "downloads": _DIGITS,
    "lastAccessed": _NULL_DATE,
    "folderId": _NULL_DIGITS,
    "keywords": _TEXT,
    "isPublic": {"enum": ["0", "1"]},
    "uploadSource": _TEXT,
    "description": _TEXT,
    "url_file": _URL,
    "url_file_info": _URL,
    "url_file_stats": _URL,
    "url_file_delete": _URL,
}
_LISTING_FILE = (
    "id", "filename", "shortUrl", "fileType", "extension", "fileSize", "status",
    "downloads", "folderId", "keywords", "url_file",
)  # fmt: skip
_FOLDER_FIELDS: dict[str, Any] = {
    "id": _DIGITS,
    "parentId": _NULL_DIGITS,
    "folderName": _TEXT,
    "totalSize": _DIGITS,
    "isPublic": {"enum": ["0", "1", "2"]},
    "accessPassword": {
        "type": ["string", "null"],
        "pattern": "^([0-9a-f]{32}|[*]{32})$",
        "description": (
            "The MD5 in the answer that set it, 32 asterisks later (only a hash of it is "
            "kept), null without a password."
        ),
    },
    "date_added": _NULL_DATE,
    "date_updated": _NULL_DATE,
    "url_folder": _URL,
    "total_downloads": _COUNT,
    "child_folder_count": _COUNT,
    "file_count": _COUNT,
}
_PACKAGE_FIELDS = (
    "id", "label", "max_upload_size", "can_upload", "wait_between_downloads",
    "download_speed", "max_storage_bytes", "show_site_adverts", "show_upgrade_screen",
    "days_to_keep_inactive_files", "concurrent_uploads", "concurrent_downloads",
    "downloads_per_24_hours", "download_size_per_24_hours", "max_download_filesize_allowed",
    "max_remote_download_urls", "level_type", "on_upgrade_page",
)  # fmt: skip
_MESSAGE = {"response": _TEXT}

SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {
            "response": {"type": "string", "description": "What went wrong"},
            "_status": {"const": "error"},
            "status": {"const": "error"},
            "_datetime": _DATE,
        }
    ),
    "File": _object(_FILE_FIELDS),
    "ListedFile": _object({name: _FILE_FIELDS[name] for name in _LISTING_FILE}),
    "Folder": _object(_FOLDER_FIELDS),
    "ListedFolder": _object({k: v for k, v in _FOLDER_FIELDS.items() if k != "accessPassword"}),
    "Uploaded": _object(
        {
            "name": _TEXT,
            "size": _DIGITS,
            "type": _TEXT,
            "error": {"type": "null"},
            "url": _URL,
            "delete_url": _URL,
            "info_url": _URL,
            "delete_type": {"const": "DELETE"},
            "delete_hash": {"type": "string", "description": "The file's management token"},
            "hash": {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "MD5"},
            "stats_url": _URL,
            "short_url": _TEXT,
            "file_id": _DIGITS,
            "unique_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "url_html": _TEXT,
            "url_bbcode": _TEXT,
        }
    ),
    "Account": _object(
        {
            "id": _DIGITS,
            "username": _TEXT,
            "level_id": _DIGITS,
            "email": _TEXT,
            "lastlogindate": _NULL_DATE,
            "lastloginip": _TEXT,
            "status": {"enum": ["active", "disabled"]},
            "title": _TEXT,
            "firstname": _TEXT,
            "lastname": _TEXT,
            "languageId": _DIGITS,
            "datecreated": _NULL_DATE,
            "lastPayment": _NULL_DATE,
            "paidExpiryDate": _NULL_DATE,
            "storageLimitOverride": _NULL_DIGITS,
        }
    ),
    "Package": _object(
        {name: _TEXT if name in ("label", "level_type") else _DIGITS for name in _PACKAGE_FIELDS}
    ),
    "ScheduledItem": _object(
        {
            "scheduled_item_id": {"type": "integer", "minimum": 1},
            "status": {"enum": ["pending", "downloading", "complete", "failed", "cancelled"]},
            "created": _NULL_DATE,
            "started": _NULL_DATE,
            "finished": _NULL_DATE,
            "total_size": _COUNT,
            "downloaded_size": _COUNT,
            "downloaded_file": {
                "oneOf": [
                    {"type": "null"},
                    _object(
                        {
                            "file_id": {"type": "integer", "minimum": 1},
                            "name": _TEXT,
                            "size": _COUNT,
                            "url": _URL,
                        }
                    ),
                ]
            },
            "error": {"type": ["string", "null"]},
        }
    ),
}
_FILE_ANSWER = _success({**_MESSAGE, "data": _ref("File")})
_FOLDER_ANSWER = _success({**_MESSAGE, "data": _ref("Folder")})
ANSWERS: dict[str, Any] = {
    "authorize": _success(
        {
            "data": _object(
                {
                    "access_token": {"type": "string", "pattern": "^[0-9A-Za-z]{128}$"},
                    "account_id": _DIGITS,
                }
            )
        }
    ),
    "disable_access_token": _success(_MESSAGE),
    "account/info": _success({"data": _ref("Account")}),
    "account/package": _success({"data": _ref("Package")}),
    "file/upload": _success(
        {**_MESSAGE, "data": {"type": "array", "items": _ref("Uploaded"), "minItems": 1}}
    ),
    "file/download": _success(
        {
            "data": _object(
                {
                    "file_id": _DIGITS,
                    "filename": _TEXT,
                    "download_url": {**_URL, "pattern": "download_token=[0-9a-f]{64}$"},
                }
            )
        }
    ),
    "file/url_upload_add": _success(
        {
            **_MESSAGE,
            "data": _object({"scheduled_item_id": {"type": "integer", "minimum": 1}, "url": _TEXT}),
        }
    ),
    "file/url_upload_status": _success({**_MESSAGE, "data": _ref("ScheduledItem")}),
    "file/info": _success({"data": _ref("File")}),
    "file/edit": _FILE_ANSWER,
    "file/delete": _FILE_ANSWER,
    "file/move": _FILE_ANSWER,
    "file/copy": _success(
        {
            **_MESSAGE,
            "original_file": _object({"data": _ref("File")}),
            "new_file": _object({"data": _ref("File")}),
        }
    ),
    "folder/create": _FOLDER_ANSWER,
    "folder/listing": _success(
        {
            "data": _object(
                {
                    "folders": {"type": "array", "items": _ref("ListedFolder")},
                    "files": {"type": "array", "items": _ref("ListedFile")},
                }
            )
        }
    ),
    "folder/info": _success({"data": _ref("Folder")}),
    "folder/edit": _FOLDER_ANSWER,
    "folder/delete": _success(_MESSAGE),
    "folder/move": _FOLDER_ANSWER,
}

_FOLDER = "a folder id; empty, 0 or null: the root"
_AUTH = {
    "access_token": "The token /authorize gave",
    "account_id": "The account id /authorize gave",
}
PARAMETERS: dict[str, dict[str, str]] = {
    "authorize": {
        "key1": "The first key of the account's pair (64 characters)",
        "key2": "The second key of the pair",
        "username": "Or: the user's name",
        "password": "and password",
    },
    "disable_access_token": _AUTH,
    "account/info": _AUTH,
    "account/package": _AUTH,
    "file/upload": {**_AUTH, "folder_id": f"Where the file goes: {_FOLDER}"},
    "file/download": {
        **_AUTH,
        "file_id": "The file's id",
        "short_url": "Or: its short code or short link",
    },
    "file/url_upload_add": {
        **_AUTH,
        "file_url_base64": "The URL to import, base64-encoded",
        "folder_id": f"Where the file goes: {_FOLDER}",
    },
    "file/url_upload_status": {**_AUTH, "scheduled_item_id": "What url_upload_add answered"},
    "file/info": {**_AUTH, "file_id": "The file's id"},
    "file/edit": {
        **_AUTH,
        "file_id": "The file's id",
        "filename": "A new name; blank keeps it",
        "fileType": "A new content type; blank keeps it",
        "folder_id": "A new folder id; blank keeps it, 0 or null is the root",
    },
    "file/delete": {**_AUTH, "file_id": "The file's id"},
    "file/move": {**_AUTH, "file_id": "The file's id", "new_parent_folder_id": _FOLDER},
    "file/copy": {**_AUTH, "file_id": "The file's id", "copy_to_folder_id": _FOLDER},
    "folder/create": {
        **_AUTH,
        "folder_name": "The new folder's name",
        "parent_id": f"Its parent: {_FOLDER}",
        "is_public": "0 private (default), 1 unlisted, 2 public; anything else is 0",
        "access_password": "The MD5 (32 hex) of a password; anything else sets none",
    },
    "folder/listing": {**_AUTH, "parent_folder_id": f"The folder to list: {_FOLDER}"},
    "folder/info": {
        **_AUTH,
        "folder_id": "The folder's id",
        "parent_folder_id": "Taken when folder_id is absent (the reference's name)",
    },
    "folder/edit": {
        **_AUTH,
        "folder_id": "The folder's id",
        "folder_name": "A new name",
        "parent_id": f"A new parent: {_FOLDER}; absent keeps it",
        "is_public": "0, 1 or 2 (anything else 0)",
        "access_password": "An MD5 sets the password, empty removes it, anything else keeps it",
    },
    "folder/delete": {**_AUTH, "folder_id": "The folder's id"},
    "folder/move": {**_AUTH, "folder_id": "The folder's id", "new_parent_folder_id": _FOLDER},
}
# Parameters whose absence is an error of its own (the others are optional or alternatives).
REQUIRED = {
    "access_token", "account_id", "file_id", "file_url_base64", "scheduled_item_id",
    "new_parent_folder_id", "copy_to_folder_id", "folder_name",
}  # fmt: skip
SUMMARIES = {
    "authorize": "An access token for key1 + key2, or username + password",
    "disable_access_token": "End the access token",
    "account/info": "The account",
    "account/package": "The account's package (its limits; 0 = unlimited)",
    "file/upload": "Upload upload_file (several: upload_file[]) into the drive",
    "file/download": "A download link for the file, valid 24 hours",
    "file/url_upload_add": "Queue an import of a URL",
    "file/url_upload_status": "How an import stands",
    "file/info": "A file",
    "file/edit": "Rename a file, change its type or folder",
    "file/delete": "Move a file to the trash",
    "file/move": "Move a file to another folder",
    "file/copy": "Copy a file into a folder",
    "folder/create": "Create a folder",
    "folder/listing": "Everything in a folder",
    "folder/info": "A folder",
    "folder/edit": "Rename, move or share a folder",
    "folder/delete": "Move a folder and all in it to the trash",
    "folder/move": "Move a folder",
}


def _fields(endpoint: str) -> dict[str, Any]:
    names = PARAMETERS[endpoint]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            name: {"type": "string", "description": text} for name, text in names.items()
        },
    }
    required = [name for name in names if name in REQUIRED]
    if required:
        schema["required"] = required
    return schema


def _responses(endpoint: str) -> dict[str, Any]:
    both = {"oneOf": [ANSWERS[endpoint], _ref("Error")]}
    limited = {
        "description": "Rate limited (the error envelope); see Retry-After",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    return {
        "200": {
            "description": "Success, or an error with its message (_status says which)",
            "content": {"application/json": {"schema": both}},
        },
        "429": limited,
    }


def _get(endpoint: str) -> dict[str, Any]:
    fields = _fields(endpoint)
    required = set(fields.get("required", ()))
    parameters = [
        {"name": name, "in": "query", "required": name in required, "schema": schema}
        for name, schema in fields["properties"].items()
    ]
    return {
        "summary": SUMMARIES[endpoint],
        "parameters": parameters,
        "responses": _responses(endpoint),
    }


def _post(endpoint: str) -> dict[str, Any]:
    fields = _fields(endpoint)
    content: dict[str, Any] = {
        "application/x-www-form-urlencoded": {"schema": fields},
        "multipart/form-data": {"schema": fields},
    }
    if endpoint == "file/upload":
        upload = {
            **fields,
            "properties": {
                **fields["properties"],
                "upload_file": {"type": "string", "format": "binary"},
            },
            "required": [*fields["required"], "upload_file"],
        }
        content = {"multipart/form-data": {"schema": upload}}
    return {
        "summary": SUMMARIES[endpoint],
        "description": "The parameters may come in the query string too.",
        "requestBody": {"required": True, "content": content},
        "responses": _responses(endpoint),
    }


PATHS: dict[str, Any] = {
    f"/api/v2/{endpoint}": {"get": _get(endpoint), "post": _post(endpoint)}
    for endpoint in PARAMETERS
}
PATHS["/api/v2/file/upload"]["get"]["description"] = (
    "A GET carries no file: it answers Did not receive uploaded file. (after the token check)."
)

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Satchel /api/v2",
        "version": "2",
        "description": "The YetiShare-compatible API. See docs/api-v2.md.",
    },
    "components": {"schemas": SCHEMAS},
    "paths": PATHS,
}


async def openapi(request: Request) -> Response:
    state = request.app.state.satchel
    document = {**DOCUMENT, "servers": [{"url": state.settings.public_url}]}
    return JSONResponse(document)
