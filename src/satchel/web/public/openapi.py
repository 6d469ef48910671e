"""The OpenAPI 3.1 document of the public API and of ``/tus/``, served at ``/openapi.json``.

Its schemas are JSON Schema: the tests validate real answers against them and the fuzz suite
generates requests from them, so the document cannot drift from what the endpoints do.
Browsers asking for HTML get pages instead of the JSON described here (``text/html``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.tus import CHECKSUMS
from satchel.web.state import SESSION_COOKIE

_TIME = {"type": ["string", "null"], "format": "date-time"}
_URL = {"type": "string", "format": "uri"}
_SIZE = {"type": "integer", "minimum": 0, "description": "Bytes."}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": {"type": "string"}}),
    "UploadResult": _object(
        {
            "redirect": {"type": "string", "pattern": "^/manage/[A-Za-z0-9_-]+$"},
            "download_url": _URL,
            "share_url": {**_URL, "description": "The file's share page: /d/{uuid}."},
            "short_url": {**_URL, "description": "Only when short_url=true was asked for."},
            "manage_url": _URL,
            "delete_url": _URL,
            "file_id": {"type": "string", "format": "uuid"},
            "name": {"type": "string"},
            "size": _SIZE,
            "files": {"type": "integer", "minimum": 1, "description": "Files in the upload."},
            "expires_at": _TIME,
            "e2e": {"type": "boolean"},
            "encrypted_url": {**_URL, "description": "E2E uploads only: /f/{uuid}/encrypted."},
            "drive_file_id": {
                "type": "integer",
                "minimum": 1,
                "description": "Drive uploads only: the id /apiv1 knows the file by.",
            },
        },
        optional=("short_url", "encrypted_url", "drive_file_id"),
    ),
    "ManageInfo": _object(
        {
            "name": {"type": "string"},
            "size": _SIZE,
            "content_type": {"type": "string"},
            "download_url": _URL,
            "share_url": {**_URL, "description": "The file's share page: /d/{uuid}."},
            "short_url": {"type": ["string", "null"], "format": "uri"},
            "public": {"type": "boolean"},
            "has_password": {"type": "boolean"},
            "expires_at": _TIME,
            "max_downloads": {"type": ["integer", "null"], "minimum": 1},
            "downloads": {"type": "integer", "minimum": 0},
            "e2e": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "manage_url": _URL,
            "delete_url": _URL,
        }
    ),
    "ManageUpdated": _object(
        {
            "success": {"const": True},
            "has_password": {"type": "boolean"},
            "public": {"type": "boolean"},
            "expires_at": _TIME,
            "max_downloads": {"type": ["integer", "null"], "minimum": 1},
            "downloads": {"type": "integer", "minimum": 0},
        }
    ),
    "Claimed": _object(
        {
            "success": {"const": True},
            "claimed": {"const": True},
            "file_id": {"type": "integer", "minimum": 1},
            "expires_at": _TIME,
        }
    ),
    "Success": _object({"success": {"const": True}}),
    "DeleteConfirmation": _object({"name": {"type": "string"}, "confirm": {"type": "string"}}),
    "Stats": _object(
        {
            "name": {"type": "string"},
            "size": _SIZE,
            "downloads": {"type": "integer", "minimum": 0},
            "created_at": {"type": "string", "format": "date-time"},
            "last_download_at": _TIME,
        }
    ),
}

ERRORS = {
    "400": "Bad request: the error says what is wrong",
    "401": "Login or password required, or an unknown API key",
    "403": "Private file, wrong password, not the owner, or an API key without the permission",
    "404": "Unknown or expired file, or a bad token",
    "408": "The upload stalled too long and its temporary file was swept",
    "409": "Conflict: the error says with what",
    "410": "Download limit reached: the file is gone",
    "412": "Tus-Resumable missing or not 1.0.0",
    "413": "Body or file too large",
    "415": "Wrong Content-Type",
    "416": "Range not satisfiable",
    "429": "Rate limited; see Retry-After",
    "460": "Upload-Checksum does not match the body: nothing of it was kept",
    "507": "Storage full or the user's quota exceeded",
}
_HTML = {"text/html": {"schema": {"type": "string"}}}
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
# A guest needs nothing; a user is known by a session cookie or, where the endpoint takes
# one, an API key.
_ANYONE: list[dict[str, Any]] = [{}, {"session": []}, {"bearer": []}]


def _json(schema: str, description: str, html: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": _ref(schema)}}
    if html:
        content.update(_HTML)
    return {"description": description, "content": content}


def _header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "schema": schema or {"type": "string"}}


def _errors(codes: tuple[str, ...], html: bool = False) -> dict[str, Any]:
    return {code: _json("Error", ERRORS[code], html) for code in codes}


def _operation(
    summary: str,
    responses: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    security: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "security": _ANYONE if security is None else security,
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = body
    return operation


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": "string"}}


def _in_header(
    name: str, description: str, schema: dict[str, Any] | None = None, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_FLAG = {"type": "string", "enum": ["true", "false"]}
_OPTION_FIELDS: dict[str, Any] = {
    "is_temp": {**_FLAG, "description": "false keeps the file in a logged-in user's drive"},
    "folder_id": {"type": "string", "description": "Drive folder of an is_temp=false upload"},
    "short_url": {**_FLAG, "description": "true adds a /s/{code} link"},
    "public": {**_FLAG, "description": "false: only the management link fetches the file"},
    "password": {"type": "string", "maxLength": 1024, "description": "Downloads need ?pw="},
    "expires": {"type": "string", "description": "30m, 6h, 1d (default), 3d, 7d, … or never"},
    "max_downloads": {"type": "string", "description": "Delete after this many; 0 = no limit"},
    "e2e": {"type": "string", "enum": ["true", "false", "v1"]},
    "e2e_salt": {"type": "string", "description": "16 bytes: base64 or decimal, comma-separated"},
    "e2e_iv": {"type": "string", "description": "12 bytes: base64 or decimal, comma-separated"},
}
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    "file": {"type": "string", "format": "binary"},
                    **_OPTION_FIELDS,
                },
            }
        }
    },
}
_MANAGE_FIELDS = {
    "type": "object",
    "properties": {
        "public": {"type": "string", "enum": ["on", "off", "true", "false"]},
        "password": {"type": "string", "description": "Sets the password; empty removes it"},
        "expires": _OPTION_FIELDS["expires"],
        "max_downloads": _OPTION_FIELDS["max_downloads"],
        "claim": {
            "type": "string",
            "enum": ["true", "false"],
            "description": "true: a logged-in user takes the guest upload into their drive",
        },
    },
}
_MANAGE_BODY = {
    "content": {
        "application/x-www-form-urlencoded": {"schema": _MANAGE_FIELDS},
        "multipart/form-data": {"schema": _MANAGE_FIELDS},
        "application/json": {"schema": _MANAGE_FIELDS},
    }
}
_UUID = _path("uuid", "The file's public UUID (version 4)", {"type": "string", "format": "uuid"})
_TOKEN = _path("token", "The management token (the last part of the upload's redirect)")
_DOWNLOAD_PARAMETERS = [
    _query("pw", "The password of a protected file"),
    _query("download_token", "A /api/v2 file/download token: the owner's rights for 24 hours"),
    _in_header("Range", "A single range, bytes=first-last, bytes=first- or bytes=-suffix"),
    _in_header("If-Range", "The ETag: the range is served only while it still matches"),
]
_DOWNLOAD_HEADERS = {
    "Content-Length": _header("Bytes in this answer", {"type": "integer"}),
    "Content-Disposition": _header("attachment, with filename and filename*"),
    "ETag": _header("The file's UUID in quotes"),
    "Accept-Ranges": _header("bytes"),
    "X-E2E-Salt": _header("Legacy E2E files: the salt as comma-separated decimal bytes"),
    "X-E2E-IV": _header("Legacy E2E files: the IV as comma-separated decimal bytes"),
    "X-E2E-Format": _header("Modern E2E files: the format, v1"),
}


def _download(summary: str, parameters: list[dict[str, Any]], head: bool = False) -> dict[str, Any]:
    """GET or HEAD of a file's bytes (HEAD: the same headers, no body)."""
    whole: dict[str, Any] = {"description": "The whole file", "headers": _DOWNLOAD_HEADERS}
    part: dict[str, Any] = {
        "description": "The part the Range header asked for",
        "headers": {**_DOWNLOAD_HEADERS, "Content-Range": _header("bytes first-last/size")},
    }
    if not head:
        whole["content"] = _BYTES
        part["content"] = _BYTES
    codes = ("400", "401", "403", "404", "410", "416", "429")
    return _operation(
        summary,
        {"200": whole, "206": part, **_errors(codes, html=True)},
        [*parameters, *_DOWNLOAD_PARAMETERS],
    )


