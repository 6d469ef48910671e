"""Requests generated from the three OpenAPI documents, valid and invalid: no answer is a 5xx,
and every answer has a documented status, content type and (where the schema is exact) shape.

The app runs in-process behind ``AsServer`` (an error after the 500 went out stays in the log,
as under granian); the log of a failing case holds its traceback. The documents are the ones
the modules build (the served ones add only ``servers``), loaded at import so that the plugin
names one test per operation. Runs are derandomized: the same requests every time. Cases carry
alice's credentials (on the public API, half of them), and half, picked by their content, aim
at things of hers that exist, so that they get past the look-ups.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.fuzz.support import Target, picks
from tests.helpers import bearer

from satchel.web.apiv1.openapi import DOCUMENT as APIV1
from satchel.web.apiv2.openapi import DOCUMENT as APIV2
from satchel.web.public.openapi import DOCUMENT as PUBLIC

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# A longer or another run, to look for more: SATCHEL_FUZZ_EXAMPLES=500 SATCHEL_FUZZ_SEED=7.
EXAMPLES = int(os.environ.get("SATCHEL_FUZZ_EXAMPLES", "12"))
SEED = int(os.environ.get("SATCHEL_FUZZ_SEED", "20261201"))
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES,
            "deterministic": True,
            "database": "none",
            # Credentials are the test's to send (real ones), not the generator's.
            "with-security-parameters": False,
        },
        "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True}},
    }
)
schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=64))


def load(document: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(
        {**document, "servers": [{"url": "http://testserver"}]}, config=CONFIG
    )


PUBLIC_SCHEMA = load(PUBLIC)
APIV1_SCHEMA = load(APIV1)
APIV2_SCHEMA = load(APIV2)


def send(case: Any, fuzz_target: Target) -> None:
    case.call_and_validate(app=fuzz_target.app, checks=CHECKS)


def path_names(case: Any) -> set[str]:
    return set(case.path_parameters or {})


def aim_at(case: Any, ids: dict[str, Any]) -> None:
    case.path_parameters = {
        name: ids.get(name, value) for name, value in (case.path_parameters or {}).items()
    }


@PUBLIC_SCHEMA.parametrize()
def test_public_api(case: Any, fuzz_target: Target) -> None:
    as_user = picks(case, "user")  # chosen before anything in the case is changed
    if picks(case, "real"):
        aim_at(case, fuzz_target.public_ids(path_names(case)))
    if as_user:
        case.headers = {**(case.headers or {}), **bearer(fuzz_target.key)}
    send(case, fuzz_target)


def drive_ids(fuzz_target: Target, case: Any) -> dict[str, Any]:
    """Fresh things of alice's for the ids the path takes: in the trash for the trash's."""
    names = path_names(case)
    ids: dict[str, Any] = {}
    if names & {"file_id", "item_id", "id"}:
        in_trash = case.operation.path.startswith("/apiv1/trash/")
        file_id = fuzz_target.trashed_file() if in_trash else fuzz_target.drive_file()
        ids.update(file_id=file_id, item_id=file_id, id=file_id)
    lists_a_folder = "id" in names and case.method.upper() == "GET"  # GET /apiv1/files/{id}
    if "folder_id" in names or lists_a_folder:
        ids["folder_id"] = fuzz_target.drive_folder()
        if lists_a_folder:
            ids["id"] = ids["folder_id"]
    if "key_id" in names:
        ids["key_id"] = fuzz_target.state.apikeys.list(fuzz_target.user)[0].id
    return ids


@APIV1_SCHEMA.parametrize()
def test_apiv1(case: Any, fuzz_target: Target) -> None:
    if picks(case, "real"):
        aim_at(case, drive_ids(fuzz_target, case))
    case.headers = {**(case.headers or {}), **bearer(fuzz_target.key)}
    try:
        send(case, fuzz_target)
    finally:
        if case.operation.path.startswith("/apiv1/keys"):
            fuzz_target.new_key()  # it may have revoked or narrowed the key in use


FOLDER_PARAMETERS = (
    "folder_id", "parent_folder_id", "parent_id", "new_parent_folder_id", "copy_to_folder_id",
)  # fmt: skip


def v2_ids(fuzz_target: Target, sent: set[str]) -> dict[str, str]:
    ids: dict[str, str] = {}
    if "file_id" in sent:
        ids["file_id"] = str(fuzz_target.drive_file())
    if sent & set(FOLDER_PARAMETERS):
        ids.update(dict.fromkeys(FOLDER_PARAMETERS, str(fuzz_target.drive_folder())))
    return ids


def with_real_values(params: Any, real: dict[str, str]) -> Any:
    """Real values for the parameters the case sends (one it leaves out stays out)."""
    if not isinstance(params, dict):
        return params
    return {name: real.get(name, value) for name, value in params.items()}


def sent_names(case: Any) -> set[str]:
    return {
        name for params in (case.query, case.body) if isinstance(params, dict) for name in params
    }


@APIV2_SCHEMA.parametrize()
def test_apiv2(case: Any, fuzz_target: Target) -> None:
    real = dict(fuzz_target.v2)
    if picks(case, "real"):
        real.update(v2_ids(fuzz_target, sent_names(case)))
    case.query = with_real_values(case.query, real)
    case.body = with_real_values(case.body, real)
    try:
        send(case, fuzz_target)
    finally:
        if case.operation.path.endswith(("/authorize", "/disable_access_token")):
            fuzz_target.new_token()
