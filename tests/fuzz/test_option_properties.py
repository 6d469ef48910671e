"""Properties of the parsers of form fields and query values: upload and manage options,
E2E salts and IVs, download limits, expiry choices and listing cursors.

Each gives back what was meant for every well-formed value and refuses everything else with
a 400 (``BadRequest``), never another exception: any other would be a 500.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz.support import PROPERTIES

from satchel.core.drive.listing import Cursor
from satchel.core.expiry import parse_expiry
from satchel.core.options import (
    ManageChanges,
    UploadOptions,
    parse_e2e_bytes,
    parse_flag,
    parse_max_downloads,
)
from satchel.errors import BadRequest

pytestmark = pytest.mark.usefixtures("readable_failures")

WEEK = 7 * 86400
# What people and scripts type into a field: numbers of every spelling, flags, durations,
# base64 and decimal bytes, and any text at all.
NUMBERISH = st.text(st.sampled_from("0123456789²³¹٣ +-_.,xeE"), max_size=12)
FIELD_VALUES = st.one_of(
    st.text(max_size=30),
    NUMBERISH,
    st.sampled_from(["true", "FALSE", " on ", "no", "never", "30m", "7d", "8d", "v1", "null"]),
    st.binary(max_size=16).map(lambda raw: base64.b64encode(raw).decode()),
    st.lists(st.integers(-2, 300), max_size=17).map(lambda n: ",".join(map(str, n))),
)
UPLOAD_FIELDS = st.dictionaries(
    st.sampled_from([
        "is_temp", "folder_id", "short_url", "public", "password", "max_downloads", "expires",
        "e2e", "e2e_salt", "e2e_iv", "other",
    ]),
    FIELD_VALUES,
)  # fmt: skip
MANAGE_FIELDS = st.dictionaries(
    st.sampled_from(
        ["public", "password", "expires", "max_downloads", "_form", "remove_password", "claim"]
    ),
    FIELD_VALUES,
)


@PROPERTIES
@given(fields=UPLOAD_FIELDS)
def test_upload_options_are_parsed_or_refused(fields: dict[str, str]) -> None:
    try:
        options = UploadOptions.from_fields(fields, WEEK)
    except BadRequest:
        return
    assert options.folder_id is None or options.folder_id >= 0  # "00" is folder 0: not found
    assert options.expires is None or timedelta(0) < options.expires <= timedelta(seconds=WEEK)
    assert options.max_downloads is None or options.max_downloads > 0
    if options.e2e and options.e2e_format is None:
        assert options.e2e_salt is not None
        assert len(options.e2e_salt) == 16
        assert options.e2e_iv is not None
        assert len(options.e2e_iv) == 12


@PROPERTIES
@given(fields=MANAGE_FIELDS)
def test_manage_changes_are_parsed_or_refused(fields: dict[str, str]) -> None:
    try:
        changes = ManageChanges.from_fields(fields, WEEK)
    except BadRequest:
        return
    assert changes.max_downloads_given == ("max_downloads" in fields)
    if not fields.get("_form"):
        assert (changes.public is None) == ("public" not in fields)
        assert changes.password_given == ("password" in fields)


@PROPERTIES
@given(name=st.sampled_from(["folder_id", "max_downloads"]), text=NUMBERISH)
def test_any_number_like_text_in_a_number_field_is_parsed_or_refused(name: str, text: str) -> None:
    try:
        options = UploadOptions.from_fields({name: text}, WEEK)
    except BadRequest:
        return
    assert isinstance(getattr(options, name), int | None)


@PROPERTIES
@given(folder_id=st.integers(1, 10**18), spaces=st.sampled_from(["", " ", "\t"]))
def test_a_folder_id_is_read_as_its_number(folder_id: int, spaces: str) -> None:
    fields = {"folder_id": f"{spaces}{folder_id}{spaces}"}
    assert UploadOptions.from_fields(fields, WEEK).folder_id == folder_id


@PROPERTIES
@given(value=st.sampled_from(["", "0", "null"]))
def test_no_folder_is_the_root(value: str) -> None:
    assert UploadOptions.from_fields({"folder_id": value}, WEEK).folder_id is None


@PROPERTIES
@given(text=st.text(max_size=10), field=st.just("public"))
def test_a_flag_is_true_false_or_refused(text: str, field: str) -> None:
    word = text.strip().lower()
    if word in ("true", "1", "on", "yes"):
        assert parse_flag(text, field) is True
    elif word in ("false", "0", "off", "no", ""):
        assert parse_flag(text, field) is False
    else:
        with pytest.raises(BadRequest):
            parse_flag(text, field)


@PROPERTIES
@given(number=st.integers(-(10**12), 10**12))
def test_a_download_limit_is_its_number_zero_none_or_refused(number: int) -> None:
    if number < 0 or number > 1_000_000_000:
        with pytest.raises(BadRequest):
            parse_max_downloads(str(number))
    else:
        assert parse_max_downloads(f" {number} ") == (number or None)


@PROPERTIES
@given(text=st.one_of(NUMBERISH, st.text(max_size=20)))
def test_any_download_limit_text_is_parsed_or_refused(text: str) -> None:
    try:
        limit = parse_max_downloads(text)
    except BadRequest:
        return
    assert limit is None or 1 <= limit <= 1_000_000_000


@PROPERTIES
@given(raw=st.binary(min_size=12, max_size=12), spelling=st.integers(0, 3))
def test_e2e_bytes_in_every_spelling_give_those_bytes(raw: bytes, spelling: int) -> None:
    text = [
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        ",".join(str(b) for b in raw),
    ][spelling]
    assert parse_e2e_bytes(f" {text} ", "e2e_iv", 12) == raw


@PROPERTIES
@given(raw=st.binary(max_size=20).filter(lambda raw: len(raw) != 12))
def test_e2e_bytes_of_another_length_are_refused(raw: bytes) -> None:
    for text in (base64.b64encode(raw).decode(), ",".join(str(b) for b in raw)):
        with pytest.raises(BadRequest):
            parse_e2e_bytes(text, "e2e_iv", 12)


@PROPERTIES
@given(text=st.one_of(FIELD_VALUES, st.text(max_size=40)))
def test_any_e2e_text_gives_its_bytes_or_is_refused(text: str) -> None:
    try:
        raw = parse_e2e_bytes(text, "e2e_salt", 16)
    except BadRequest:
        return
    assert len(raw) == 16


UNITS = {"m": 60, "h": 3600, "d": 86400}


@PROPERTIES
@given(amount=st.integers(0, 10**7), unit=st.sampled_from(sorted(UNITS)), upper=st.booleans())
def test_an_expiry_is_its_duration_or_refused(amount: int, unit: str, upper: bool) -> None:
    text = f" {amount}{unit.upper() if upper else unit} "
    seconds = amount * UNITS[unit]
    if amount == 0 or amount > 999_999 or seconds > WEEK:
        with pytest.raises(BadRequest):
            parse_expiry(text, WEEK)
    else:
        assert parse_expiry(text, WEEK) == timedelta(seconds=seconds)


@PROPERTIES
@given(text=st.one_of(FIELD_VALUES, st.text(max_size=20)))
def test_any_expiry_text_is_a_duration_never_or_refused(text: str) -> None:
    try:
        duration = parse_expiry(text, WEEK)
    except BadRequest:
        return
    assert duration is None or timedelta(0) < duration <= timedelta(seconds=WEEK)


# -- cursors ------------------------------------------------------------------------------

CURSORS = st.builds(
    Cursor,
    kind=st.sampled_from(["folder", "file"]),
    name=st.text(max_size=40),
    id=st.integers(1, 2**63 - 1),
)


@PROPERTIES
@given(cursor=CURSORS)
def test_a_cursor_round_trips(cursor: Cursor) -> None:
    text = cursor.encode()
    assert text.isascii()
    assert "=" not in text
    assert Cursor.decode(text) == cursor


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=10,
)  # fmt: skip


def encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CURSOR_TEXT = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60).map(encoded),
    JSON.map(lambda value: encoded(json.dumps(value).encode())),
    # Deeply nested lists: what a cursor crafted against a recursive parser looks like.
    st.integers(1, 5000).map(lambda depth: encoded(b"[" * depth + b"]" * depth)),
)


@PROPERTIES
@given(text=CURSOR_TEXT)
def test_any_cursor_text_is_a_cursor_or_refused(text: str) -> None:
    try:
        cursor = Cursor.decode(text)
    except BadRequest:
        return
    assert cursor is None or (cursor.kind in ("folder", "file") and isinstance(cursor.id, int))