def _downloads(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": _download(summary, parameters),
        "head": _download(f"{summary} (headers only; never counts)", parameters, head=True),
    }


_REDIRECT = {
    "description": "A browser is sent to the file's /f/{uuid}/{name} URL",
    "headers": {"Location": _header("The full download URL")},
}


def _short_link(summary: str, head: bool) -> dict[str, Any]:
    operation = _download(summary, [_path("code", "The short code")], head)
    operation["responses"]["302"] = _REDIRECT
    return operation


_TUS_VERSION = _in_header(
    "Tus-Resumable", "The protocol version", {"type": "string", "const": "1.0.0"}, required=True
)
_UPLOAD_ID = _path("upload_id", "The upload's id: the last part of its Location")
_OFFSET = {"type": "integer", "minimum": 0}
_TUS_HEADERS = {"Tus-Resumable": _header("1.0.0")}
_TUS_ERRORS = ("400", "401", "403", "404", "409", "412", "413", "429", "507")
_CHUNK = {
    "content": {"application/offset+octet-stream": {"schema": {"type": "string"}}},
}


def _tus_done(description: str, status: str = "204") -> dict[str, Any]:
    return {
        status: {
            "description": description,
            "headers": {
                **_TUS_HEADERS,
                "Upload-Offset": _header("Bytes kept so far", _OFFSET),
                "Upload-Expires": _header("When an unfinished upload is deleted (RFC 9110)"),
                "Satchel-Download-Url": _header("When the last byte is in: the file's link"),
                "Satchel-Manage-Url": _header("When the last byte is in: its management link"),
                "Satchel-Short-Url": _header("When the last byte is in and short_url was asked"),
            },
        }
    }


