"""Properties of the multipart parsers: ``UploadIngest`` (uploads) and the small-form decoder.

A valid body gives what was sent, however the body is cut into pieces; a body past the size
limit is refused; anything else, garbage included, gives a Satchel error (never another
exception) and leaves nothing behind once aborted.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz.support import PROPERTIES, UPLOADS

from satchel.core.bundles import IngestedBlob
from satchel.core.names import make_unique, safe_content_type, safe_filename
from satchel.crypto.atrest import decrypt_range
from satchel.errors import BadRequest, SatchelError, TooLarge
from satchel.storage import BlobStore, open_store
from satchel.web.http import _decode_form, _multipart_fields
from satchel.web.multipart import UploadIngest

pytestmark = pytest.mark.usefixtures("readable_failures")

BOUNDARY = "fuzzBoundary7MA4YWxkTrZu0gW"
# Header text a client can send inside a quoted parameter: no quote, backslash or line break.
HEADER_TEXT = st.text(
    st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\', max_codepoint=0x2FFF
    ),
    max_size=12,
)
TYPES = st.sampled_from(["text/plain", "application/octet-stream", "image/png", "bogus", ""])


@dataclass(frozen=True)
class Part:
    name: str
    value: bytes
    filename: str | None = None  # None: a form field
    content_type: str = ""

    def encode(self, boundary: str = BOUNDARY) -> bytes:
        disposition = f'form-data; name="{self.name}"'
        if self.filename is not None:
            disposition += f'; filename="{self.filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if self.content_type:
            head += f"Content-Type: {self.content_type}\r\n"
        return (head + "\r\n").encode() + self.value + b"\r\n"


def body_of(parts: list[Part], boundary: str = BOUNDARY) -> bytes:
    return b"".join(part.encode(boundary) for part in parts) + f"--{boundary}--\r\n".encode()


FIELDS = st.builds(
    Part,
    name=HEADER_TEXT.filter(lambda name: name not in ("files", "file")),
    value=st.text(max_size=40).map(str.encode),
)
FILES = st.builds(
    Part,
    name=st.sampled_from(["files", "file"]),
    value=st.binary(max_size=300),
    filename=HEADER_TEXT.filter(bool),
    content_type=TYPES,
)
# Fields first, then at least one file (with fields between files too).
FORMS = st.builds(
    lambda before, first, after: [*before, first, *after],
    st.lists(FIELDS, max_size=4),
    FILES,
    st.lists(st.one_of(FILES, FIELDS), max_size=4),
)


def cuts(body: bytes) -> st.SearchStrategy[list[bytes]]:
    """``body`` in pieces of any sizes (empty ones too)."""
    points = st.lists(st.integers(0, len(body)), max_size=8).map(sorted)
    return points.map(
        lambda at: [body[a:b] for a, b in zip([0, *at], [*at, len(body)], strict=True)]
    )


@pytest.fixture(scope="module")
def store(scratch: Path) -> BlobStore:
    return open_store("local", Path(tempfile.mkdtemp(dir=scratch)))


def left_behind(store: BlobStore) -> list[Path]:
    root: Path = store.root  # type: ignore[attr-defined]
    return [path for path in root.rglob("*") if path.is_file()]


@dataclass
class Outcome:
    """What an upload gave, without its random keys."""

    fields: dict[str, str]
    name: str
    content_type: str
    file_count: int
    file_names: list[str]
    files: list[tuple[str, bytes]]  # the plaintext: the file, or the ZIP's entries


def plaintext(store: BlobStore, blob: IngestedBlob) -> bytes:
    return b"".join(decrypt_range(store, blob.blob_key, blob.data_key, blob.size))


def outcome(store: BlobStore, ingest: UploadIngest, blob: IngestedBlob) -> Outcome:
    data = plaintext(store, blob)
    if blob.file_count == 1:
        files = [(blob.name, data)]
    else:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            files = [(info.filename, archive.read(info)) for info in archive.infolist()]
    return Outcome(
        dict(ingest.fields), blob.name, blob.content_type, blob.file_count, blob.file_names, files
    )


def ingested(store: BlobStore, pieces: list[bytes], **options: Any) -> Outcome:
    """The outcome of one upload fed ``pieces``; the blob is deleted afterwards."""
    ingest = UploadIngest(store, options.pop("boundary", BOUNDARY), -1, 1 << 20, **options)
    try:
        ingest.feed_many(pieces)
        return outcome(store, ingest, ingest.finish())
    finally:
        ingest.abort()


def expected(parts: list[Part]) -> Outcome:
    """What Satchel promises for a valid form: fields as sent (the last of a name wins), file
    names made safe and unique, one file as it is, several as a ZIP of them in order."""
    fields = {p.name: p.value.decode() for p in parts if p.filename is None}
    taken: set[str] = set()
    uploads = [p for p in parts if p.filename is not None]
    names = [make_unique(safe_filename(p.filename or ""), taken) for p in uploads]
    files = list(zip(names, (p.value for p in uploads), strict=True))
    if len(uploads) == 1:
        kind = safe_content_type(uploads[0].content_type or None)
        return Outcome(fields, names[0], kind, 1, names, files)
    return Outcome(fields, "files.zip", "application/zip", len(uploads), names, files)


@UPLOADS
@given(parts=FORMS, data=st.data())
def test_a_valid_form_gives_what_was_sent_however_it_is_cut(
    store: BlobStore, parts: list[Part], data: st.DataObject
) -> None:
    body = body_of(parts)
    pieces = data.draw(cuts(body), label="pieces")
    assert ingested(store, pieces) == expected(parts)
    assert left_behind(store) == []


@UPLOADS
@given(parts=FORMS, limit=st.integers(0, 400), data=st.data())
def test_files_past_the_limit_are_refused_and_nothing_stays(
    store: BlobStore, parts: list[Part], limit: int, data: st.DataObject
) -> None:
    total = sum(len(p.value) for p in parts if p.filename is not None)
    body = body_of(parts)
    ingest = UploadIngest(store, BOUNDARY, len(body), limit)
    try:
        pieces = data.draw(cuts(body), label="pieces")
        if total > limit:
            with pytest.raises(TooLarge):
                ingest.feed_many(pieces)
        else:
            ingest.feed_many(pieces)
            assert ingest.finish().file_count == sum(p.filename is not None for p in parts)
    finally:
        ingest.abort()
    assert left_behind(store) == []


def mutations(body: bytes) -> st.SearchStrategy[bytes]:
    """A valid body cut short, with bytes changed, dropped or put in: near misses."""
    at = st.integers(0, len(body))
    return st.one_of(
        at.map(lambda n: body[:n]),
        st.tuples(at, st.binary(min_size=1, max_size=8)).map(
            lambda put: body[: put[0]] + put[1] + body[put[0] :]
        ),
        st.tuples(at, st.integers(1, 40)).map(lambda cut: body[: cut[0]] + body[cut[0] + cut[1] :]),
        st.tuples(at, st.integers(0, 255)).map(
            lambda flip: body[: flip[0]] + bytes([flip[1]]) + body[flip[0] + 1 :]
        ),
    )


GARBAGE = st.one_of(
    st.binary(max_size=400),
    FORMS.map(body_of).flatmap(mutations),
    st.lists(st.sampled_from([b"--", BOUNDARY.encode(), b"\r\n", b"Content-Disposition: ",
                              b'form-data; name="files"; filename="a"', b"x" * 70, b";", b"\r\n\r\n"]),
             max_size=30).map(b"".join),
)  # fmt: skip


@UPLOADS
@given(body=GARBAGE, data=st.data(), separate=st.booleans())
def test_garbage_gives_only_satchel_errors_and_leaves_nothing(
    store: BlobStore, body: bytes, data: st.DataObject, separate: bool
) -> None:
    ingest = UploadIngest(store, BOUNDARY, -1, 1 << 20, separate=separate)
    try:
        ingest.feed_many(data.draw(cuts(body), label="pieces"))
        if separate:
            ingest.finish_separate()
        else:
            ingest.finish()
    except SatchelError:
        pass
    finally:
        ingest.abort()
    assert left_behind(store) == []


# What boundary_of lets through from a Content-Type header: 1 to 200 characters of latin-1,
# no line breaks (a header cannot hold them).
HEADER_BOUNDARIES = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    min_size=1,
    max_size=200,
)


@PROPERTIES
@given(boundary=HEADER_BOUNDARIES, body=st.binary(max_size=200))
def test_any_header_boundary_gives_only_satchel_errors(
    store: BlobStore, boundary: str, body: bytes
) -> None:
    try:
        ingest = UploadIngest(store, boundary, -1, 1 << 20)
    except SatchelError:
        return
    try:
        ingest.feed(body)
        ingest.finish()
    except SatchelError:
        pass
    finally:
        ingest.abort()


# -- small forms (/manage, /api/v2, account pages) ----------------------------------------

SMALL_FIELDS = st.dictionaries(HEADER_TEXT, st.text(max_size=30), max_size=6)


@PROPERTIES
@given(fields=SMALL_FIELDS)
def test_small_multipart_forms_decode_to_what_was_sent(fields: dict[str, str]) -> None:
    parts = [Part(name, value.encode()) for name, value in fields.items()]
    body = body_of(parts)
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    assert _decode_form(content_type, body) == fields
    assert _multipart_fields(body, BOUNDARY) == fields


CONTENT_TYPES = st.one_of(
    st.sampled_from([
        "", "application/x-www-form-urlencoded", "application/json", "text/plain",
        f"multipart/form-data; boundary={BOUNDARY}", "multipart/form-data",
        "multipart/form-data; boundary=", 'multipart/form-data; boundary="a b"',
    ]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60),
)  # fmt: skip


JSON_BODIES = st.one_of(
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=8,
    ).map(lambda value: json.dumps(value).encode()),
    # Deeply nested, as a body crafted against a recursive decoder is (well under 64 KiB).
    st.integers(1, 5000).map(lambda depth: b'{"a": ' + b"[" * depth + b"]" * depth + b"}"),
)


@PROPERTIES
@given(body=JSON_BODIES)
def test_json_forms_give_fields_or_a_bad_request(body: bytes) -> None:
    try:
        fields = _decode_form("application/json", body)
    except BadRequest:
        return
    sent = json.loads(body)
    assert set(fields) == set(sent)
    for name, value in sent.items():
        if isinstance(value, bool):
            assert fields[name] == ("true" if value else "false")
        elif value is None or isinstance(value, str):
            assert fields[name] == (value or "")


@PROPERTIES
@given(content_type=CONTENT_TYPES, body=st.one_of(st.binary(max_size=300), GARBAGE))
def test_small_forms_of_any_kind_give_fields_or_a_bad_request(
    content_type: str, body: bytes
) -> None:
    try:
        fields = _decode_form(content_type, body)
    except BadRequest:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
