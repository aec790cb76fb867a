"""The access log, written by a WSGI wrapper around the app (granian's has no size).

Each case is a request through :class:`feedserver.access_log.AccessLog` around a small
WSGI app, the line compared with the Common Log Format written out by hand: quotes in a
path, a missing address, Basic and other ``Authorization`` headers, nothing sent, a
large body, a streamed body (logged when the server closes it), and the JSON line of
``log_format = "json"``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from feedserver.access_log import CLF_TIME, AccessLog, raw_uri
from feedserver.config import Settings
from feedserver.serve import server_options

STAMP = "[01/Dec/2026:10:00:00 +0000]"
BASIC = "Basic " + base64.b64encode(b'ann"e:secret').decode()


def environ(**changed: Any) -> dict[str, Any]:
    base = {"REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": "GET", "PATH_INFO": "/feed.rss",
            "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "SCRIPT_NAME": "",
            "HTTP_USER_AGENT": "reader/1.0", "wsgi.url_scheme": "http"}
    base.update(changed)
    return {k: v for k, v in base.items() if v is not None}


def app_of(status: str, body: Iterable[bytes]) -> Any:
    def app(env: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response(status, [("Content-Type", "text/xml")])
        return body
    return app


def served(log: AccessLog, env: dict[str, Any]) -> bytes:
    """What a WSGI server does with the answer: iterate it, then close it."""
    body = log(env, lambda status, headers, *exc: None)
    try:
        return b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def logged(status: str, body: Iterable[bytes], env: dict[str, Any], json_lines: bool = False,
           monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    lines: list[str] = []
    log = AccessLog(app_of(status, body), json_lines, lines.append)
    if monkeypatch is not None:
        monkeypatch.setattr(log, "now", lambda: STAMP)
    served(log, env)
    assert len(lines) == 1
    return lines[0]


CASES = [
    ("200 OK", [b"x" * 261_596], environ(),
     '127.0.0.1 - - [T] "GET /feed.rss HTTP/1.1" 200 261596'),
    ("304 Not Modified", [], environ(HTTP_IF_NONE_MATCH='"abc"'),
     '127.0.0.1 - - [T] "GET /feed.rss HTTP/1.1" 304 -'),
    ("404 NOT FOUND", [b"n" * 1079], environ(PATH_INFO='/a"b', QUERY_STRING='q=%22x%22'),
     '127.0.0.1 - - [T] "GET /a\\"b?q=%22x%22 HTTP/1.1" 404 1079'),
    ("429 Too Many Requests", [b""], environ(REMOTE_ADDR=None),
     '- - - [T] "GET /feed.rss HTTP/1.1" 429 -'),
    ("200 OK", [b"twelve bytes"], environ(HTTP_AUTHORIZATION=BASIC),
     '127.0.0.1 - ann\\"e [T] "GET /feed.rss HTTP/1.1" 200 12'),
    ("401 UNAUTHORIZED", [b"twelve bytes"], environ(HTTP_AUTHORIZATION="Bearer abc.def"),
     '127.0.0.1 - - [T] "GET /feed.rss HTTP/1.1" 401 12'),
    ("400 BAD REQUEST", [b"twelve bytes"], environ(HTTP_AUTHORIZATION="Basic !!not-base64!!"),
     '127.0.0.1 - - [T] "GET /feed.rss HTTP/1.1" 400 12'),
    ("200 OK", [b"fi", b"ve"], environ(REMOTE_ADDR="::1", REQUEST_METHOD="HEAD",
                                        SERVER_PROTOCOL="HTTP/1.0"),
     '::1 - - [T] "HEAD /feed.rss HTTP/1.0" 200 4'),
]


@pytest.mark.parametrize(("status", "body", "env", "line"), CASES)
def test_common_lines(monkeypatch: pytest.MonkeyPatch, status: str, body: list[bytes],
                      env: dict[str, Any], line: str) -> None:
    assert logged(status, body, env, monkeypatch=monkeypatch) == line.replace("[T]", STAMP)


def test_a_streamed_body_is_counted_and_logged_when_the_server_closes_it() -> None:
    closed: list[bool] = []

    class Streamed:
        def __iter__(self) -> Iterator[bytes]:
            yield b"abc"
            yield b"defgh"

        def close(self) -> None:
            closed.append(True)

    line = logged("200 OK", Streamed(), environ())
    assert line.endswith('"GET /feed.rss HTTP/1.1" 200 8') and closed == [True]


def test_the_time_is_the_common_log_formats() -> None:
    log = AccessLog(app_of("200 OK", []))
    for _ in range(3):
        before = time.strftime(CLF_TIME)
        ours = log.now()
        if before == time.strftime(CLF_TIME):  # not across a second's edge
            assert ours == before
            return
    pytest.fail("three tries straddled a second")


@pytest.mark.parametrize(("status", "body", "env", "line"), CASES)
def test_json_lines_carry_the_same_values(status: str, body: list[bytes], env: dict[str, Any],
                                          line: str) -> None:
    found = json.loads(logged(status, body, env, json_lines=True))
    assert isinstance(found.pop("seconds"), float) and found.pop("pid") > 0
    assert found.pop("time").endswith("+00:00")
    code = status.split()[0]
    assert found == {"remote": env.get("REMOTE_ADDR", "-"), "method": env["REQUEST_METHOD"],
                     "path": raw_uri(env), "protocol": env["SERVER_PROTOCOL"],
                     "status": int(code), "bytes": sum(map(len, body)),
                     "referer": None, "user_agent": "reader/1.0"}


def test_serve_logs_json_for_log_format_json_and_common_otherwise(settings: Settings) -> None:
    from dataclasses import replace

    from feedserver.metrics.logs import JSON

    assert server_options(replace(settings, log_format=JSON), "127.0.0.1", 1)["json_lines"]
    assert not server_options(settings, "127.0.0.1", 1)["json_lines"]
    assert server_options(settings, "127.0.0.1", 1, access_log=False)["access_log"] is False


def test_a_line_is_one_write_of_standard_output(capfd: pytest.CaptureFixture[str]) -> None:
    from feedserver.access_log import to_stdout

    to_stdout('127.0.0.1 - - [T] "GET /\u00e9 HTTP/1.1" 200 5')
    assert capfd.readouterr().out == '127.0.0.1 - - [T] "GET /\u00e9 HTTP/1.1" 200 5\n'
