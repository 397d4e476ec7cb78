"""Outbound HTTP for tenant functions, behind an SSRF guard.

``Fetcher`` performs a function's ``fetch()``: it resolves the host once, refuses the request
if any address it resolved to is internal (loopback, private, link-local, metadata, ...), and
then connects to the very address it checked. The original name only travels in the ``Host``
header and, for https, as the TLS server name the certificate is verified against. A second
DNS lookup never happens, so a name that rebinds between "check" and "connect" cannot switch
the destination; redirects are followed by hand and every hop is checked the same way.

An operator allowlist (``NSL_FETCH_ALLOW``) opens exceptions for exact host names or for
addresses and networks; tests and the dev stack need it to reach local servers.

A fetcher never raises: every refusal or failure is a ``FetchResponse`` whose ``error`` is
safe to show to the tenant. Operators get the details in the log.
"""

from __future__ import annotations

import http.cookiejar
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from types import TracebackType
from typing import Any, Self

import httpx

from neosl.closing import Closing
from neosl.config import Settings
from neosl.functions.fetching import (
    MAX_BODY_BYTES,
    MAX_HEADERS_BYTES,
    MAX_URL_BYTES,
    FetchRequest,
    FetchResponse,
    utf8_size,
)

logger = logging.getLogger(__name__)

Address = IPv4Address | IPv6Address
Resolver = Callable[[str, int], list[str]]

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

