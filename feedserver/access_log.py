"""The access log, written by a WSGI wrapper: one line per answered request.

``feedserver serve`` runs the app under granian, whose own access log has no
response-size field; the Common Log Format line (host ident authuser [date]
"request" status bytes) and the JSON line of ``log_format = "json"`` need it.  So
the line is written here, from the status and headers the app gave and the bytes
its body held, after the body was sent (a line per request, as every server's
access log has it).  Built directly from the six values it needs (a %-template over
every atom cost gunicorn 23 us a request; this, about 8).

A line is one ``write(2)`` of the process's standard output, made directly: through
:mod:`logging` (a record, the handler's lock, a formatter, a flush) a line cost about
40 us, and cut the requests a second of a 304 by a third (benchmarks/README.md,
"Serving").  Lines of several workers sharing the stream never interleave within a
line (each is one write, far under ``PIPE_BUF``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from feedserver.metrics.logs import utc_stamp

CLF_TIME = "[%d/%b/%Y:%H:%M:%S %z]"  # the Common Log Format's [day/Mon/year:H:M:S zone]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def to_stdout(line: str) -> None:
    """One line to standard output in one ``write(2)`` (a short write is finished)."""
    data = memoryview(f"{line}\n".encode("utf-8", "backslashreplace"))
    while data:
        data = data[os.write(1, data):]


class AccessLog:
    """WSGI wrapper: a line for each request once its answer is sent.

    ``json_lines`` writes one JSON object a line (``log_format = "json"``) instead of
    the Common Log Format.  A line that cannot be written is dropped with a note on
    standard error; the answer is never affected.
    """

    def __init__(self, app: WSGIApp, json_lines: bool = False,
                 write: Callable[[str], None] = to_stdout) -> None:
        self.app = app
        self.json_lines = json_lines
        self.emit = write
        self._clock: tuple[int, str] = (-1, "")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        started = time.perf_counter()
        seen: list[str] = []

        def capture(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            seen.append(status)
            return start_response(status, headers, *exc_info)

        body = self.app(environ, capture)
        if isinstance(body, list | tuple):  # the fast path's answers: sized already
            self.write(environ, seen[-1] if seen else "500", sum(map(len, body)), started)
            return body
        return _Counted(body, lambda sent: self.write(
            environ, seen[-1] if seen else "500", sent, started))

    def write(self, environ: dict[str, Any], status: str, sent: int, started: float) -> None:
        """Log one request (``sent``: the body's bytes, 0 for none)."""
        try:
            line = self.json_line(environ, status, sent, time.perf_counter() - started) \
                if self.json_lines else self.common_line(environ, status, sent)
            self.emit(line)
        except Exception as exc:  # a log line never costs an answer
            print(f"feedserver: could not write an access log line: {exc}", file=sys.stderr)

    def common_line(self, environ: dict[str, Any], status: str, sent: int) -> str:
        """The Common Log Format: a ``"`` in a value written ``\\"``, absent values ``-``,
        the user the name of a Basic ``Authorization``, the body's size (``-`` for none)."""
        user = basic_user(environ.get("HTTP_AUTHORIZATION"))
        request = f"{environ['REQUEST_METHOD']} {raw_uri(environ)} {environ['SERVER_PROTOCOL']}"
        return (f"{_quoted(environ.get('REMOTE_ADDR') or '-')} - {_quoted(user or '-')} "
                f"{self.now()} \"{_quoted(request)}\" {status.split(None, 1)[0]} "
                f"{sent if sent else '-'}")

    def json_line(self, environ: dict[str, Any], status: str, sent: int,
                  seconds: float) -> str:
        """One JSON object (built with ``json.dumps``: any quote in a path or a
        User-Agent stays valid JSON)."""
        code = status.split(None, 1)[0]
        return json.dumps({
            "time": utc_stamp(time.time()), "remote": environ.get("REMOTE_ADDR") or "-",
            "method": environ.get("REQUEST_METHOD"), "path": raw_uri(environ),
            "protocol": environ.get("SERVER_PROTOCOL"),
            "status": int(code) if code.isdigit() else code, "bytes": sent,
            "referer": environ.get("HTTP_REFERER"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "seconds": round(seconds, 6), "pid": os.getpid()}, ensure_ascii=False)

    def now(self) -> str:
        """Local time as the Common Log Format writes it, formatted once a second."""
        second = int(time.time())
        clock = self._clock
        if clock[0] != second:
            clock = self._clock = (second, time.strftime(CLF_TIME, time.localtime(second)))
        return clock[1]


class _Counted:
    """A streamed body that counts what it yields and logs when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self.body = body
        self.done = done
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.done(self.sent)


def raw_uri(environ: dict[str, Any]) -> str:
    """The request target as the client sent it: the raw one when the server kept it,
    else the path and query put back together."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    path = path.encode("latin-1", "replace").decode("utf-8", "replace")
    query = environ.get("QUERY_STRING")
    return f"{path}?{query}" if query else path


def basic_user(header: str | None) -> str | None:
    """The user name of a Basic ``Authorization`` header, if it holds one."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] if ":" in decoded else None


def _quoted(value: str) -> str:
    return value.replace('"', '\\"')
