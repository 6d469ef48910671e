from __future__ import annotations

import ipaddress

import pytest
from starlette.requests import Request

from satchel.core.downloads import ByteRange
from satchel.errors import RangeNotSatisfiable
from satchel.web.http import client_ip, content_disposition, is_cli_client, parse_range, wants_html


def request(peer: str = "192.0.2.1", **headers: str) -> Request:
    raw = [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return Request(
        {"type": "http", "headers": raw, "client": (peer, 1234), "method": "GET", "path": "/"}
    )


TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("192.0.2.1", "198.51.100.1", "192.0.2.1"),  # untrusted peer: header ignored
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # rightmost untrusted hop
        ("10.0.0.5", "198.51.100.1, 10.0.0.9", "198.51.100.1"),  # skip trusted hops
        ("10.0.0.5", "garbage", "10.0.0.5"),
        ("10.0.0.5", "", "10.0.0.5"),
    ],
)
def test_client_ip(peer: str, forwarded: str, expected: str) -> None:
    headers = {"x_forwarded_for": forwarded} if forwarded else {}
    assert client_ip(request(peer, **headers), TRUSTED) == expected


def test_browsers_and_cli_clients() -> None:
    browser = request(accept="text/html,application/xhtml+xml", user_agent="Mozilla/5.0")
    assert wants_html(browser)
    assert not is_cli_client(browser)
    for agent in ("curl/8.5.0", "Wget/1.21", "python-requests/2.32", "HTTPie/3.2"):
        cli = request(accept="text/html", user_agent=agent)
        assert is_cli_client(cli)
        assert not wants_html(cli)
    assert not wants_html(
        request(accept="text/html", user_agent="Mozilla/5.0", x_requested_with="XMLHttpRequest")
    )


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-9", 100, (0, 10)),
        ("bytes=90-", 100, (90, 100)),
        ("bytes=-5", 100, (95, 100)),
        ("bytes=50-500", 100, (50, 100)),
        ("bytes=-500", 100, (0, 100)),
    ],
)
def test_ranges(header: str, size: int, expected: tuple[int, int]) -> None:
    parsed = parse_range(header)
    assert parsed is not None
    assert parsed.resolve(size) == expected


@pytest.mark.parametrize(
    "header", ["bytes=5-1", "bytes=0-1,5-6", "items=0-1", "bytes=-", "nonsense"]
)
def test_unusable_ranges_are_ignored(header: str) -> None:
    assert parse_range(header) is None


def test_unsatisfiable() -> None:
    with pytest.raises(RangeNotSatisfiable):
        ByteRange(100, None).resolve(100)
    with pytest.raises(RangeNotSatisfiable):
        ByteRange(None, 0).resolve(100)


def test_content_disposition_is_safe() -> None:
    value = content_disposition('evil"; filename=x.html\r\n.txt')
    assert "\r" not in value
    assert "\n" not in value
    assert value.startswith('attachment; filename="evil_; filename=x.html__.txt"')