# Not globally reachable, or not meant to be reached by a tenant. Python's ``is_global`` is
# checked as well; these lists make the intent readable and do not depend on its version.
_REFUSED_V4 = tuple(
    IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", including the unspecified 0.0.0.0
        "10.0.0.0/8",  # private (RFC 1918)
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, including cloud metadata 169.254.169.254
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relays
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, including broadcast 255.255.255.255
    )
)
_REFUSED_V6 = tuple(
    IPv6Network(n)
    for n in (
        # Unspecified ::, loopback ::1 and the deprecated IPv4-compatible ::a.b.c.d.
        "::/96",
        "::ffff:0:0:0/96",  # IPv4-translated
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID
        "2001:db8::/32",  # documentation
        # 6to4 embeds an IPv4 address; it is deprecated (RFC 7526) and not globally
        # reachable, so it is refused whatever address it embeds.
        "2002::/16",
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing SIDs
        "fc00::/7",  # unique local (private)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")

# fetch() controls these itself: the guard needs Host, one connection per request needs
# Connection, the body limit needs Content-Length and Transfer-Encoding and the response
# decoder needs Accept-Encoding. Like a browser, fetch drops them silently.
_CONTROLLED_HEADERS = frozenset(
    {
        "accept-encoding",
        "connection",
        "content-length",
        "expect",
        "host",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Sent to the origin that was asked for, not to another origin a redirect points to.
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})
# Describe a body; dropped when a redirect turns the request into a GET without one.
_BODY_HEADERS = frozenset(
    {"content-type", "content-encoding", "content-language", "content-location"}
)

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")
_HOST_NAME = re.compile(r"(?=.{1,253}\Z)[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")


class _Failure(Exception):
    """A refusal or failure whose message is safe to show to the tenant."""


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host``, in its order, without repeats.

    Raises ``OSError`` (``socket.gaierror``) when the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_refused(address: Address) -> bool:
    """Whether the guard refuses ``address`` unless the allowlist opens it."""
    if isinstance(address, IPv4Address):
        return any(address in net for net in _REFUSED_V4) or not address.is_global
    if address.scope_id:
        return True
    if address.ipv4_mapped is not None:
        return is_refused(address.ipv4_mapped)
    if address in _NAT64:
        return is_refused(IPv4Address(int(address) & 0xFFFF_FFFF))
    return any(address in net for net in _REFUSED_V6) or not address.is_global


@dataclass(frozen=True)
class _Allowlist:
    names: frozenset[str]
    networks: tuple[IPv4Network | IPv6Network, ...]

    @classmethod
    def parse(cls, items: Iterable[str]) -> _Allowlist:
        """Raises ValueError for an item that is neither a host name nor an address/network."""
        names: set[str] = set()
        networks: list[IPv4Network | IPv6Network] = []
        for raw in items:
            item = raw.strip().lower().removeprefix("[").removesuffix("]")
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
                continue
            except ValueError:
                pass
            name = item.removesuffix(".")
            if not _HOST_NAME.fullmatch(name):
                raise ValueError(f"fetch allowlist: {raw!r} is not a host name or network")
            names.add(name)
        return cls(frozenset(names), tuple(networks))

    def allows(self, host: str, address: Address) -> bool:
        return host in self.names or any(address in net for net in self.networks)


@dataclass(frozen=True)
class _Target:
    """Where one hop goes, as the tenant named it."""

    url: httpx.URL  # normalised, without fragment
    host: str  # lower-case ASCII name without trailing dot, or the canonical address
    address: Address | None  # the host was an address literal
    port: int
    host_header: bytes

    def same_origin(self, other: _Target) -> bool:
        return (self.url.scheme, self.host, self.port) == (other.url.scheme, other.host, other.port)


def _parse_url(raw: object) -> _Target:
    """Raises _Failure for anything but a plain http(s) URL with a valid host."""
    if not isinstance(raw, str):
        raise _Failure("invalid URL")
    text = raw.strip()
    # The sandbox's own bound, checked again for every other caller.
    if len(text) > MAX_URL_BYTES or utf8_size(text) > MAX_URL_BYTES:
        raise _Failure("URL too long")
    # Browsers read "\" as "/" and drop tabs and newlines; httpx does not. Refusing them
    # keeps one reading of the URL.
    if any(c < " " or c in "\x7f\\" for c in text):
        raise _Failure("invalid URL")
    match = _SCHEME.match(text)
    if match is None:
        raise _Failure("invalid URL")
    scheme = match.group(1).lower()
    if scheme not in ("http", "https"):
        raise _Failure("only http and https URLs are allowed")
    rest = text[match.end() :]
    if not rest.startswith("//"):
        raise _Failure("invalid URL")
    authority = re.split(r"[/?#]", rest[2:], maxsplit=1)[0]
    if "@" in authority:
        raise _Failure("URLs with credentials are not allowed; send an Authorization header")
    numeric = re.fullmatch(r"([0-9A-Za-z.]+)(:[0-9]*)?", authority)
    if numeric is not None:
        # httpx refuses some IPv4 spellings (0177.0.0.1) and passes others (0x7f.1) on to
        # the resolver; read them all as the system resolver would, then check the result.
        address = _address_literal(numeric.group(1).lower().removesuffix("."))
        if address is not None:
            after = rest[2 + len(authority) :]
            text = f"{scheme}://{address}{numeric.group(2) or ''}{after}"
    try:
        url = httpx.URL(text)
        host = url.raw_host.decode("ascii").lower().removesuffix(".")
    except (httpx.InvalidURL, ValueError):  # UnicodeError is a ValueError
        raise _Failure("invalid URL") from None
    if url.userinfo or url.scheme != scheme or not host:
        raise _Failure("invalid URL")
    port = url.port or (443 if scheme == "https" else 80)
    if not 0 < port < 65536:
        raise _Failure("invalid URL")
    address = _address_literal(host)
    if address is not None:
        host = address.compressed
        shown = f"[{host}]" if address.version == 6 else host
    elif _HOST_NAME.fullmatch(host):
        shown = host
    else:
        raise _Failure("invalid URL")
    if url.port is not None:
        shown = f"{shown}:{port}"
    return _Target(
        url=url.copy_with(fragment=None),
        host=host,
        address=address,
        port=port,
        host_header=shown.encode("ascii"),
    )


def _address_literal(host: str) -> Address | None:
    """The address ``host`` spells, if it is one.

    IPv4 is read the way the system resolver reads it (``inet_aton``), so ``127.1``,
    ``2130706433``, ``0x7f.1`` and ``0177.0.0.1`` all mean 127.0.0.1 and are checked as such.
    A host whose last label is a number but which is no valid address is refused, as
    browsers do. Raises _Failure.
    """
    if ":" in host:
        try:
            return IPv6Address(host)
        except ValueError:
            raise _Failure("invalid URL") from None
    labels = host.split(".")
    if not _NUMBER.fullmatch(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMBER.fullmatch(label) for label in labels):
        raise _Failure("invalid URL")
    try:
        return IPv4Address(socket.inet_aton(host))
    except OSError:
        raise _Failure("invalid URL") from None


def _method(raw: object) -> str:
    method = raw.upper() if isinstance(raw, str) else ""
    if method not in METHODS:
        raise _Failure(f"method not allowed; use one of {', '.join(sorted(METHODS))}")
    return method


def _headers(raw: object) -> list[tuple[str, bytes]]:
    """The tenant's headers, validated, without those fetch controls. Raises _Failure."""
    if not isinstance(raw, Mapping):
        raise _Failure("headers must be an object of strings")
    headers: list[tuple[str, bytes]] = []
    size = 0
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise _Failure("header names and values must be strings")
        if not _TOKEN.fullmatch(name):
            raise _Failure("invalid header name")
        value = value.strip(" \t")
        if any(c in "\r\n\0" for c in value):
            raise _Failure(f"invalid value for header {name}")
        try:
            encoded = value.encode("latin-1")
        except UnicodeEncodeError:
            raise _Failure(f"invalid value for header {name}") from None
        size += len(name) + len(encoded) + 4
        if size > MAX_HEADERS_BYTES:
            raise _Failure("request headers too large")
        lower = name.lower()
        if lower in _CONTROLLED_HEADERS or lower.startswith("proxy-"):
            continue
        headers.append((name, encoded))
    return headers


def _body(raw: object, method: str, limit: int) -> bytes | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _Failure("body must be a string")
    if method in ("GET", "HEAD"):
        raise _Failure(f"a {method} request cannot have a body")
    body = raw.encode("utf-8", "replace")
    if len(body) > limit:
        raise _Failure(f"request body larger than {_size(limit)}")
    return body


def _size(n: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


def _has(headers: Sequence[tuple[str, bytes]], name: str) -> bool:
    return any(key.lower() == name for key, _ in headers)


class _Watchdog:
    """Shuts the connection down when the request's deadline passes.

    httpx's timeouts bound each read, not the exchange: a server that drips a byte a second
    would otherwise hold a function for as long as it likes, even while sending headers.
    The sockets come from httpcore's ``trace`` extension.
    """

    def __init__(self, deadline: float) -> None:
        self.fired = False
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._finished = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Self:
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self._finished = True
            self._sock = None
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self._finished:
                return
            self._sock = sock
            if self.fired:
                _shut_down(sock)

    def release(self) -> None:
        """The connection is about to be closed: never touch its (reusable) descriptor."""
        with self._lock:
            self._sock = None

    def _fire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.fired = True
            if self._sock is not None:
                _shut_down(self._sock)


def _shut_down(sock: socket.socket) -> None:
    # The plain socket method: SSLSocket.shutdown would also drop its TLS state while the
    # request's thread may still be reading through it.
    try:
        if sock.fileno() != -1:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _BodyReader:
    """Collects a response body, decoding gzip/deflate, and stops past ``limit`` bytes.

    Decompression is bounded too (``max_length``), so a small gzip bomb cannot inflate
    past the limit in memory. Raises _Failure.
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._raw = 0
        self._deflate_unsure = False
        self._inflater: Any = None
        if encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            # Servers send zlib-wrapped or raw deflate; the first bytes tell which.
            self._inflater = zlib.decompressobj()
            self._deflate_unsure = True
        elif encoding not in ("", "identity"):
            raise _Failure("response uses an unsupported content encoding")

    def feed(self, data: bytes) -> None:
        self._raw += len(data)
        if self._raw > self._limit:
            raise self._too_large()
        if self._inflater is None:
            self._add(data)
            return
        try:
            self._inflate(data)
        except zlib.error:
            if not self._deflate_unsure:
                raise _Failure("invalid compressed response body") from None
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            self._deflate_unsure = False
            try:
                self._inflate(data)
            except zlib.error:
                raise _Failure("invalid compressed response body") from None
        self._deflate_unsure = False

    def body(self) -> bytes:
        return b"".join(self._parts)

    def _inflate(self, data: bytes) -> None:
        while data:
            room = self._limit - self._size + 1
            self._add(self._inflater.decompress(data, room))
            data = self._inflater.unconsumed_tail

    def _add(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise self._too_large()
        self._parts.append(data)

    def _too_large(self) -> _Failure:
        return _Failure(f"response body larger than {_size(self._limit)}")


def _no_cookies() -> http.cookiejar.CookiePolicy:
    # Requests of different tenants share the client; a cookie one server sets must never
    # be sent along with another tenant's request (nor pile up in memory).
    return http.cookiejar.DefaultCookiePolicy(allowed_domains=[])


class Fetcher(Closing):
    """Performs a function's ``fetch()`` behind the SSRF guard; see the module docstring.

    Thread-safe: one instance serves every execution of a worker. ``__call__`` never
    raises. ``allow`` holds host names (matched exactly, before resolution) and addresses
    or CIDR networks (matched against each resolved address); an item that is neither
    raises ValueError. ``resolve`` maps (host, port) to address strings and may raise
    OSError; it defaults to the system resolver. ``client`` replaces the default httpx
    client (tests pass one trusting their own CA): the fetcher takes it over, never sends
    its cookies, headers or auth, and closes it in ``close()``. It must not route through a
    proxy: a connection that does not reach the checked address is refused.
    """

    def __init__(
        self,
        *,
        allow: Sequence[str] = (),
        timeout: float = 10.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_redirects: int = 5,
        resolve: Resolver | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self._allow = _Allowlist.parse(allow)
        self._timeout = timeout
        self._max_body_bytes = max_body_bytes
        self._max_redirects = max_redirects
        self._resolve = resolve or resolve_host
        if client is None:
            client = httpx.Client(
                trust_env=False,  # no proxy from the environment: connect to the checked address
                follow_redirects=False,
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=0),
                cookies=http.cookiejar.CookieJar(_no_cookies()),
            )
        else:
            client.cookies.jar.set_policy(_no_cookies())
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> Fetcher:
        return cls(allow=settings.fetch_allow, timeout=settings.fetch_timeout_seconds)

    def close(self) -> None:
        self._client.close()

    def __call__(self, request: FetchRequest) -> FetchResponse:
        try:
            return self._fetch(request)
        except _Failure as failure:
            return FetchResponse(error=str(failure))
        except Exception:
            logger.exception("fetch failed unexpectedly")
            return FetchResponse(error="fetch failed")

    def _fetch(self, request: FetchRequest) -> FetchResponse:
        target = _parse_url(request.url)
        method = _method(request.method)
        headers = _headers(request.headers)
        body = _body(request.body, method, self._max_body_bytes)
        if body is not None and not _has(headers, "content-type"):
            headers.append(("Content-Type", b"text/plain;charset=UTF-8"))
        if not _has(headers, "accept"):
            headers.append(("Accept", b"*/*"))
        if not _has(headers, "user-agent"):
            headers.append(("User-Agent", b"neosl-fetch"))
        deadline = time.monotonic() + self._timeout
        with _Watchdog(deadline) as watchdog:
            redirects = 0
            while True:
                addresses = self._checked_addresses(target, deadline)
                response = self._open(target, addresses, method, headers, body, deadline, watchdog)
                try:
                    location = response.headers.get("location")
                    if response.status_code not in _REDIRECTS or location is None:
                        content = self._read(response, method, deadline, watchdog)
                        return FetchResponse(
                            status=response.status_code,
                            headers=dict(response.headers.items()),
                            body=content.decode("utf-8", "replace"),
                            url=str(target.url),
                        )
                finally:
                    response.close()
                if redirects == self._max_redirects:
                    raise _Failure("too many redirects")
                redirects += 1
                try:
                    next_url = str(target.url.join(location))
                except (httpx.InvalidURL, ValueError):
                    raise _Failure("invalid redirect location") from None
                following = _parse_url(next_url)
                status = response.status_code
                if (status == 303 and method != "HEAD") or (
                    status in (301, 302) and method == "POST"
                ):
                    method, body = "GET", None
                    headers = [h for h in headers if h[0].lower() not in _BODY_HEADERS]
                if not following.same_origin(target):
                    headers = [h for h in headers if h[0].lower() not in _CREDENTIAL_HEADERS]
                target = following

    def _checked_addresses(self, target: _Target, deadline: float) -> list[Address]:
        """Every address the host stands for, each checked. Raises _Failure."""
        if target.address is not None:
            addresses = [target.address]
        else:
            addresses = self._lookup(target.host, target.port, deadline)
        for address in addresses:
            # A scoped address (fe80::1%eth0) names an interface of this machine.
            scoped = isinstance(address, IPv6Address) and address.scope_id
            if scoped or (is_refused(address) and not self._allow.allows(target.host, address)):
                logger.info("fetch refused: %s resolves to %s", target.host, address)
                raise _Failure("destination address is not allowed")
        return addresses

    def _lookup(self, host: str, port: int, deadline: float) -> list[Address]:
        """Resolves once, within the deadline (the resolver itself may take far longer)."""
        answers: list[list[str]] = []
        done = threading.Event()

        def run() -> None:
            try:
                answers.append(self._resolve(host, port))
            except OSError:
                pass
            except Exception:
                logger.exception("fetch: resolver failed for %s", host)
            finally:
                done.set()

        threading.Thread(target=run, name="netguard-resolve", daemon=True).start()
        if not done.wait(max(0.0, deadline - time.monotonic())):
            raise _Failure("timed out")
        try:
            addresses = [ipaddress.ip_address(a) for a in answers[0]] if answers else []
        except ValueError:
            logger.warning("fetch: resolver gave a non-address for %s: %r", host, answers[0])
            addresses = []
        if not addresses:
            raise _Failure("could not resolve host")
        return addresses

    def _open(
        self,
        target: _Target,
        addresses: list[Address],
        method: str,
        headers: list[tuple[str, bytes]],
        body: bytes | None,
        deadline: float,
        watchdog: _Watchdog,
    ) -> httpx.Response:
        """Sends the request to the first checked address that accepts a connection."""
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Failure("timed out")
            request = httpx.Request(
                method,
                target.url.copy_with(host=address.compressed),
                headers=[
                    (b"Host", target.host_header),
                    *((name.encode("ascii"), value) for name, value in headers),
                    (b"Accept-Encoding", b"gzip, deflate"),
                    # A connection serves one request: its TLS session was verified for
                    # this host name only.
                    (b"Connection", b"close"),
                ],
                content=body,
                extensions={
                    "timeout": httpx.Timeout(remaining).as_dict(),
                    "sni_hostname": target.host,
                    "trace": _tracer(address, target.port, watchdog),
                },
            )
            try:
                return self._client.send(request, stream=True, follow_redirects=False, auth=None)
            except httpx.ConnectError as exc:
                if watchdog.fired:
                    raise _Failure("timed out") from None
                logger.info("fetch: %s (%s) did not connect: %s", target.host, address, exc)
                tls = _tls_failure(exc)
                if tls is not None:
                    raise tls from None
            except (httpx.HTTPError, OSError) as exc:
                raise _transfer_failure(exc, watchdog, deadline) from None
        raise _Failure("could not connect")

    def _read(
        self, response: httpx.Response, method: str, deadline: float, watchdog: _Watchdog
    ) -> bytes:
        if method == "HEAD":
            return b""
        length = response.headers.get("content-length", "")
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding in ("", "identity") and length.isdigit() and int(length) > self._max_body_bytes:
            raise _Failure(f"response body larger than {_size(self._max_body_bytes)}")
        reader = _BodyReader(encoding, self._max_body_bytes)
        try:
            for chunk in response.iter_raw():
                if time.monotonic() > deadline:
                    raise _Failure("timed out")
                reader.feed(chunk)
        except (httpx.HTTPError, OSError) as exc:
            raise _transfer_failure(exc, watchdog, deadline) from None
        return reader.body()


def _tracer(
    address: Address, port: int, watchdog: _Watchdog
) -> Callable[[str, dict[str, Any]], None]:
    """httpcore's trace hook for one connection: checks the peer and arms the watchdog."""

    def trace(event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            stream = info["return_value"]
            sock: socket.socket = stream.get_extra_info("socket")
            peer = sock.getpeername()
            peer_address = ipaddress.ip_address(str(peer[0]).split("%")[0])
            if (peer_address, peer[1]) != (address, port):
                # A proxy (or anything else) between us and the checked address would make
                # the check meaningless.
                logger.warning("fetch: connected to %s, not to the checked %s", peer, address)
                stream.close()
                raise _Failure("could not connect")
            watchdog.watch(sock)
        elif event == "connection.start_tls.complete":
            watchdog.watch(info["return_value"].get_extra_info("socket"))
        elif event == "http11.response_closed.started":
            watchdog.release()

    return trace


def _tls_failure(exc: BaseException) -> _Failure | None:
    cause: BaseException | None = exc
    for _ in range(10):
        if cause is None:
            break
        if isinstance(cause, ssl.SSLCertVerificationError):
            return _Failure("TLS certificate verification failed")
        if isinstance(cause, ssl.SSLError):
            return _Failure("TLS handshake failed")
        cause = cause.__cause__ or cause.__context__
    return None


def _transfer_failure(exc: BaseException, watchdog: _Watchdog, deadline: float) -> _Failure:
    if watchdog.fired or time.monotonic() >= deadline or isinstance(exc, httpx.TimeoutException):
        return _Failure("timed out")
    logger.info("fetch: transfer failed: %r", exc)
    return _Failure("connection failed")
