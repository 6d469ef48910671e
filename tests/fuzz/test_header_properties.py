"""Properties of the header parsers: Range (with ``ByteRange.resolve``), tus ``Upload-Metadata``
and ``Upload-Checksum``, and ``Upload-Length`` / ``Upload-Offset`` as the tus endpoint reads
them from a request.

Header values are latin-1 on the wire: a client may send any byte from 0x20 up, including
characters that look like digits to ``str.isdigit`` but are not (``²``)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz.support import PROPERTIES, REQUESTS, AsServer, Target, raw_request
from tests.helpers import path_of

from satchel.core.downloads import ByteRange
from satchel.core.tus import CHECKSUMS, Checksum, parse_metadata
from satchel.errors import BadRequest, RangeNotSatisfiable
from satchel.web.http import parse_range

pytestmark = pytest.mark.usefixtures("readable_failures")

LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f")
# Text a number parser meets: digits (ASCII and not), signs, spaces, separators, letters.
NUMBERISH = st.text(st.sampled_from("0123456789²³¹ +-_.,xeE\t"), max_size=12)
HEADER = st.one_of(st.text(LATIN1, max_size=40), NUMBERISH)
SIZES = st.integers(0, 10**6)


# -- Range --------------------------------------------------------------------------------

RANGE_HEADERS = st.one_of(
    HEADER,
    st.builds(
        lambda sp, a, b: f"bytes{sp}={sp}{a}{sp}-{sp}{b}{sp}",
        st.sampled_from(["", " "]),
        st.one_of(st.just(""), st.integers(0, 10**20).map(str)),
        st.one_of(st.just(""), st.integers(0, 10**20).map(str)),
    ),
    st.builds(lambda a, b: f"bytes={a}-{b},{b}-", st.integers(0, 99), st.integers(0, 99)),
)


@PROPERTIES
@given(header=RANGE_HEADERS, size=SIZES)
def test_a_resolved_range_lies_within_the_file(header: str, size: int) -> None:
    byte_range = parse_range(header)
    if byte_range is None:
        return
    try:
        start, end = byte_range.resolve(size)
    except RangeNotSatisfiable as refused:
        refusal = refused  # its 416 names the size: Content-Range: bytes */size
    else:
        assert 0 <= start < end <= size
        return
    assert refusal.size == size


@PROPERTIES
@given(first=st.integers(0, 10**12), length=st.integers(0, 10**12), size=SIZES)
def test_first_last_ranges_give_those_bytes(first: int, length: int, size: int) -> None:
    last = first + length
    byte_range = parse_range(f"bytes={first}-{last}")
    assert byte_range == ByteRange(first, last)
    if first >= size:
        with pytest.raises(RangeNotSatisfiable):
            byte_range.resolve(size)
    else:
        assert byte_range.resolve(size) == (first, min(last, size - 1) + 1)


@PROPERTIES
@given(suffix=st.integers(0, 10**12), size=SIZES)
def test_suffix_ranges_give_the_last_bytes(suffix: int, size: int) -> None:
    byte_range = parse_range(f"bytes=-{suffix}")
    assert byte_range == ByteRange(None, suffix)
    if suffix == 0 or size == 0:
        with pytest.raises(RangeNotSatisfiable):
            byte_range.resolve(size)
    else:
        assert byte_range.resolve(size) == (max(0, size - suffix), size)


@PROPERTIES
@given(first=st.integers(1, 10**6), back=st.integers(1, 10**6))
def test_a_range_that_ends_before_it_starts_is_ignored(first: int, back: int) -> None:
    assert parse_range(f"bytes={first + back}-{first}") is None


CONTENT = bytes(range(256)) * 12  # 3072 bytes, each offset telling where it is


@pytest.fixture(scope="module")
def shared_file(fuzz_target: Target) -> str:
    answer = fuzz_target.client.post("/upload", files={"files": ("r.bin", CONTENT)})
    assert answer.status_code == 200, answer.text
    uuid: str = answer.json()["file_id"]
    return uuid


@REQUESTS
@given(header=RANGE_HEADERS)
def test_a_download_with_any_range_gives_those_bytes(
    fuzz_target: Target, shared_file: str, header: str
) -> None:
    answer = raw_request(
        fuzz_target.app, "GET", f"/f/{shared_file}", [(b"range", header.encode("latin-1"))]
    )
    expected = parse_range(header)
    if expected is None:
        assert (answer.status, answer.body) == (200, CONTENT)
        return
    try:
        start, end = expected.resolve(len(CONTENT))
    except RangeNotSatisfiable:
        assert answer.status == 416
        assert answer.headers["content-range"] == f"bytes */{len(CONTENT)}"
        return
    assert answer.status == 206
    assert answer.body == CONTENT[start:end]
    assert answer.headers["content-range"] == f"bytes {start}-{end - 1}/{len(CONTENT)}"
    assert answer.headers["content-length"] == str(end - start)


# -- tus Upload-Metadata and Upload-Checksum ----------------------------------------------

KEYS = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=","),
    min_size=1,
    max_size=10,
)


def metadata_header(metadata: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}".rstrip()
        for key, value in metadata.items()
    )


@PROPERTIES
@given(metadata=st.dictionaries(KEYS, st.text(max_size=30), max_size=6))
def test_metadata_round_trips(metadata: dict[str, str]) -> None:
    assert parse_metadata(metadata_header(metadata)) == metadata


@PROPERTIES
@given(header=st.one_of(HEADER, st.text(max_size=60)))
def test_any_metadata_header_gives_text_or_a_bad_request(header: str) -> None:
    try:
        fields = parse_metadata(header)
    except BadRequest:
        return
    assert all(isinstance(k, str) and k and isinstance(v, str) for k, v in fields.items())


@PROPERTIES
@given(algorithm=st.sampled_from(sorted(CHECKSUMS)), body=st.binary(max_size=64))
def test_a_checksum_header_round_trips(algorithm: str, body: bytes) -> None:
    digest = hashlib.new(algorithm, body).digest()
    header = f"{algorithm} {base64.b64encode(digest).decode()}"
    assert Checksum.parse(header) == Checksum(algorithm, digest)
    assert Checksum.parse(f"  {algorithm.upper()}   {base64.b64encode(digest).decode()} ") == (
        Checksum(algorithm, digest)
    )


@PROPERTIES
@given(header=st.one_of(HEADER, st.text(max_size=60)))
def test_any_checksum_header_gives_a_checksum_or_a_bad_request(header: str) -> None:
    try:
        parsed = Checksum.parse(header)
    except BadRequest:
        return
    assert parsed is None or parsed.algorithm in CHECKSUMS


# -- Upload-Length and Upload-Offset, as the tus endpoint reads them ----------------------

TUS = [(b"tus-resumable", b"1.0.0")]
OCTETS = [(b"content-type", b"application/offset+octet-stream")]


def create(app: AsServer, length: bytes) -> int:
    return raw_request(app, "POST", "/tus/", [*TUS, (b"upload-length", length)]).status


@REQUESTS
@given(length=HEADER)
def test_any_upload_length_is_created_or_refused(fuzz_target: Target, length: str) -> None:
    status = create(fuzz_target.app, length.encode("latin-1"))
    if length.isascii() and length.isdecimal():
        assert status in (201, 413)
    else:
        assert status == 400


@REQUESTS
@given(offset=HEADER)
def test_any_upload_offset_is_taken_or_refused(fuzz_target: Target, offset: str) -> None:
    upload = path_of(fuzz_target.state.url(f"/tus/{fuzz_target.tus_upload()}"))
    headers = [*TUS, *OCTETS, (b"upload-offset", offset.encode("latin-1"))]
    status = raw_request(fuzz_target.app, "PATCH", upload, headers, b"abc").status
    if offset.isascii() and offset.isdecimal() and int(offset) == 0:
        assert status == 204
    elif offset.isascii() and offset.isdecimal():
        assert status in (400, 409)
    else:
        assert status == 400
