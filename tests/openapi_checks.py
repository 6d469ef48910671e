"""Checks shared by the OpenAPI document tests: a real answer against the documented one."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from starlette.routing import Route


def shape(path: str) -> str:
    """The path with its parameters' names left out: /a/{x}/b → /a/{}/b."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (shape(path), method.upper()) for path, item in document["paths"].items() for method in item
    }


def served(routes: Iterable[Any], wanted: Any) -> set[tuple[str, str]]:
    """(path shape, method) of every route ``wanted(path)`` picks; HEAD only where the route
    has no GET (Starlette adds HEAD to every GET)."""
    found = set()
    for route in routes:
        if isinstance(route, Route) and wanted(route.path):
            methods = set(route.methods or ())
            if methods >= {"GET", "HEAD"}:
                methods.discard("HEAD")
            found |= {(shape(route.path), method) for method in methods}
    return found


def answer(document: dict[str, Any], path: str, response: Any) -> dict[str, Any]:
    """The documented answer of ``response``'s method and status on ``path``."""
    operation = document["paths"][path][response.request.method.lower()]
    responses = operation["responses"]
    assert str(response.status_code) in responses, (path, response.status_code, response.text)
    documented_answer: dict[str, Any] = responses[str(response.status_code)]
    return documented_answer


def check(document: dict[str, Any], path: str, response: Any) -> None:
    """The status is documented and a JSON body matches its schema; documented headers that
    declare a schema match it too."""
    documented_answer = answer(document, path, response)
    for name, header in documented_answer.get("headers", {}).items():
        if name in response.headers and header["schema"].get("type") == "integer":
            assert response.headers[name].isdecimal(), (path, name, response.headers[name])
    content = documented_answer.get("content", {})
    if response.request.method == "HEAD":
        return  # the headers of a GET, no body
    kind = response.headers.get("content-type", "").split(";")[0].strip()
    if "application/json" not in content or kind != "application/json":
        assert not content or kind in content or "*/*" in content, (path, kind, list(content))
        return
    schema = {**content["application/json"]["schema"], "components": document["components"]}
    errors = list(Draft202012Validator(schema).iter_errors(response.json()))
    assert not errors, (path, response.request.method, response.status_code, errors[0].message)