_TUS_OPTIONS = _operation(
    "The server's tus capabilities",
    {
        "204": {
            "description": "Version, extensions, checksum algorithms and the largest upload",
            "headers": {
                **_TUS_HEADERS,
                "Tus-Version": _header("1.0.0"),
                "Tus-Extension": _header("creation,creation-with-upload,expiration,…"),
                "Tus-Checksum-Algorithm": _header(",".join(CHECKSUMS)),
                "Tus-Max-Size": _header("Bytes", _OFFSET),
            },
        }
    },
    security=[{}, {"session": []}],
)
_TUS_CREATE = _operation(
    "Create an upload (the body may carry its first bytes)",
    {
        **_tus_done("The upload; its URL is in Location", "201"),
        **_errors(_TUS_ERRORS),
    },
    [
        _TUS_VERSION,
        _in_header("Upload-Length", "The size of the file in bytes", _OFFSET, required=True),
        _in_header(
            "Upload-Metadata",
            "Comma-separated `key base64(value)` pairs: filename, filetype and the /upload options",
        ),
        _in_header("Upload-Defer-Length", "Not supported: answered with 400"),
    ],
    _CHUNK,
)
_TUS_CREATE["responses"]["201"]["headers"]["Location"] = _header("The upload's URL, /tus/{id}")

