"""The served OpenAPI document describes every /apiv1 route, and real answers match it."""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from starlette.routing import Route
from starlette.testclient import TestClient
from tests.helpers import api_upload, bearer, make_folder, user_key


def shape(path: str) -> str:
    """The path with its parameters' names left out: /a/{x}/b → /a/{}/b."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def schema_for(document: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    response = document["paths"][path][method.lower()]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


def check(document: dict[str, Any], path: str, response: Any) -> None:
    method = response.request.method
    schema = schema_for(document, path, method, response.status_code)
    errors = list(Draft202012Validator(schema).iter_errors(response.json()))
    assert not errors, (path, method, response.status_code, [e.message for e in errors])


def test_every_route_is_documented(client: TestClient) -> None:
    document = client.get("/apiv1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    Draft202012Validator.check_schema({"components": document["components"]})
    documented = {
        (shape(path), method.upper()) for path, item in document["paths"].items() for method in item
    }
    served = set()
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path.startswith("/apiv1/"):
            if route.path == "/apiv1/openapi.json":
                continue
            for method in route.methods or ():
                if method != "HEAD":
                    served.add((shape(route.path), method))
    assert served == documented


def test_real_answers_match_the_schemas(client: TestClient) -> None:
    document = client.get("/apiv1/openapi.json").json()
    key = user_key(client, "alice")
    folder = make_folder(client, key, "docs")
    upload = client.post(
        "/apiv1/upload",
        files=[("files", ("a.txt", b"a")), ("files", ("b.txt", b"b"))],
        data={"folder_id": str(folder)},
        headers=bearer(key),
    )
    check(document, "/apiv1/upload", upload)
    file_id = upload.json()["files"][0]["id"]
    h = bearer(key)
    check(document, "/apiv1/folders", client.post("/apiv1/folders", json={"name": "x"}, headers=h))
    check(document, "/apiv1/files", client.get("/apiv1/files?limit=1", headers=h))
    check(document, "/apiv1/files/{id}", client.get(f"/apiv1/files/{folder}", headers=h))
    check(
        document,
        "/apiv1/files/{file_id}/properties",
        client.get(f"/apiv1/files/{file_id}/properties", headers=h),
    )
    check(document, "/apiv1/search", client.get("/apiv1/search?q=a", headers=h))
    check(document, "/apiv1/keys", client.get("/apiv1/keys", headers=h))
    created = client.post("/apiv1/keys", json={"permissions": {"read": True}}, headers=h)
    check(document, "/apiv1/keys", created)
    key_id = created.json()["id"]
    check(
        document,
        "/apiv1/keys/{key_id}",
        client.patch(f"/apiv1/keys/{key_id}", json={"label": "l"}, headers=h),
    )
    check(document, "/apiv1/keys/{key_id}", client.delete(f"/apiv1/keys/{key_id}", headers=h))
    check(document, "/apiv1/files/{id}", client.delete(f"/apiv1/files/{file_id}", headers=h))
    check(
        document, "/apiv1/folders/{folder_id}", client.delete(f"/apiv1/folders/{folder}", headers=h)
    )
    check(document, "/apiv1/trash", client.get("/apiv1/trash", headers=h))
    check(
        document,
        "/apiv1/trash/{item_id}/restore",
        client.post(f"/apiv1/trash/{folder}/restore?type=folder", headers=h),
    )
    [other] = api_upload(client, key, ("c.txt", b"c"))
    client.delete(f"/apiv1/files/{other['id']}", headers=h)
    check(
        document,
        "/apiv1/trash/{item_id}/restore",
        client.post(f"/apiv1/trash/{other['id']}/restore?type=file", headers=h),
    )
    client.delete(f"/apiv1/files/{other['id']}", headers=h)
    check(
        document,
        "/apiv1/trash/{item_id}",
        client.delete(f"/apiv1/trash/{other['id']}?type=file", headers=h),
    )
    check(document, "/apiv1/trash/empty", client.delete("/apiv1/trash/empty", headers=h))
    # Errors have the documented shape too.
    check(document, "/apiv1/files", client.get("/apiv1/files"))
    check(document, "/apiv1/files/{id}", client.get("/apiv1/files/999", headers=h))
    check(document, "/apiv1/search", client.get("/apiv1/search", headers=h))
    check(document, "/apiv1/trash", client.get("/apiv1/trash?limit=0", headers=h))
    check(document, "/apiv1/files", client.get("/apiv1/files?cursor=bad", headers=h))
