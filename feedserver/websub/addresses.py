"""Which callback URLs the hub may call, and calling them at the address that was checked.

A hub makes requests to URLs strangers give it: without care it becomes a
proxy into the server's own network (server-side request forgery).  So a
callback must be ``http``/``https``, and every address its host resolves to
must be public (not loopback, private, link-local, shared, multicast or
reserved) unless ``hub_allow_private_callbacks`` is on; a callback at the
server's own address (its ``base_url`` origin) is refused always, so the hub
never calls itself.  The connection then goes to the very address that was
checked (:class:`PinnedHTTPConnection`): a name that resolves to a public
address at the check and to 127.0.0.1 a moment later (DNS rebinding) gains
nothing.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL = 2000
MAX_BODY = 64 * 1024  # bytes read from any answer: a challenge echo is short


class Refused(ValueError):
    """A URL the hub will not call, with the reason (for the subscriber and the log)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for."""

    scheme: str
    host: str
    port: int
    address: str
    path: str


def _port(parts: object, scheme: str) -> int:
    port = getattr(parts, "port", None)
    return port or (443 if scheme == "https" else 80)


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return ip.is_global and not ip.is_multicast


@functools.lru_cache(maxsize=8)
def own_origins(base_url: str) -> frozenset[tuple[str, int]]:
    """(address, port) pairs of the server itself, from its ``base_url`` (looked up once
    per process: every subscription request checks against them)."""
    parts = urlsplit(base_url)
    scheme, host = parts.scheme, parts.hostname or ""
    found = {(host.lower(), _port(parts, scheme))}
    try:
        infos = socket.getaddrinfo(host, _port(parts, scheme), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return frozenset(found)
    return frozenset(found | {(str(info[4][0]), _port(parts, scheme)) for info in infos})


def check(url: str, allow_private: bool, own: frozenset[tuple[str, int]]) -> Target:
    """The URL's target if the hub may call it; :class:`Refused` with the reason if not."""
    if len(url) > MAX_URL:
        raise Refused(f"the URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = _port(parts, parts.scheme)
    except ValueError as exc:
        raise Refused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("only absolute http and https URLs are allowed")
    if parts.username or parts.password:
        raise Refused("URLs with credentials are not allowed")
    host = parts.hostname
    if (host.lower(), port) in own:
        raise Refused("the URL points at this server itself")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise Refused(f"the host {host!r} cannot be resolved") from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if (address, port) in own:
            raise Refused("the URL points at this server itself")
        if not allow_private and not _public(ipaddress.ip_address(address.split("%")[0])):
            raise Refused(f"the host {host!r} resolves to a loopback, private, link-local or "
                          "reserved address")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, addresses[0], path)


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a checked address, with the URL's host in ``Host``."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.target = target

    def connect(self) -> None:
        self.sock = socket.create_connection((self.target.address, self.target.port),
                                             self.timeout)


class PinnedHTTPSConnection(PinnedHTTPConnection):
    """HTTPS to a checked address; the certificate is checked against the URL's host."""

    def connect(self) -> None:
        super().connect()
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(self.sock, server_hostname=self.target.host)


def call(target: Target, method: str, body: bytes, headers: dict[str, str],
         timeout: float) -> tuple[int, bytes]:
    """One request, no redirects followed; (status, start of the body).

    ``timeout`` bounds the whole exchange, not only each read: a callback that
    trickles its answer one byte at a time is cut off at ``timeout`` seconds
    (a timer shuts the socket) and the exchange is a :class:`TimeoutError`, never
    an answer, whatever http.client made of the bytes it had by then.
    """
    kind = PinnedHTTPSConnection if target.scheme == "https" else PinnedHTTPConnection
    conn = kind(target, timeout)
    cut = threading.Event()
    timer = threading.Timer(timeout, _cut, (conn, cut))
    timer.daemon = True
    timer.start()
    try:
        conn.request(method, target.path, body=body or None,
                     headers={"User-Agent": "feedserver-websub", **headers})
        response = conn.getresponse()
        answer = response.status, response.read(MAX_BODY)
    except (OSError, http.client.HTTPException) as exc:
        if cut.is_set():
            raise TimeoutError(f"no complete answer within {timeout:.0f}s") from None
        raise OSError(f"{type(exc).__name__}: {exc}") from None
    finally:
        timer.cancel()
        conn.close()
    if cut.is_set():
        raise TimeoutError(f"no complete answer within {timeout:.0f}s")
    return answer


def _cut(conn: http.client.HTTPConnection, cut: threading.Event) -> None:
    cut.set()
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