PATHS: dict[str, Any] = {
    "/": {
        "get": _operation(
            "The upload page", {"200": {"description": "HTML", "content": _HTML}}, security=[]
        )
    },
    "/upload": {
        "post": _operation(
            "Upload one or more files (several are zipped into one)",
            {
                "200": _json("UploadResult", "The new upload's links"),
                "303": {
                    "description": "A browser form post goes to the management page",
                    "headers": {"Location": _header("/manage/{token}")},
                },
                **_errors(("400", "401", "403", "404", "408", "413", "429", "507")),
            },
            body=_UPLOAD_BODY,
        )
    },
    "/f/{uuid}": _downloads("Download a file", [_UUID]),
    "/f/{uuid}/encrypted": _downloads("Download an E2E file's ciphertext", [_UUID]),
    "/f/{uuid}/{filename}": _downloads(
        "Download a file under its name (the name is for the client; only the UUID counts)",
        [_UUID, _path("filename", "Any name")],
    ),
    "/s/{code}": {
        method: {
            **_short_link(f"A short link{note}", head),
            "description": (
                "Browsers are redirected to the file's URL; command-line clients (or any client "
                "not asking for text/html) get the bytes as from /f/{uuid}."
            ),
        }
        for method, note, head in (
            ("get", "", False),
            ("head", " (headers only)", True),
        )
    },
    "/manage/{token}": {
        "get": _operation(
            "A file's settings and links",
            {
                "200": _json("ManageInfo", "The file", html=True),
                **_errors(("401", "403", "404", "429"), html=True),
            },
            [_TOKEN],
        ),
        "post": _operation(
            "Change a file's settings (absent fields stay as they are), or claim it",
            {
                "200": {
                    "description": "The settings now, or the claimed file",
                    "content": {
                        "application/json": {
                            "schema": {"oneOf": [_ref("ManageUpdated"), _ref("Claimed")]}
                        }
                    },
                },
                "303": {"description": "A browser form goes back to the management page"},
                **_errors(("400", "401", "403", "404", "409", "413", "429")),
            },
            [_TOKEN],
            _MANAGE_BODY,
        ),
    },
    "/manage/{token}/download": _downloads(
        "The file by its management token (private ones too)", [_TOKEN]
    ),
    "/delete/{token}": {
        "get": _operation(
            "What a POST here would delete (a GET never deletes)",
            {
                "200": _json("DeleteConfirmation", "The file's name", html=True),
                **_errors(("401", "403", "404", "429"), html=True),
            },
            [_TOKEN],
        ),
        **{
            method: _operation(
                "Delete the file at once",
                {
                    "200": _json("Success", "Deleted", html=True),
                    **_errors(("401", "403", "404", "429")),
                },
                [_TOKEN],
            )
            for method in ("post", "delete")
        },
    },
    "/stats/{uuid}": {
        "get": _operation(
            "A file's name, size and downloads",
            {"200": _json("Stats", "The file", html=True), **_errors(("404",), html=True)},
            [_UUID],
            security=[],
        )
    },
    "/tus/": {"options": _TUS_OPTIONS, "post": _TUS_CREATE},
    "/tus": {"options": _TUS_OPTIONS, "post": _TUS_CREATE},
    "/tus/{upload_id}": {
        "options": {**_TUS_OPTIONS, "parameters": [_UPLOAD_ID]},
        "head": _operation(
            "Where the upload stands",
            {
                "200": {
                    "description": "Its offset, length, expiry and metadata",
                    "headers": {
                        **_TUS_HEADERS,
                        "Upload-Offset": _header("Bytes kept so far", _OFFSET),
                        "Upload-Length": _header("The size of the file", _OFFSET),
                        "Upload-Expires": _header("When an unfinished upload is deleted"),
                        "Upload-Metadata": _header("As it was sent at creation (no password)"),
                    },
                },
                **_errors(("401", "403", "404", "412")),
            },
            [_UPLOAD_ID, _TUS_VERSION],
        ),
        "patch": _operation(
            "Append bytes at Upload-Offset",
            {
                **_tus_done("Kept; the new offset is in Upload-Offset"),
                **_errors((*_TUS_ERRORS, "415", "460")),
            },
            [
                _UPLOAD_ID,
                _TUS_VERSION,
                _in_header("Upload-Offset", "The upload's offset now", _OFFSET, required=True),
                _in_header(
                    "Upload-Checksum",
                    "`sha1 <base64>` or `sha256 <base64>` of this request's body",
                ),
            ],
            {**_CHUNK, "required": True},
        ),
        "delete": _operation(
            "End the upload and delete what it received",
            {"204": {"description": "Gone", "headers": _TUS_HEADERS}, **_errors(_TUS_ERRORS)},
            [_UPLOAD_ID, _TUS_VERSION],
        ),
    },
    "/tus/{upload_id}/result": {
        "get": _operation(
            "The finished upload's answer, as POST /upload gives it",
            {
                "200": _json("UploadResult", "The upload's links"),
                **_errors(("401", "403", "404", "409", "410")),
            },
            [_UPLOAD_ID],
        )
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Satchel public API",
        "version": "1",
        "description": "Uploads, downloads, links and resumable uploads. See docs/public-api.md "
        "and docs/tus.md.",
    },
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key (write to upload, read to view, delete to delete)",
            },
            "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
        },
    },
    "paths": PATHS,
}


async def openapi(request: Request) -> Response:
    state = request.app.state.satchel
    document = {**DOCUMENT, "servers": [{"url": state.settings.public_url}]}
    return JSONResponse(document)
