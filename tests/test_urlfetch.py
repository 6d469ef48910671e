"""The URL fetcher against real loopback servers: what it streams, what it refuses, and that a
refused URL never reaches a server."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from satchel.core import urlfetch
from satchel.core.urlfetch import FetchLimits, UrlRefused, classify_address, open_url

MIB = 1024 * 1024
DATA = random.Random(7).randbytes(3 * MIB)
REAL_GETADDRINFO = socket.getaddrinfo
REAL_CREATE_CONNECTION = socket.create_connection


@dataclass
class Server:
    port: int
    hits: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    sni: list[str | None] = field(default_factory=list)
    redirects: dict[str, str] = field(default_factory=dict)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def itself(self) -> frozenset[str]:
        """An allow-list of exactly this server."""
        return frozenset({f"127.0.0.1:{self.port}"})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    record: Server

    def handle(self) -> None:
        # A client that stops reading early resets the connection.
        with contextlib.suppress(ConnectionError):
            super().handle()

    def do_GET(self) -> None:
        self.record.hits.append((self.path, self.headers.get("Host", "")))
        if self.path in self.record.redirects:
            self.send(302, b"", Location=self.record.redirects[self.path])
            return
        try:
            ROUTES.get(self.path, Handler.not_found)(self)
        except OSError:  # the client hung up, as it should on a refused body
            self.close_connection = True

    def send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def not_found(self) -> None:
        self.send(404, b"not found")

    def send_chunked(self, pieces: Iterator[bytes]) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def trickle(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10 * MIB))
        self.end_headers()
        for _ in range(50):
            self.wfile.write(b"x" * 1024)
            self.wfile.flush()
            time.sleep(0.1)

    def stall(self) -> None:
        time.sleep(3)
        self.send(200, b"late")

    def log_message(self, format: str, *args: Any) -> None:
        pass


DISPOSITION = "attachment; filename=\"plain.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
ROUTES: dict[str, Callable[[Handler], None]] = {
    "/file": lambda h: h.send(200, DATA, Content_Type="text/plain; charset=utf-8"),
    "/named": lambda h: h.send(200, b"%PDF", Content_Disposition=DISPOSITION),
    "/docs/annual%20report.txt": lambda h: h.send(200, b"report"),
    "/redirect": lambda h: h.send(302, b"", Location="file"),
    "/redirect-metadata": lambda h: h.send(302, b"", Location="http://169.254.169.254/latest/"),
    "/loop": lambda h: h.send(302, b"", Location="/loop"),
    "/big": lambda h: h.send(200, b"x" * (2 * MIB)),
    "/big-chunked": lambda h: h.send_chunked(b"x" * 64 * 1024 for _ in range(32)),
    "/slow": Handler.trickle,
    "/stall": Handler.stall,
}


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """Starts loopback servers (plain, or TLS with ``context``), stopped after the test."""
    started: list[ThreadingHTTPServer] = []

    def start(context: ssl.SSLContext | None = None) -> Server:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        record = Server(port=httpd.server_address[1])
        httpd.RequestHandlerClass = type("Bound", (Handler,), {"record": record})
        if context is not None:
            context.sni_callback = lambda _sock, name, _ctx: record.sni.append(name)
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        started.append(httpd)
        return record

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def origin(serve: Callable[..., Server]) -> Server:
    return serve()


def fetch_all(url: str, limits: FetchLimits) -> bytes:
    with open_url(url, limits) as fetched:
        return b"".join(fetched.chunks)


def refusal(url: str, limits: FetchLimits) -> str:
    with pytest.raises(UrlRefused) as caught:
        fetch_all(url, limits)
    return caught.value.reason


# Streaming


def test_a_large_file_streams_exactly_in_pieces_of_at_most_a_mebibyte(origin: Server) -> None:
    progress: list[int] = []
    limits = FetchLimits(max_bytes=4 * MIB, allowed_hosts=origin.itself)
    with open_url(origin.url("/file"), limits, progress.append) as fetched:
        assert (fetched.size, fetched.content_type) == (len(DATA), "text/plain")
        assert (fetched.filename, fetched.url) == ("file", origin.url("/file"))
        chunks = list(fetched.chunks)
    assert b"".join(chunks) == DATA
    assert max(len(chunk) for chunk in chunks) <= MIB
    assert progress[-1] == len(DATA)
    assert progress == sorted(progress)
    assert origin.hits == [("/file", f"127.0.0.1:{origin.port}")]


def test_the_file_name_comes_from_content_disposition(origin: Server) -> None:
    with open_url(origin.url("/named"), FetchLimits(0, allowed_hosts=origin.itself)) as fetched:
        assert fetched.filename == "résumé.pdf"
        assert fetched.content_type == "application/octet-stream"


def test_else_from_the_decoded_last_path_segment(origin: Server) -> None:
    url = origin.url("/docs/annual%20report.txt")
    with open_url(url, FetchLimits(0, allowed_hosts=origin.itself)) as fetched:
        assert fetched.filename == "annual report.txt"
        assert b"".join(fetched.chunks) == b"report"


def test_allowed_hosts_match_the_name_without_regard_to_case(
    origin: Server, serve: Callable[..., Server]
) -> None:
    # localhost may also resolve to ::1, where nothing listens: the next address is tried.
    url = origin.url("/named", host="LocalHost")
    limits = FetchLimits(0, allowed_hosts=frozenset({f"localhost:{origin.port}"}))
    assert fetch_all(url, limits) == b"%PDF"
    assert origin.hits == [("/named", f"localhost:{origin.port}")]


# Redirects


def test_a_relative_redirect_is_followed(origin: Server) -> None:
    limits = FetchLimits(max_bytes=0, allowed_hosts=origin.itself)
    with open_url(origin.url("/redirect"), limits) as fetched:
        assert fetched.url == origin.url("/file")
        assert b"".join(fetched.chunks) == DATA


def test_a_redirect_to_another_loopback_port_is_refused_before_connecting(
    origin: Server, serve: Callable[..., Server]
) -> None:
    other = serve()
    origin.redirects["/elsewhere"] = other.url("/file")
    reason = refusal(origin.url("/elsewhere"), FetchLimits(0, allowed_hosts=origin.itself))
    assert reason == "refused: 127.0.0.1 is a loopback address"
    assert other.hits == []


def test_a_redirect_to_the_metadata_service_is_refused(origin: Server) -> None:
    reason = refusal(origin.url("/redirect-metadata"), FetchLimits(0, allowed_hosts=origin.itself))
    assert reason == "refused: 169.254.169.254 is a cloud metadata address"


def test_redirects_are_counted(origin: Server) -> None:
    reason = refusal(origin.url("/loop"), FetchLimits(0, allowed_hosts=origin.itself))
    assert reason == "the server redirected more than 5 times"
    assert len(origin.hits) == 6
    limits = FetchLimits(0, max_redirects=0, allowed_hosts=origin.itself)
    assert refusal(origin.url("/redirect"), limits) == "the server redirected more than 0 times"


@pytest.mark.parametrize("location", ["ftp://example.com/x", "file:///etc/passwd"])
def test_a_redirect_to_another_scheme_is_refused(origin: Server, location: str) -> None:
    origin.redirects["/away"] = location
    reason = refusal(origin.url("/away"), FetchLimits(0, allowed_hosts=origin.itself))
    assert reason == "only http and https URLs can be imported"


# Status, size and time


def test_an_error_status_is_refused(origin: Server) -> None:
    reason = refusal(origin.url("/missing"), FetchLimits(0, allowed_hosts=origin.itself))
    assert reason == "the server answered HTTP 404"


def test_a_declared_size_over_the_limit_is_refused_before_the_body(origin: Server) -> None:
    limits = FetchLimits(max_bytes=MIB, allowed_hosts=origin.itself)
    with pytest.raises(UrlRefused) as caught, open_url(origin.url("/big"), limits):
        pytest.fail("the body must not be offered")
    assert caught.value.reason == f"the file is larger than the limit of {MIB} bytes"


def test_an_undeclared_size_is_refused_once_past_the_limit(origin: Server) -> None:
    limits = FetchLimits(max_bytes=MIB, allowed_hosts=origin.itself)
    sizes: list[int] = []
    with open_url(origin.url("/big-chunked"), limits) as fetched:
        assert fetched.size is None
        with pytest.raises(UrlRefused) as caught:
            sizes.extend(len(chunk) for chunk in fetched.chunks)
    assert caught.value.reason == f"the file is larger than the limit of {MIB} bytes"
    assert sum(sizes) <= MIB


def test_the_whole_transfer_has_a_deadline(origin: Server) -> None:
    started = time.monotonic()
    reason = refusal(origin.url("/slow"), FetchLimits(0, timeout=1, allowed_hosts=origin.itself))
    assert reason == "the transfer took longer than the limit of 1 s"
    assert time.monotonic() - started < 2


def test_a_server_that_does_not_answer_times_out(origin: Server) -> None:
    limits = FetchLimits(0, timeout=1, allowed_hosts=origin.itself)
    assert refusal(origin.url("/stall"), limits) == (
        "127.0.0.1 stopped answering for longer than the time limit"
    )


def test_connection_and_name_failures_are_refusals(serve: Callable[..., Server]) -> None:
    gone = serve()
    limits = FetchLimits(0, timeout=2, allowed_hosts=gone.itself | {"no-such-host.invalid"})
    reason = refusal("http://no-such-host.invalid/", limits)
    assert reason == "the host name no-such-host.invalid could not be resolved"
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    limits = FetchLimits(0, timeout=2, allowed_hosts=frozenset({f"127.0.0.1:{port}"}))
    assert refusal(f"http://127.0.0.1:{port}/", limits).startswith("could not connect to 127.0.0.1")


# Addresses


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("http://127.0.0.1:{port}/file", "refused: 127.0.0.1 is a loopback address"),
        ("http://10.0.0.1/", "refused: 10.0.0.1 is a private address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "refused: 169.254.169.254 is a cloud metadata address",
        ),
        ("http://[fd00:ec2::254]/", "refused: fd00:ec2::254 is a cloud metadata address"),
        ("http://100.64.0.1/", "refused: 100.64.0.1 is a shared (carrier-grade NAT) address"),
        ("http://[::1]:{port}/", "refused: ::1 is a loopback address"),
        ("http://localhost:{port}/", "is a loopback address"),
        ("http://[::ffff:127.0.0.1]:{port}/", "refused: ::ffff:7f00:1 is a loopback address"),
        ("http://0.0.0.0:{port}/", "refused: 0.0.0.0 is an unspecified address"),
        ("http://2130706433:{port}/", "refused: 127.0.0.1 is a loopback address"),
        ("http://0x7f.1:{port}/", "refused: 127.0.0.1 is a loopback address"),
        ("ftp://example.com/x", "only http and https URLs can be imported"),
        ("http://user:pw@127.0.0.1:{port}/", "URLs with a user name or password are not accepted"),
        ("http://exa mple.com/", "the URL has no valid host name"),
        ("http:///file", "the URL has no valid host name"),
        ("not a url", "only http and https URLs can be imported"),
    ],
)
def test_refused_urls_never_reach_the_server(origin: Server, template: str, reason: str) -> None:
    url = template.format(port=origin.port)
    assert reason in refusal(url, FetchLimits(max_bytes=0, timeout=2))
    assert origin.hits == []


def test_an_allowed_address_is_allowed_for_its_host_name_only(origin: Server) -> None:
    limits = FetchLimits(0, allowed_hosts=origin.itself)
    assert "loopback" in refusal(origin.url("/file", host="localhost"), limits)
    assert origin.hits == []


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("93.184.216.34", None),
        ("8.8.8.8", None),
        ("2606:4700::1", None),
        ("2a00:1450:4001::200e", None),
        ("::ffff:93.184.216.34", None),
        ("64:ff9b::808:808", None),  # 8.8.8.8 through NAT64
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:10.1.2.3", "a private address"),
        ("2002:7f00:1::", "a loopback address"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", "a private address"),  # 10.0.0.1 through NAT64
        ("0.0.0.0", "an unspecified address"),  # noqa: S104 (classified, never bound)
        ("::", "an unspecified address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("100.127.255.254", "a shared (carrier-grade NAT) address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("fec0::1", "a site-local address"),
        ("::7f00:1", "a reserved address"),  # IPv4-compatible, deprecated
        ("0.1.2.3", "not a public address"),
        ("192.0.2.1", "not a public address"),
        ("198.18.0.1", "not a public address"),
        ("2001:db8::1", "not a public address"),
    ],
)
def test_address_classifier(address: str, problem: str | None) -> None:
    assert classify_address(ipaddress.ip_address(address)) == problem


def test_the_connection_goes_to_the_address_that_was_checked(
    origin: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolves to a public address once and to loopback afterwards (DNS
    rebinding) is looked up once, and the connection goes to the public address."""
    lookups: list[str] = []
    connections: list[tuple[str, int]] = []

    def rebinding(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        lookups.append(host)
        address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    def recording(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connections.append(address)
        return REAL_CREATE_CONNECTION(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(socket, "create_connection", recording)
    url = origin.url("/file", host="rebind.test")
    # Whatever answers at the public address (nothing, or a sandbox's network) does not matter.
    with contextlib.suppress(UrlRefused):
        fetch_all(url, FetchLimits(max_bytes=0, timeout=2))
    assert lookups == ["rebind.test"]
    assert connections == [("93.184.216.34", origin.port)]
    assert origin.hits == []


# TLS


def certificate_for(name: str, directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(
    serve: Callable[..., Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Server:
    """An HTTPS server on 127.0.0.1 with a certificate for files.test, which the fetcher
    trusts; files.test and wrong.test both resolve to it."""
    cert, key = certificate_for("files.test", tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setattr(urlfetch, "_tls_context", lambda: ssl.create_default_context(cafile=cert))

    def local(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        name = "127.0.0.1" if host in {"files.test", "wrong.test"} else host
        return REAL_GETADDRINFO(name, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local)
    return serve(context)


def test_https_verifies_the_certificate_for_the_host_name(tls_server: Server) -> None:
    url = f"https://files.test:{tls_server.port}/named"
    limits = FetchLimits(0, allowed_hosts=frozenset({"files.test"}))
    assert fetch_all(url, limits) == b"%PDF"
    assert tls_server.sni == ["files.test"]
    assert tls_server.hits == [("/named", f"files.test:{tls_server.port}")]


def test_https_refuses_a_certificate_for_another_name(tls_server: Server) -> None:
    url = f"https://wrong.test:{tls_server.port}/named"
    reason = refusal(url, FetchLimits(0, allowed_hosts=frozenset({"wrong.test"})))
    assert reason.startswith("the secure connection to wrong.test failed: ")
    assert "wrong.test" in reason
    assert tls_server.hits == []
