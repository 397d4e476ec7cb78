"""The SSRF guard of ``fetch()`` against real listeners on this machine.

Every listener counts the connections it accepts, so "refused" means both: the fetcher
answered an error AND nothing reached the server (``Listener.untouched()`` proves the
latter with a probe request: connections are accepted in order, so once the probe is
served any earlier connection has been counted). Addresses that have no listener here
(private, link-local, ...) are answered by a test resolver and sent through a client that
records every request it would make: the guard must refuse before that.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import http.server
import json
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from neosl.config import load_settings, new_key
from neosl.functions.fetching import (
    MAX_BODY_BYTES,
    MAX_HEADERS_BYTES,
    MAX_URL_BYTES,
    FetchRequest,
    FetchResponse,
)
from neosl.functions.netguard import Fetcher, is_refused

REFUSED = "destination address is not allowed"

# ---------------------------------------------------------------------------------------
# Listeners


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # twenty fetches connect at once
    connections = 0
    seen: list[Seen]

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the fetcher hangs up on bodies past the limit: expected, not worth a traceback


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes: /echo, /length, /bytes?n=&chunked=, /gzip?n=, /deflate?n=, /sleep?s=,
    /redirect?to=&status=, /loop, /cookie. Everything else echoes."""

    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(Seen(self.command, self.path, list(self.headers.items()), body))
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route = parts.path
        if route == "/redirect":
            self.send_response(int(query.get("status", "302")))
            self.send_header("Location", query["to"])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif route == "/bytes":
            n = int(query["n"])
            if query.get("chunked"):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()  # HTTP/1.0: the body ends when the connection closes
                for start in range(0, n, 65536):
                    self.wfile.write(b"a" * min(65536, n - start))
            else:
                self._reply(b"a" * n, "text/plain")
        elif route in ("/gzip", "/deflate"):
            plain = b"0" * int(query["n"])
            packed = gzip.compress(plain) if route == "/gzip" else zlib.compress(plain)
            self.send_response(200)
            self.send_header("Content-Encoding", route[1:])
            self.send_header("Content-Length", str(len(packed)))
            self.end_headers()
            self.wfile.write(packed)
        elif route == "/length":
            self._reply(str(len(body)).encode(), "text/plain")
        elif route == "/cookie":
            self.send_response(200)
            self.send_header("Set-Cookie", "session=secret; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            if route == "/sleep":
                time.sleep(float(query["s"]))
            echo = {
                "method": self.command,
                "path": self.path,
                "headers": list(self.headers.items()),
                "body": body.decode("utf-8", "replace"),
            }
            self._reply(json.dumps(echo).encode(), "application/json")

    def _reply(self, data: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class Listener:
    """A real HTTP(S) server on a local address that records what reaches it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None):
        cls = _Server6 if ":" in host else _Server
        self.server = cls((host, port), _Handler)
        self.server.seen = []
        self.tls = tls
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.host = host
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def seen(self) -> list[Seen]:
        return self.server.seen

    @property
    def connections(self) -> int:
        return self.server.connections

    def untouched(self) -> bool:
        """True if nothing but our own probe ever connected."""
        host = self.host.strip("[]")
        conn: http.client.HTTPConnection
        if self.tls is None:
            conn = http.client.HTTPConnection(host, self.port, timeout=5)
        else:
            probe = ssl.create_default_context()
            probe.check_hostname = False
            probe.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(host, self.port, timeout=5, context=probe)
        conn.request("GET", "/__probe")
        conn.getresponse().read()
        conn.close()
        return self.connections == 1 and [s.path for s in self.seen] == ["/__probe"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def other() -> Iterator[Listener]:
    server = Listener("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def listener6() -> Iterator[Listener]:
    try:
        server = Listener("::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    yield server
    server.close()


class RawServer:
    """A TCP listener whose connections are served by ``serve(conn)`` in their own thread."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._serve = serve
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._open.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self._serve(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self._open:
            conn.close()


# ---------------------------------------------------------------------------------------
# Resolvers and a recording client


@dataclass
class Dns:
    """A resolver answering from a table; a list of answers is used one call after another."""

    answers: Mapping[str, list[str] | list[list[str]]]
    calls: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        answer = self.answers[host]
        if answer and isinstance(answer[0], list):
            return answer[min(self.calls.count(host), len(answer)) - 1]
        return [a for a in answer if isinstance(a, str)]


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"an address literal must not be resolved ({host})")


class Recorder:
    """An httpx client that records the requests the guard lets through, sending none."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.client = httpx.Client(transport=httpx.MockTransport(self._handle))

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, stream=httpx.ByteStream(b"recorded"))


def fetch(fetcher: Fetcher, url: str, **kwargs: Any) -> FetchResponse:
    return fetcher(FetchRequest(url, **kwargs))


def echo(response: FetchResponse) -> dict[str, Any]:
    assert response.error is None, response.error
    assert response.status == 200
    return cast(dict[str, Any], json.loads(response.body))


def echoed_header(response: FetchResponse, name: str) -> str | None:
    values = [v for k, v in echo(response)["headers"] if k.lower() == name.lower()]
    return values[0] if values else None


# ---------------------------------------------------------------------------------------
# Loopback in every spelling, against a real listener


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:{port}/",
        "https://127.0.0.1:{port}/",
        "http://127.0.0.1.:{port}/",
        "http://127.1:{port}/",
        "http://2130706433:{port}/",
        "http://0x7f000001:{port}/",
        "http://0x7f.1:{port}/",
        "http://0X7F.0.0.1:{port}/",
        "http://0177.0.0.1:{port}/",
        "http://0177.1:{port}/",
        "http://127.000.000.001:{port}/",
        "http://0:{port}/",
        "http://0.0.0.0:{port}/",
        "http://localhost:{port}/",
        "http://LocalHost.:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://[::ffff:7f00:1]:{port}/",
        "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/",
        "http://[::127.0.0.1]:{port}/",
        "http://[::ffff:0:127.0.0.1]:{port}/",
        "http://[64:ff9b::127.0.0.1]:{port}/",
        "http://[2002:7f00:1::1]:{port}/",
    ],
)
def test_loopback_is_refused_in_every_spelling(listener: Listener, template: str) -> None:
    response = fetch(Fetcher(), template.format(port=listener.port))
    assert response.error == REFUSED
    assert response.status == 0
    assert listener.untouched()


@pytest.mark.parametrize(
    "template",
    [
        "http://[::1]:{port}/",
        "http://[0:0:0:0:0:0:0:1]:{port}/",
        "http://[::]:{port}/",
        "http://localhost:{port}/",
    ],
)
def test_ipv6_loopback_is_refused(listener6: Listener, template: str) -> None:
    response = fetch(Fetcher(), template.format(port=listener6.port))
    assert response.error == REFUSED
    assert listener6.untouched()


@pytest.mark.parametrize(
    "answer",
    [["127.0.0.1"], ["::ffff:127.0.0.1"], ["93.184.216.34", "127.0.0.1"], ["127.0.0.1", "::1"]],
)
def test_a_name_resolving_to_loopback_is_refused(listener: Listener, answer: list[str]) -> None:
    dns = Dns({"innocent.example": answer})
    response = fetch(Fetcher(resolve=dns), f"http://innocent.example:{listener.port}/")
    assert response.error == REFUSED
    assert dns.calls == ["innocent.example"]
    assert listener.untouched()


# ---------------------------------------------------------------------------------------
# Every other refused category: refused before any request is made


REFUSED_ADDRESSES = [
    # private (RFC 1918)
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    # link-local and cloud metadata
    "169.254.169.254",
    "169.254.0.1",
    "fe80::1",
    "fe80::a9fe:a9fe",
    "fd00:ec2::254",  # AWS metadata over IPv6 (unique local)
    # carrier-grade NAT
    "100.64.0.1",
    "100.127.255.254",
    # loopback beyond 127.0.0.1
    "127.255.255.254",
    # multicast
    "224.0.0.1",
    "239.255.255.250",
    "ff02::1",
    "ff05::1:3",
    # unspecified, "this network", broadcast, reserved
    "0.0.0.0",  # noqa: S104
    "0.1.2.3",
    "255.255.255.255",
    "240.0.0.1",
    "::",
    "192.0.0.1",
    "198.18.0.1",
    "100::1",
    "2001::1",  # Teredo
    # documentation
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.9",
    "2001:db8::1",
    "3fff::1",
    # IPv6 private, site-local, loopback
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "::1",
    # refused IPv4 inside IPv6: mapped, compatible, NAT64, 6to4
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:a9fe:a9fe",
    "::ffff:100.64.0.1",
    "::10.0.0.1",
    "::169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::10.0.0.1",
    "64:ff9b::192.168.0.1",
    "64:ff9b:1::a00:1",
    "2002:a9fe:a9fe::1",
    "2002:a00:1::",
    "2002:c0a8:101::1",
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_a_name_resolving_to_a_refused_address_is_refused_before_connecting(
    address: str,
) -> None:
    dns = Dns({"internal.example": [address]})
    recorder = Recorder()
    for scheme in ("http", "https"):
        response = fetch(
            Fetcher(resolve=dns, client=recorder.client), f"{scheme}://internal.example/x"
        )
        assert response.error == REFUSED
    assert recorder.requests == []


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_a_refused_address_literal_is_refused_before_connecting(address: str) -> None:
    recorder = Recorder()
    host = f"[{address}]" if ":" in address else address
    response = fetch(Fetcher(resolve=no_dns, client=recorder.client), f"http://{host}:8080/")
    assert response.error == REFUSED
    assert recorder.requests == []


def test_scoped_ipv6_and_a_mixed_answer_are_refused() -> None:
    recorder = Recorder()
    fetcher = Fetcher(
        allow=("fe80::/10",),
        resolve=Dns({"mixed.example": ["93.184.216.34", "10.1.2.3"]}),
        client=recorder.client,
    )
    assert fetch(fetcher, "http://[fe80::1%25eth0]/").error in (REFUSED, "invalid URL")
    assert fetch(fetcher, "http://mixed.example/").error == REFUSED
    assert recorder.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://1.2.3.4.5/",
        "http://08.0.0.1/",
        "http://4294967296/",
        "http://example.0x7f/",
        "http://127.0.0.1%2f/",
        "http://exa mple.com/",
        "http://[::1/",
        "http://example.com:99999/",
    ],
)
def test_malformed_hosts_are_refused(url: str) -> None:
    recorder = Recorder()
    response = fetch(Fetcher(resolve=no_dns, client=recorder.client), url)
    assert response.error == "invalid URL"
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("answer", "connected"),
    [
        ("93.184.216.34", "93.184.216.34"),
        ("2606:4700:4700::1111", "[2606:4700:4700::1111]"),
        ("::ffff:93.184.216.34", "[::ffff:93.184.216.34]"),
        ("64:ff9b::93.184.216.34", "[64:ff9b::5db8:d822]"),
    ],
)
def test_public_addresses_pass_and_the_checked_address_is_what_is_connected(
    answer: str, connected: str
) -> None:
    recorder = Recorder()
    dns = Dns({"public.example": [answer]})
    fetcher = Fetcher(resolve=dns, client=recorder.client)
    response = fetch(fetcher, "https://Public.Example/p?q=1#frag", headers={"Host": "evil"})
    assert response.error is None
    assert (response.status, response.body) == (200, "recorded")
    assert response.url == "https://public.example/p?q=1"
    (sent,) = recorder.requests
    assert str(sent.url) == f"https://{connected}/p?q=1"
    assert sent.headers["host"] == "public.example"
    assert sent.extensions["sni_hostname"] == "public.example"
    assert dns.calls == ["public.example"]


def test_numeric_spellings_are_read_like_the_system_resolver() -> None:
    recorder = Recorder()
    fetcher = Fetcher(resolve=no_dns, client=recorder.client)
    assert fetch(fetcher, "http://0010.0.0.1:81/").status == 200  # octal: 8.0.0.1
    assert fetch(fetcher, "http://134744072/").status == 200  # 8.8.8.8
    assert [str(r.url) for r in recorder.requests] == ["http://8.0.0.1:81/", "http://8.8.8.8/"]
    assert [r.headers["host"] for r in recorder.requests] == ["8.0.0.1:81", "8.8.8.8"]


def test_the_refusal_list_matches_the_categories() -> None:
    from ipaddress import ip_address

    assert all(is_refused(ip_address(a)) for a in REFUSED_ADDRESSES)
    public = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
    assert not any(is_refused(ip_address(a)) for a in public)


# ---------------------------------------------------------------------------------------
# The allowlist


def test_an_allowlisted_name_is_reached_with_headers(listener: Listener) -> None:
    dns = Dns({"svc.test": ["127.0.0.1"]})
    fetcher = Fetcher(allow=("svc.test",), resolve=dns)
    response = fetch(
        fetcher,
        f"http://svc.test:{listener.port}/echo?a=1",
        headers={"X-Trace": "abc", "Authorization": "Bearer t", "Host": "evil.test"},
    )
    seen = echo(response)
    assert seen["method"] == "GET"
    assert seen["path"] == "/echo?a=1"
    assert echoed_header(response, "X-Trace") == "abc"
    assert echoed_header(response, "Authorization") == "Bearer t"
    assert echoed_header(response, "Host") == f"svc.test:{listener.port}"
    assert response.url == f"http://svc.test:{listener.port}/echo?a=1"
    assert response.headers["content-type"] == "application/json"
    # The name opens the name, not the address it resolves to.
    assert fetch(fetcher, f"http://127.0.0.1:{listener.port}/").error == REFUSED
    assert len(listener.seen) == 1


def test_an_allowlisted_network_is_reached_with_a_body(listener: Listener) -> None:
    fetcher = Fetcher(allow=("127.0.0.0/8",))
    response = fetch(fetcher, f"http://127.0.0.1:{listener.port}/echo", method="post", body="héllo")
    seen = echo(response)
    assert (seen["method"], seen["body"]) == ("POST", "héllo")
    assert echoed_header(response, "Content-Type") == "text/plain;charset=UTF-8"
    assert echoed_header(response, "Connection") == "close"
    # Addresses are matched after normalising, so any spelling of an allowed one works.
    assert echo(fetch(fetcher, f"http://0x7f.1:{listener.port}/echo"))["method"] == "GET"


def test_an_allowlisted_address_and_ipv6_network(listener: Listener, listener6: Listener) -> None:
    assert echo(fetch(Fetcher(allow=("127.0.0.1",)), f"http://127.1:{listener.port}/echo"))
    fetcher = Fetcher(allow=("[::1]",))
    assert echo(fetch(fetcher, f"http://[::1]:{listener6.port}/echo"))["method"] == "GET"
    assert fetch(fetcher, f"http://127.0.0.1:{listener.port}/").error == REFUSED


def test_allowlisted_localhost_with_the_system_resolver(listener: Listener) -> None:
    # localhost may resolve to ::1 first, where nothing listens: the next checked address
    # is tried.
    response = fetch(Fetcher(allow=("localhost",)), f"http://localhost:{listener.port}/echo")
    assert echoed_header(response, "Host") == f"localhost:{listener.port}"


def test_from_settings_reads_the_allowlist_and_timeout(listener: Listener) -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://u@db.example:5432/neosl",
            "REDIS_URL": "redis://cache.example:6379/0",
            "NEO_RPC_URL": "http://neo.example:10332",
            "NSL_SECRET_KEY": new_key(),
            "NSL_SECRETS_KEY": new_key(),
            "NSL_FETCH_ALLOW": "127.0.0.1/32",
            "NSL_FETCH_TIMEOUT_MS": "2000",
        }
    )
    with Fetcher.from_settings(settings) as fetcher:
        assert echo(fetch(fetcher, f"http://127.0.0.1:{listener.port}/echo"))


# ---------------------------------------------------------------------------------------
# Redirects


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("http://127.0.0.1:{other}/echo", REFUSED),
        ("http://localhost:{other}/echo", REFUSED),
        ("http://0x7f.1:{other}/echo", REFUSED),
        ("http://2130706433:{other}/echo", REFUSED),
        ("http://[::ffff:127.0.0.1]:{other}/echo", REFUSED),
        ("http://private.test:{other}/echo", REFUSED),
        ("http://user:pw@svc.test:{other}/echo", "credentials"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://127.0.0.1:{other}/_GET", "only http and https"),
        ("ftp://svc.test:{other}/", "only http and https"),
    ],
)
def test_a_redirect_out_of_the_allowlist_is_refused(
    listener: Listener, other: Listener, target: str, error: str
) -> None:
    dns = Dns({"svc.test": ["127.0.0.1"], "localhost": ["127.0.0.1"], "private.test": ["10.0.0.1"]})
    fetcher = Fetcher(allow=("svc.test",), resolve=dns)
    to = target.format(other=other.port)
    response = fetch(fetcher, f"http://svc.test:{listener.port}/redirect?to={to}")
    assert response.error is not None
    assert error in response.error
    assert response.status == 0
    assert [s.path.split("?")[0] for s in listener.seen] == ["/redirect"]
    assert other.untouched()


@pytest.mark.parametrize(
    ("status", "method", "then", "body_kept"),
    [
        (301, "POST", "GET", False),
        (302, "POST", "GET", False),
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (302, "PUT", "PUT", True),
        (307, "POST", "POST", True),
        (308, "PATCH", "PATCH", True),
    ],
)
def test_redirects_within_the_allowlist_follow_fetch_semantics(
    listener: Listener, status: int, method: str, then: str, body_kept: bool
) -> None:
    fetcher = Fetcher(allow=("127.0.0.1",))
    base = f"http://127.0.0.1:{listener.port}"
    response = fetch(
        fetcher,
        f"{base}/redirect?status={status}&to=/echo",
        method=method,
        body="payload",
        headers={"Content-Type": "application/x-test"},
    )
    seen = echo(response)
    assert seen["method"] == then
    assert seen["body"] == ("payload" if body_kept else "")
    assert echoed_header(response, "Content-Type") == ("application/x-test" if body_kept else None)
    assert response.url == f"{base}/echo"


def test_credentials_are_not_sent_to_another_origin(listener: Listener, other: Listener) -> None:
    dns = Dns({"a.test": ["127.0.0.1"], "b.test": ["127.0.0.1"]})
    fetcher = Fetcher(allow=("a.test", "b.test"), resolve=dns)
    headers = {"Authorization": "Bearer t", "Cookie": "c=1", "X-Other": "kept"}
    same = fetch(fetcher, f"http://a.test:{listener.port}/redirect?to=/echo", headers=headers)
    assert echoed_header(same, "Authorization") == "Bearer t"
    to = f"http://b.test:{other.port}/echo"
    cross = fetch(fetcher, f"http://a.test:{listener.port}/redirect?to={to}", headers=headers)
    assert echoed_header(cross, "Authorization") is None
    assert echoed_header(cross, "Cookie") is None
    assert echoed_header(cross, "X-Other") == "kept"
    assert echoed_header(cross, "Host") == f"b.test:{other.port}"


def test_too_many_redirects(listener: Listener) -> None:
    fetcher = Fetcher(allow=("127.0.0.1",), max_redirects=3)
    response = fetch(fetcher, f"http://127.0.0.1:{listener.port}/loop")
    assert response.error == "too many redirects"
    assert len(listener.seen) == 4


# ---------------------------------------------------------------------------------------
# DNS rebinding: the address checked is the address connected to


@pytest.fixture
def decoy_pair() -> Iterator[tuple[Listener, Listener]]:
    """A listener on 127.0.0.2 and one on 127.0.0.1, on the same port."""
    for _ in range(20):
        allowed = Listener("127.0.0.2")
        try:
            loopback = Listener("127.0.0.1", allowed.port)
        except OSError:
            allowed.close()
            continue
        yield allowed, loopback
        allowed.close()
        loopback.close()
        return
    pytest.skip("no free port on both 127.0.0.1 and 127.0.0.2")


def test_a_rebinding_name_never_reaches_the_second_answer(
    decoy_pair: tuple[Listener, Listener],
) -> None:
    allowed, loopback = decoy_pair
    dns = Dns({"rebind.test": [["127.0.0.2"], ["127.0.0.1"]]})
    fetcher = Fetcher(allow=("127.0.0.2/32",), resolve=dns)
    response = fetch(fetcher, f"http://rebind.test:{allowed.port}/echo")
    assert echoed_header(response, "Host") == f"rebind.test:{allowed.port}"
    assert dns.calls == ["rebind.test"]
    # The next lookup rebinds to loopback: checked again, refused.
    assert fetch(fetcher, f"http://rebind.test:{allowed.port}/echo").error == REFUSED
    assert [s.path for s in allowed.seen] == ["/echo"]
    assert loopback.untouched()


def test_a_rebinding_name_is_checked_again_on_every_redirect(
    decoy_pair: tuple[Listener, Listener],
) -> None:
    allowed, loopback = decoy_pair
    dns = Dns({"rebind.test": [["127.0.0.2"], ["127.0.0.1"]]})
    fetcher = Fetcher(allow=("127.0.0.2/32",), resolve=dns)
    response = fetch(fetcher, f"http://rebind.test:{allowed.port}/redirect?to=/echo")
    assert response.error == REFUSED
    assert dns.calls == ["rebind.test", "rebind.test"]
    assert loopback.untouched()


def test_an_allowlisted_rebinding_name_connects_where_it_resolved_once(
    decoy_pair: tuple[Listener, Listener],
) -> None:
    allowed, loopback = decoy_pair
    # Both answers would be allowed here; only the one resolved is used.
    dns = Dns({"rebind.test": [["127.0.0.2"], ["127.0.0.1"]]})
    fetcher = Fetcher(allow=("rebind.test",), resolve=dns)
    assert echo(fetch(fetcher, f"http://rebind.test:{allowed.port}/echo"))
    assert dns.calls == ["rebind.test"]
    assert loopback.untouched()


def test_a_client_that_does_not_reach_the_checked_address_is_refused(
    listener: Listener, other: Listener
) -> None:
    # A proxy in the client would connect somewhere else; the peer check catches it.
    client = httpx.Client(proxy=f"http://127.0.0.1:{other.port}")
    fetcher = Fetcher(allow=("127.0.0.1",), client=client)
    response = fetch(fetcher, f"http://127.0.0.1:{listener.port}/echo")
    assert response.error == "could not connect"
    assert other.seen == []
    assert listener.untouched()


# ---------------------------------------------------------------------------------------
# Timeouts


def _silent(conn: socket.socket) -> None:
    time.sleep(10)


def _drip_headers(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(200):
        conn.sendall(b"a")
        time.sleep(0.05)


def _drip_body(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(200):
        conn.sendall(b"a")
        time.sleep(0.05)


@pytest.mark.parametrize("serve", [_silent, _drip_headers, _drip_body])
def test_the_timeout_covers_the_whole_exchange(serve: Callable[[socket.socket], None]) -> None:
    server = RawServer(serve)
    try:
        fetcher = Fetcher(allow=("127.0.0.1",), timeout=0.6)
        started = time.monotonic()
        response = fetch(fetcher, f"http://127.0.0.1:{server.port}/")
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert response.error == "timed out"
    assert 0.5 < elapsed < 1.2


def test_the_timeout_covers_a_slow_resolver() -> None:
    def slow(host: str, port: int) -> list[str]:
        time.sleep(3)
        return ["93.184.216.34"]

    started = time.monotonic()
    response = fetch(Fetcher(resolve=slow, timeout=0.5), "http://slow.example/")
    assert response.error == "timed out"
    assert time.monotonic() - started < 1.0


# ---------------------------------------------------------------------------------------
# Body limits


def test_request_bodies_up_to_the_limit(listener: Listener) -> None:
    fetcher = Fetcher(allow=("127.0.0.1",))
    url = f"http://127.0.0.1:{listener.port}/length"
    response = fetch(fetcher, url, method="POST", body="a" * MAX_BODY_BYTES)
    assert (response.error, response.body) == (None, str(MAX_BODY_BYTES))
    too_big = fetch(fetcher, url, method="POST", body="a" * (MAX_BODY_BYTES + 1))
    assert too_big.error == "request body larger than 2 MB"
    # The limit counts UTF-8 bytes, not characters.
    wide = fetch(fetcher, url, method="PUT", body="é" * (MAX_BODY_BYTES // 2 + 1))
    assert wide.error == "request body larger than 2 MB"
    assert len(listener.seen) == 1


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (f"/bytes?n={MAX_BODY_BYTES}", None),
        (f"/bytes?n={MAX_BODY_BYTES}&chunked=1", None),
        (f"/bytes?n={MAX_BODY_BYTES + 1}", "response body larger than 2 MB"),
        (f"/bytes?n={MAX_BODY_BYTES + 1}&chunked=1", "response body larger than 2 MB"),
        (f"/bytes?n={8 * MAX_BODY_BYTES}&chunked=1", "response body larger than 2 MB"),
        ("/gzip?n=100", None),
        ("/deflate?n=100", None),
        (f"/gzip?n={10 * MAX_BODY_BYTES}", "response body larger than 2 MB"),
        (f"/deflate?n={MAX_BODY_BYTES + 1}", "response body larger than 2 MB"),
    ],
)
def test_response_bodies_up_to_the_limit(listener: Listener, path: str, error: str | None) -> None:
    response = fetch(Fetcher(allow=("127.0.0.1",)), f"http://127.0.0.1:{listener.port}{path}")
    assert response.error == error
    if error is None:
        assert response.status == 200
        assert len(response.body) in (MAX_BODY_BYTES, 100)
    else:
        assert (response.status, response.body) == (0, "")


def test_a_smaller_body_limit(listener: Listener) -> None:
    fetcher = Fetcher(allow=("127.0.0.1",), max_body_bytes=1000)
    response = fetch(fetcher, f"http://127.0.0.1:{listener.port}/bytes?n=1001")
    assert response.error == "response body larger than 1000 bytes"


def test_the_body_is_text_with_replacement(listener: Listener) -> None:
    fetcher = Fetcher(allow=("127.0.0.1",))
    response = fetch(
        fetcher, f"http://127.0.0.1:{listener.port}/echo", method="POST", body="ok \udcff"
    )
    assert echo(response)["body"] == "ok ?"


# ---------------------------------------------------------------------------------------
# Schemes, credentials, methods and headers


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("file:///etc/passwd", "only http and https URLs are allowed"),
        ("file://127.0.0.1:{port}/etc/passwd", "only http and https URLs are allowed"),
        ("ftp://127.0.0.1:{port}/", "only http and https URLs are allowed"),
        ("gopher://127.0.0.1:{port}/_GET%20/", "only http and https URLs are allowed"),
        ("ws://127.0.0.1:{port}/", "only http and https URLs are allowed"),
        ("data:text/plain,hello", "only http and https URLs are allowed"),
        ("javascript:fetch('http://127.0.0.1:{port}/')", "only http and https URLs are allowed"),
        ("//127.0.0.1:{port}/", "invalid URL"),
        ("127.0.0.1:{port}/", "invalid URL"),
        ("http:127.0.0.1:{port}/", "invalid URL"),
        ("http:/127.0.0.1:{port}/", "invalid URL"),
        ("http://", "invalid URL"),
        ("", "invalid URL"),
        ("http://127.0.0.1:{port}\\@evil.test/", "invalid URL"),
        ("http://127.0.0.1:{port}/\r\nX-Injected: 1", "invalid URL"),
        ("http://user:pw@127.0.0.1:{port}/", "credentials"),
        ("http://user@127.0.0.1:{port}/", "credentials"),
        ("http://@127.0.0.1:{port}/", "credentials"),
        ("http://evil.test@127.0.0.1:{port}/", "credentials"),
    ],
)
def test_only_plain_http_urls(listener: Listener, template: str, error: str) -> None:
    # The address is allowlisted: only the URL check stands between the request and it.
    fetcher = Fetcher(allow=("127.0.0.1",), resolve=no_dns)
    response = fetch(fetcher, template.format(port=listener.port))
    assert response.error is not None
    assert error in response.error
    assert listener.untouched()


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "TRACK", "PROPFIND", "G ET", "", "GET\r\n"])
def test_other_methods_are_refused(listener: Listener, method: str) -> None:
    response = fetch(
        Fetcher(allow=("127.0.0.1",)), f"http://127.0.0.1:{listener.port}/", method=method
    )
    assert response.error is not None
    assert response.error.startswith("method not allowed")
    assert listener.untouched()


@pytest.mark.parametrize("method", ["GET", "post", "Put", "PATCH", "delete", "OPTIONS", "HEAD"])
def test_the_allowed_methods(listener: Listener, method: str) -> None:
    response = fetch(
        Fetcher(allow=("127.0.0.1",)), f"http://127.0.0.1:{listener.port}/echo", method=method
    )
    assert (response.error, response.status) == (None, 200)
    if method == "HEAD":
        assert response.body == ""
    else:
        assert echo(response)["method"] == method.upper()


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        ({"X-Number": 1}, None, "header names and values must be strings"),
        ({1: "one"}, None, "header names and values must be strings"),
        ([("X-A", "b")], None, "headers must be an object of strings"),
        ({"Bad Name": "x"}, None, "invalid header name"),
        ({"X:Y": "x"}, None, "invalid header name"),
        ({"": "x"}, None, "invalid header name"),
        ({"X-A": "a\r\nX-Injected: 1"}, None, "invalid value for header X-A"),
        ({"X-A": "a\nb"}, None, "invalid value for header X-A"),
        ({"X-A": "a\0b"}, None, "invalid value for header X-A"),
        ({"X-A": "€"}, None, "invalid value for header X-A"),
        ({f"X-{i}": "v" * 1000 for i in range(70)}, None, "request headers too large"),
        ({}, "a body", "a GET request cannot have a body"),
        ({}, b"bytes", "body must be a string"),
    ],
)
def test_bad_headers_and_bodies_are_refused(
    listener: Listener, headers: Any, body: Any, error: str
) -> None:
    request = FetchRequest(f"http://127.0.0.1:{listener.port}/", headers=headers, body=body)
    response = Fetcher(allow=("127.0.0.1",))(request)
    assert response.error == error
    assert listener.untouched()


def test_the_sandbox_bounds_on_url_and_headers_hold_for_every_caller(listener: Listener) -> None:
    # The same bounds as the sandbox's, for callers that do not go through it (price sources).
    base = f"http://127.0.0.1:{listener.port}/echo?"
    fetcher = Fetcher(allow=("127.0.0.1",))
    query = "q" * (MAX_URL_BYTES - len(base))
    assert echo(fetch(fetcher, base + query))["path"] == "/echo?" + query
    longest = base + query
    assert fetch(fetcher, longest + "q").error == "URL too long"
    # UTF-8 bytes, not characters.
    assert fetch(fetcher, base + "é" * (MAX_URL_BYTES // 2)).error == "URL too long"
    # Each header counts its name, its value and 4 bytes (": " and the line end).
    largest = {"X-A": "v" * (MAX_HEADERS_BYTES - len("X-A") - 4)}
    assert echoed_header(fetch(fetcher, base, headers=largest), "X-A") == largest["X-A"]
    larger = {"X-A": largest["X-A"] + "v"}
    assert fetch(fetcher, base, headers=larger).error == "request headers too large"
    seen = len(listener.server.seen)
    assert fetch(fetcher, base + "q" * MAX_URL_BYTES).error == "URL too long"
    assert len(listener.server.seen) == seen


def test_a_url_that_is_not_a_string_is_refused() -> None:
    response = Fetcher()(FetchRequest(cast(str, None)))
    assert response.error == "invalid URL"


def test_headers_fetch_controls_are_replaced(listener: Listener) -> None:
    response = fetch(
        Fetcher(allow=("127.0.0.1",)),
        f"http://127.0.0.1:{listener.port}/echo",
        method="POST",
        body="abc",
        headers={
            "Host": "evil.test",
            "Connection": "keep-alive",
            "Content-Length": "1",
            "Transfer-Encoding": "chunked",
            "Accept-Encoding": "br",
            "Proxy-Authorization": "Basic x",
            "User-Agent": "tenant/1.0",
            "X-Tab": "\tpadded ",
        },
    )
    assert echo(response)["body"] == "abc"
    assert echoed_header(response, "Host") == f"127.0.0.1:{listener.port}"
    assert echoed_header(response, "Connection") == "close"
    assert echoed_header(response, "Content-Length") == "3"
    assert echoed_header(response, "Transfer-Encoding") is None
    assert echoed_header(response, "Accept-Encoding") == "gzip, deflate"
    assert echoed_header(response, "Proxy-Authorization") is None
    assert echoed_header(response, "User-Agent") == "tenant/1.0"
    assert echoed_header(response, "X-Tab") == "padded"


def test_cookies_are_never_kept(listener: Listener) -> None:
    fetcher = Fetcher(allow=("127.0.0.1",))
    base = f"http://127.0.0.1:{listener.port}"
    first = fetch(fetcher, f"{base}/cookie")
    assert first.headers["set-cookie"].startswith("session=secret")
    assert echoed_header(fetch(fetcher, f"{base}/echo"), "Cookie") is None


# ---------------------------------------------------------------------------------------
# Concurrency


def test_one_fetcher_serves_twenty_threads_at_once(listener: Listener) -> None:
    fetcher = Fetcher(allow=("127.0.0.1",), timeout=5)
    results: dict[int, FetchResponse] = {}
    start = threading.Barrier(20)

    def run(n: int) -> None:
        start.wait()
        url = f"http://127.0.0.1:{listener.port}/sleep?s=0.3&n={n}"
        results[n] = fetch(fetcher, url, headers={"X-N": str(n)})

    threads = [threading.Thread(target=run, args=(n,)) for n in range(20)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    assert sorted(results) == list(range(20))
    for n, response in results.items():
        assert echoed_header(response, "X-N") == str(n)
        assert echo(response)["path"].endswith(f"n={n}")
    assert elapsed < 2.5  # one after another would take 6 s
    assert listener.connections == 20


# ---------------------------------------------------------------------------------------
# https: connect to the checked address, verify the certificate against the name


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext
    sni: list[str | None]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    """A CA and a certificate for secure.test only (no IP address in it)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netguard test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secure.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("secure.test")]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, ca.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def tls(tls_files: tuple[Path, Path, bytes]) -> Tls:
    cert_file, key_file, ca_pem = tls_files
    sni: list[str | None] = []
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    server.sni_callback = lambda sock, name, ctx: sni.append(name)
    client = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    return Tls(server, client, sni)


@pytest.fixture
def tls_listener(tls: Tls) -> Iterator[Listener]:
    server = Listener("127.0.0.1", tls=tls.server)
    yield server
    server.close()


def test_https_goes_to_the_checked_address_with_the_name_for_sni_and_certificate(
    tls: Tls, tls_listener: Listener
) -> None:
    dns = Dns({"secure.test": ["127.0.0.1"]})
    fetcher = Fetcher(allow=("secure.test",), resolve=dns, client=httpx.Client(verify=tls.client))
    response = fetch(fetcher, f"https://secure.test:{tls_listener.port}/echo")
    # The certificate names secure.test only: verifying it against 127.0.0.1 would fail.
    assert echoed_header(response, "Host") == f"secure.test:{tls_listener.port}"
    assert response.url == f"https://secure.test:{tls_listener.port}/echo"
    assert tls.sni == ["secure.test"]
    assert dns.calls == ["secure.test"]


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        (("wrong.test",), "https://wrong.test:{port}/echo"),
        (("127.0.0.1",), "https://127.0.0.1:{port}/echo"),
    ],
)
def test_https_refuses_a_certificate_for_another_name(
    tls: Tls, tls_listener: Listener, allow: tuple[str, ...], url: str
) -> None:
    dns = Dns({"wrong.test": ["127.0.0.1"]})
    fetcher = Fetcher(allow=allow, resolve=dns, client=httpx.Client(verify=tls.client))
    response = fetch(fetcher, url.format(port=tls_listener.port))
    assert response.error == "TLS certificate verification failed"
    assert tls_listener.seen == []


def test_https_is_refused_for_loopback_before_the_handshake(
    tls: Tls, tls_listener: Listener
) -> None:
    dns = Dns({"secure.test": ["127.0.0.1"]})
    fetcher = Fetcher(resolve=dns, client=httpx.Client(verify=tls.client))
    response = fetch(fetcher, f"https://secure.test:{tls_listener.port}/echo")
    assert response.error == REFUSED
    assert tls.sni == []
    assert tls_listener.untouched()
