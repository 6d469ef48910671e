"""Fetching a URL a user gave without letting it reach the server's own network.

The host name is resolved here, once; every address it resolves to must be public, and the
connection goes to that very address (the URL's host is replaced by it, while the ``Host``
header, TLS SNI and certificate check keep the name), so a second DNS answer can never point
the request elsewhere. Redirects are followed by hand and each hop is checked the same way.
"""

from __future__ import annotations

import email.message
import email.utils
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import certifi
import httpx

from satchel.core.names import DEFAULT_TYPE, safe_filename

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CHUNK_SIZE = 1024 * 1024
MAX_STALL = 30.0  # seconds a connect or a single read may wait, within the overall deadline
RATE_WINDOW = 30.0  # seconds over which the minimum transfer rate is measured
USER_AGENT = "Satchel-URL-import"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# Instance metadata services, which hand out cloud credentials: AWS, GCP, Azure, OpenStack
# (169.254.169.254), AWS ECS and EKS (169.254.170.2, .23), Alibaba (100.100.100.200).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "100.100.100.200",
        "fd00:ec2::254",
        "fd00:ec2::23",
    )
)
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 reached through a NAT64 gateway
_HOST_NAME = re.compile(r"[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*\.?")


class UrlRefused(Exception):
    """The URL cannot or may not be fetched; ``reason`` says why, for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int  # 0 = unlimited
    timeout: float = 600.0  # seconds for the whole transfer, redirects included
    max_redirects: int = 5
    allowed_hosts: frozenset[str] = frozenset()  # "host" or "host:port", lower case
    # A transfer averaging less than this over any RATE_WINDOW is given up: a slow origin
    # must not hold an import worker for the whole time limit. 0 = no minimum.
    min_rate: int = 0


@dataclass
class Fetched:
    url: str
    filename: str
    content_type: str
    size: int | None
    chunks: Iterator[bytes]


def classify_address(address: IPAddress) -> str | None:
    """What makes an address unfit to fetch from ("a loopback address"), or None if public."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return classify_address(embedded)
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (any(address in network for network in _PRIVATE), "a private address"),
        (address in _SHARED, "a shared (carrier-grade NAT) address"),
        (address in _SITE_LOCAL, "a site-local address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    return next((what for failed, what in checks if failed), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: mapped, 6to4 or NAT64."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(address.packed[-4:])
    return None


@contextmanager
def open_url(
    url: str, limits: FetchLimits, on_progress: Callable[[int], None] | None = None
) -> Iterator[Fetched]:
    """Open ``url`` for streaming; ``on_progress`` gets the number of bytes handed out so far.

    Everything that goes wrong (a refused address, a failed connection, an HTTP error status,
    too many redirects, too large, too slow) raises `UrlRefused`, here or from ``chunks``.
    """
    deadline = time.monotonic() + limits.timeout
    with ExitStack() as stack:
        final_url, response = _follow(stack, _parse(url), limits, deadline)
        stack.callback(response.close)
        if not 200 <= response.status_code < 300:
            raise UrlRefused(f"the server answered HTTP {response.status_code}")
        size = _content_length(response)
        if size is not None and limits.max_bytes and size > limits.max_bytes:
            raise _too_large(limits)
        yield Fetched(
            url=str(final_url),
            filename=_filename(response, final_url),
            content_type=_content_type(response),
            size=size,
            chunks=_body(response, final_url, limits, deadline, on_progress),
        )


def _parse(url: str | httpx.URL) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UrlRefused("the URL is not valid") from exc
    if parsed.scheme not in {"http", "https"}:
        raise UrlRefused("only http and https URLs can be imported")
    if parsed.userinfo:
        raise UrlRefused("URLs with a user name or password are not accepted")
    host = _host(parsed)
    if len(host) > 253 or not (_is_ip_literal(host) or _HOST_NAME.fullmatch(host)):
        raise UrlRefused("the URL has no valid host name")
    return parsed


def _host(url: httpx.URL) -> str:
    return url.raw_host.decode("ascii", errors="replace").lower()


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_allowed(url: httpx.URL, allowed_hosts: frozenset[str]) -> bool:
    host, port = _host(url), _port(url)
    names = {host, f"{host}:{port}", f"[{host}]", f"[{host}]:{port}"}
    return any(entry.strip().lower() in names for entry in allowed_hosts)


def _resolve(url: httpx.URL, limits: FetchLimits) -> list[IPAddress]:
    """Every address of the URL's host, each checked unless the host is allow-listed."""
    host = _host(url)
    try:
        infos = socket.getaddrinfo(host, _port(url), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"the host name {host} could not be resolved") from exc
    found = (str(info[4][0]).split("%", 1)[0] for info in infos)  # no IPv6 scope id
    addresses = list(dict.fromkeys(ipaddress.ip_address(a) for a in found))
    if not addresses:
        raise UrlRefused(f"the host name {host} could not be resolved")
    if not _is_allowed(url, limits.allowed_hosts):
        for address in addresses:
            problem = classify_address(address)
            if problem is not None:
                raise UrlRefused(f"refused: {address} is {problem}")
    return addresses


def _follow(
    stack: ExitStack, url: httpx.URL, limits: FetchLimits, deadline: float
) -> tuple[httpx.URL, httpx.Response]:
    for _ in range(limits.max_redirects + 1):
        response = _get(stack, url, limits, deadline)
        location = response.headers.get("location")
        if response.status_code not in REDIRECT_STATUSES or location is None:
            return url, response
        response.close()
        try:
            url = _parse(url.join(location))
        except httpx.InvalidURL as exc:
            raise UrlRefused("the server redirected to an invalid URL") from exc
    raise UrlRefused(f"the server redirected more than {limits.max_redirects} times")


def _get(stack: ExitStack, url: httpx.URL, limits: FetchLimits, deadline: float) -> httpx.Response:
    """One GET of ``url``, sent to the checked addresses of its host in turn.

    Each hop has its own client: a pooled connection, verified for one host name, must never
    carry a request for another name that resolves to the same address.
    """
    addresses = _resolve(url, limits)
    client = stack.enter_context(
        httpx.Client(verify=_tls_context(), trust_env=False, headers={"User-Agent": USER_AGENT})
    )
    failures: list[httpx.TransportError] = []
    for address in addresses:
        request = client.build_request(
            "GET",
            url.copy_with(host=address.compressed),
            headers={"Host": url.netloc.decode("ascii"), "Accept-Encoding": "identity"},
            extensions={"sni_hostname": _host(url)},
            timeout=httpx.Timeout(min(MAX_STALL, _remaining(limits, deadline))),
        )
        try:
            return client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            failures.append(exc)
        except httpx.HTTPError as exc:
            raise _transfer_failed(exc, url) from exc
    raise _transfer_failed(failures[-1], url) from failures[-1]  # _resolve found at least one


def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


def _remaining(limits: FetchLimits, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise UrlRefused(f"the transfer took longer than the limit of {limits.timeout:g} s")
    return left


def _body(
    response: httpx.Response,
    url: httpx.URL,
    limits: FetchLimits,
    deadline: float,
    on_progress: Callable[[int], None] | None,
) -> Iterator[bytes]:
    """The body as received (no decompression), in pieces of at most `CHUNK_SIZE`."""
    received = delivered = 0
    pending = bytearray()
    pace = _Pace(limits.min_rate)
    try:
        for piece in response.iter_raw():
            received += len(piece)
            if limits.max_bytes and received > limits.max_bytes:
                raise _too_large(limits)
            _remaining(limits, deadline)
            pace.check(received)
            pending += piece
            while len(pending) >= CHUNK_SIZE:
                chunk = bytes(pending[:CHUNK_SIZE])
                del pending[:CHUNK_SIZE]
                delivered += len(chunk)
                if on_progress is not None:
                    on_progress(delivered)
                yield chunk
    except httpx.HTTPError as exc:
        raise _transfer_failed(exc, url) from exc
    if pending:
        delivered += len(pending)
        if on_progress is not None:
            on_progress(delivered)
        yield bytes(pending)


class _Pace:
    """Refuses a transfer that averages less than ``min_rate`` bytes/s over a window."""

    def __init__(self, min_rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_rate = min_rate
        self.clock = clock
        self.since = clock()
        self.at_start = 0

    def check(self, received: int) -> None:
        if not self.min_rate:
            return
        elapsed = self.clock() - self.since
        if elapsed < RATE_WINDOW:
            return
        if (received - self.at_start) / elapsed < self.min_rate:
            raise UrlRefused(f"the transfer was slower than the minimum of {self.min_rate} bytes/s")
        self.since, self.at_start = self.clock(), received


def _too_large(limits: FetchLimits) -> UrlRefused:
    return UrlRefused(f"the file is larger than the limit of {limits.max_bytes} bytes")


def _transfer_failed(exc: httpx.HTTPError, url: httpx.URL) -> UrlRefused:
    host = _host(url)
    if isinstance(exc, httpx.ConnectTimeout):
        return UrlRefused(f"could not connect to {host}: timed out")
    if isinstance(exc, httpx.TimeoutException):
        return UrlRefused(f"{host} stopped answering for longer than the time limit")
    tls = _tls_error(exc)
    if tls is not None:
        return UrlRefused(f"the secure connection to {host} failed: {tls}")
    if isinstance(exc, httpx.ConnectError):
        return UrlRefused(f"could not connect to {host}: {exc}")
    return UrlRefused(f"the transfer from {host} failed: {str(exc) or type(exc).__name__}")


def _tls_error(exc: BaseException) -> str | None:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return str(cause.verify_message or cause.reason)
        if isinstance(cause, ssl.SSLError):
            return str(cause.reason or cause)
        cause = cause.__cause__ or cause.__context__
    return None


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _content_type(response: httpx.Response) -> str:
    value = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return value or DEFAULT_TYPE


def _filename(response: httpx.Response, url: httpx.URL) -> str:
    """From Content-Disposition (``filename*`` first), else the URL's last path segment."""
    disposition = response.headers.get("content-disposition")
    name = _disposition_filename(disposition) if disposition else None
    return safe_filename(name or url.path.rsplit("/", 1)[-1], fallback="download")


def _disposition_filename(header: str) -> str | None:
    message = email.message.Message()
    message["content-disposition"] = _utf8(header)
    plain: str | None = None
    for key, value in (message.get_params(header="content-disposition") or [])[1:]:
        if key != "filename":
            continue
        if isinstance(value, tuple):  # filename*=charset''percent-encoded
            return email.utils.collapse_rfc2231_value(value) or None
        plain = plain or value or None
    return plain


def _utf8(header: str) -> str:
    """Headers arrive decoded as Latin-1; most servers mean UTF-8 in a plain ``filename``."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return header
