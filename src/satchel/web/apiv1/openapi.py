"""The OpenAPI 3.1 document of ``/apiv1``, served at ``/apiv1/openapi.json``.

Its schemas are JSON Schema: the tests validate real responses against them, so the document
cannot drift from what the endpoints answer.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.apikeys import PERMISSIONS

_TIME = {"type": ["string", "null"], "format": "date-time"}
_ID = {"type": "integer", "minimum": 1}
_NULLABLE_ID = {"type": ["integer", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


_TRASH_FIELDS = {
    "trashed_at": {**_TIME, "description": "Set on items in the trash."},
    "purge_at": {**_TIME, "description": "When the trash deletes it for good."},
    "trashed_with_folder_id": {
        **_NULLABLE_ID,
        "description": "The folder whose deletion took it to the trash, if any.",
    },
}
_TRASH_NAMES = tuple(_TRASH_FIELDS)
_PAGE = {
    "folders": {"type": "array", "items": _ref("Folder")},
    "files": {"type": "array", "items": _ref("File")},
    "next_cursor": {
        "type": ["string", "null"],
        "description": "Pass as ?cursor= for the next page; null on the last page.",
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": {"type": "string"}}),
    "Permissions": {
        "type": "object",
        "properties": {name: {"type": "boolean"} for name in PERMISSIONS},
        "required": list(PERMISSIONS),
        "additionalProperties": False,
    },
    "Key": _object(
        {
            "id": _ID,
            "label": {"type": "string"},
            "hint": {"type": "string", "description": "The first characters of the secret."},
            "permissions": _ref("Permissions"),
            "allowed_ips": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
            "created_at": {"type": "string", "format": "date-time"},
            "last_used_at": _TIME,
            "last_used_ip": {"type": ["string", "null"]},
        }
    ),
    "File": _object(
        {
            "id": _ID,
            "type": {"const": "file"},
            "name": {"type": "string"},
            "size": {"type": "integer", "minimum": 0, "description": "Bytes."},
            "content_type": {"type": "string"},
            "folder_id": _NULLABLE_ID,
            "public": {"type": "boolean"},
            "has_password": {"type": "boolean"},
            "e2e": {"type": "boolean"},
            "downloads": {"type": "integer", "minimum": 0},
            "max_downloads": _NULLABLE_ID,
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": _TIME,
            "download_url": {"type": "string", "format": "uri"},
            "short_url": {"type": ["string", "null"], "format": "uri"},
            "manage_url": {
                "type": "string",
                "format": "uri",
                "description": "In the upload answer only: the management link.",
            },
            **_TRASH_FIELDS,
        },
        optional=("manage_url", *_TRASH_NAMES),
    ),
    "Folder": _object(
        {
            "id": _ID,
            "type": {"const": "folder"},
            "name": {"type": "string"},
            "parent_id": _NULLABLE_ID,
            "created_at": {"type": "string", "format": "date-time"},
            **_TRASH_FIELDS,
        },
        optional=_TRASH_NAMES,
    ),
    "Page": _object(_PAGE),
    "Listing": _object(
        {"folder": {"oneOf": [_ref("Folder"), {"type": "null"}]}, **_PAGE},
    ),
    "SearchResult": _object({"query": {"type": "string"}, **_PAGE}),
    "Success": _object({"success": {"const": True}}),
    "Trashed": _object(
        {
            "success": {"const": True},
            "trashed": _object(
                {"type": {"enum": ["file", "folder"]}, "id": _ID},
            ),
        }
    ),
    "Restored": _object(
        {
            "success": {"const": True},
            "restored": {"oneOf": [_ref("File"), _ref("Folder")]},
        }
    ),
    "Deleted": _object(
        {"success": {"const": True}, "deleted_files": {"type": "integer", "minimum": 0}}
    ),
    "Uploaded": _object({"files": {"type": "array", "items": _ref("File"), "minItems": 1}}),
    "KeyList": _object({"keys": {"type": "array", "items": _ref("Key")}}),
}
SCHEMAS["KeyCreated"] = _object(
    {
        **SCHEMAS["Key"]["properties"],
        "key": {"type": "string", "pattern": "^sat_[0-9A-Za-z]{40}$"},
    }
)

ERRORS = {
    "400": "Bad request: the error says what is wrong",
    "401": "Missing, invalid or revoked API key",
    "403": "API disabled, permission missing or IP not allowed",
    "404": "Not found (another user's ids look the same as missing ones)",
    "429": "Rate limited; see Retry-After",
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _operation(
    summary: str,
    permission: str,
    answer: tuple[str, str, str],
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    errors: tuple[str, ...] = ("401", "403", "404", "429"),
) -> dict[str, Any]:
    status, schema, description = answer
    responses: dict[str, Any] = {status: _json(schema, description)}
    for code in errors:
        responses[code] = _json("Error", ERRORS.get(code, "Error"))
    operation: dict[str, Any] = {
        "summary": summary,
        "description": f"Needs the `{permission}` permission.",
        "security": [{"bearer": []}],
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = body
    return operation


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


_PAGING = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]
_TYPE = {
    "name": "type",
    "in": "query",
    "description": "file or folder: needed only when both a file and a folder have this id",
    "schema": {"enum": ["file", "folder"]},
}
_KEY_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "label": {"type": "string", "maxLength": 100},
                    "permissions": {
                        "type": "object",
                        "additionalProperties": {"type": "boolean"},
                    },
                    "allowed_ips": {"type": "array", "items": {"type": "string"}},
                },
            }
        }
    }
}

PATHS: dict[str, Any] = {
    "/apiv1/keys": {
        "get": _operation("List your active API keys", "manage_keys", ("200", "KeyList", "Keys")),
        "post": _operation(
            "Create an API key (the secret is in this answer only)",
            "manage_keys",
            ("201", "KeyCreated", "The new key with its secret"),
            body=_KEY_BODY,
            errors=("400", "401", "403", "429"),
        ),
    },
    "/apiv1/keys/{key_id}": {
        "patch": _operation(
            "Change a key's label, permissions or allow-list",
            "manage_keys",
            ("200", "Key", "The key"),
            [_path_id("key_id")],
            _KEY_BODY,
            ("400", "401", "403", "404", "429"),
        ),
        "delete": _operation(
            "Revoke a key", "manage_keys", ("200", "Success", "Revoked"), [_path_id("key_id")]
        ),
    },
    "/apiv1/upload": {
        "post": _operation(
            "Upload one or more files into the drive (each its own file)",
            "write",
            ("201", "Uploaded", "The new files"),
            body={
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "folder_id": {"type": "integer"},
                                "file": {"type": "string", "format": "binary"},
                                "files": {
                                    "type": "array",
                                    "items": {"type": "string", "format": "binary"},
                                },
                            },
                        }
                    }
                }
            },
            errors=("400", "401", "403", "404", "413", "429", "507"),
        )
    },
    "/apiv1/download/{file_id}": {
        "get": {
            **_operation(
                "Download a file (Range supported; not for E2E files)",
                "download",
                ("200", "Error", "The file's bytes"),
                [_path_id("file_id")],
                errors=("400", "401", "403", "404", "416", "429"),
            ),
        }
    },
    "/apiv1/files": {
        "get": _operation(
            "List the root folder",
            "read",
            ("200", "Listing", "One page"),
            _PAGING,
            errors=("400", "401", "403", "429"),
        )
    },
    "/apiv1/files/{id}": {
        "get": _operation(
            "List a folder (the id is a folder id here)",
            "read",
            ("200", "Listing", "One page"),
            [_path_id("id"), *_PAGING],
            errors=("400", "401", "403", "404", "429"),
        )
    },
    "/apiv1/files/{file_id}/properties": {
        "get": _operation(
            "A file's details", "read", ("200", "File", "The file"), [_path_id("file_id")]
        )
    },
    "/apiv1/folders": {
        "post": _operation(
            "Create a folder (a taken name gets a number)",
            "write",
            ("201", "Folder", "The folder"),
            body={
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "parent_id": _NULLABLE_ID,
                            },
                            "required": ["name"],
                        }
                    }
                }
            },
            errors=("400", "401", "403", "404", "429"),
        )
    },
    "/apiv1/folders/{folder_id}": {
        "delete": _operation(
            "Move a folder and everything in it to the trash",
            "delete",
            ("200", "Trashed", "In the trash"),
            [_path_id("folder_id")],
        )
    },
    "/apiv1/search": {
        "get": _operation(
            "Search names of live files and folders (% and _ match themselves)",
            "read",
            ("200", "SearchResult", "One page"),
            [
                {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
                *_PAGING,
            ],
            errors=("400", "401", "403", "429"),
        )
    },
    "/apiv1/trash": {
        "get": _operation(
            "List the trash (files and folders)",
            "read",
            ("200", "Page", "One page"),
            _PAGING,
            errors=("400", "401", "403", "429"),
        )
    },
    "/apiv1/trash/empty": {
        "delete": _operation("Empty the trash", "delete", ("200", "Deleted", "Deleted for good"))
    },
    "/apiv1/trash/{item_id}/restore": {
        "post": _operation(
            "Restore a file or folder (to the root when its folder is gone)",
            "restore",
            ("200", "Restored", "Restored"),
            [_path_id("item_id"), _TYPE],
            errors=("400", "401", "403", "404", "409", "429"),
        )
    },
    "/apiv1/trash/{item_id}": {
        "delete": _operation(
            "Delete a trashed file, or a trashed folder with everything in it, for good",
            "delete",
            ("200", "Deleted", "Deleted for good"),
            [_path_id("item_id"), _TYPE],
            errors=("400", "401", "403", "404", "409", "429"),
        )
    },
}
# One path item per URL: DELETE /apiv1/files/{id} shares the item of the folder listing.
PATHS["/apiv1/files/{id}"]["delete"] = _operation(
    "Move a file to the trash (the id is a file id here)",
    "delete",
    ("200", "Trashed", "In the trash"),
    [_path_id("id")],
)
# The file's own content type (application/octet-stream when it has none).
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
PATHS["/apiv1/download/{file_id}"]["get"]["responses"]["200"] = {
    "description": "The whole file",
    "content": _BYTES,
}
PATHS["/apiv1/download/{file_id}"]["get"]["responses"]["206"] = {
    "description": "The part a Range header asked for, with Content-Range",
    "content": _BYTES,
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Satchel /apiv1",
        "version": "1",
        "description": "The cloud-drive REST API. See docs/api-v1.md.",
    },
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
    "paths": PATHS,
}


async def openapi(request: Request) -> Response:
    state = request.app.state.satchel
    document = {**DOCUMENT, "servers": [{"url": state.settings.public_url}]}
    return JSONResponse(document)
