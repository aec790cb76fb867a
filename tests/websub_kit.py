"""A small WebSub subscriber and a stand-in external hub, on 127.0.0.1, for the tests.

Checked first: flask-websub (the maintained PyPI package with a subscriber)
refuses ``hub.secret`` on plain-http callbacks, and the tests run over http on
127.0.0.1 with a secret to check ``X-Hub-Signature``; so the subscriber is this
one: it answers the verification GET by echoing ``hub.challenge`` (unless told
to refuse), records every request, and answers pushes with the status the test
sets.  The same server stands in for an external hub (it records the pings).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import Request, urlopen

LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";,]+)"?')


@dataclass
class Seen:
    """One request the server got."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Recorder:
    """What a test server got, and how it answers."""

    seen: list[Seen] = field(default_factory=list)
    push_status: list[int] = field(default_factory=list)  # next answers to POSTs, then 200
    confirm: bool = True  # echo the challenge (False: a callback that did not ask)
    hold: dict[str, threading.Event] = field(default_factory=dict)  # POSTs to a path wait
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts(self) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == "POST"]

    def gets(self) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == "GET"]


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _record(self, body: bytes) -> Seen:
            parts = urlsplit(self.path)
            seen = Seen(self.command, parts.path,
                        {k: v[0] for k, v in parse_qs(parts.query).items()},
                        {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
            with recorder.lock:
                recorder.seen.append(seen)
            return seen

        def _answer(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # verification of intent
            seen = self._record(b"")
            challenge = seen.query.get("hub.challenge", "")
            if recorder.confirm and challenge:
                self._answer(200, challenge.encode())
            else:
                self._answer(404)

        def do_POST(self) -> None:  # a push (subscriber) or a ping (hub)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen = self._record(body)
            gate = recorder.hold.get(seen.path)
            if gate is not None:
                gate.wait(30)
            with recorder.lock:
                status = recorder.push_status.pop(0) if recorder.push_status else 200
            self._answer(status)

    return Handler


class TestServer:
    """A threaded HTTP server on a free 127.0.0.1 port, recording what it gets."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.recorder = Recorder()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.recorder))
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> TestServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def links(headers: dict[str, str] | list[tuple[str, str]]) -> dict[str, list[str]]:
    """``rel`` -> URLs, from every Link header."""
    items = headers.items() if isinstance(headers, dict) else headers
    found: dict[str, list[str]] = {}
    for name, value in items:
        if name.lower() == "link":
            for url, rel in LINK.findall(value):
                found.setdefault(rel, []).append(url)
    return found


def discover(feed_url: str) -> tuple[str, str]:
    """(hub, self) from a feed's Link headers, as a subscriber finds them."""
    with urlopen(feed_url, timeout=10) as response:
        response.read()
        found = links(response.headers.items())
    return found["hub"][0], found["self"][0]


def hub_request(hub: str, mode: str, topic: str, callback: str,
                secret: str = "", lease: int | None = None) -> tuple[int, str]:
    """POST a subscription request; (status, text)."""
    form = {"hub.mode": mode, "hub.topic": topic, "hub.callback": callback}
    if secret:
        form["hub.secret"] = secret
    if lease is not None:
        form["hub.lease_seconds"] = str(lease)
    request = Request(hub, data=urlencode(form).encode(), method="POST",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except Exception as exc:  # HTTPError carries the status
        status = getattr(exc, "code", None)
        if status is None:
            raise
        return int(status), exc.read().decode()  # type: ignore[attr-defined]


def signed(secret: str, body: bytes, header: str) -> bool:
    """Whether ``X-Hub-Signature`` is the sha256 HMAC of ``body`` under ``secret``."""
    method, _, digest = header.partition("=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return method == "sha256" and hmac.compare_digest(digest, expected)


def wait_for(check: object, timeout: float) -> bool:
    """Poll ``check()`` until truthy or ``timeout`` seconds pass; its last result."""
    deadline = time.monotonic() + timeout
    while True:
        if check():  # type: ignore[operator]
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
