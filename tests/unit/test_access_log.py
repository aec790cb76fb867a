"""The access loggers write what gunicorn's own logger writes, without its atoms.

Each case is logged twice, by gunicorn's ``glogging.Logger`` and by ours, with the
configuration ``feedserver serve`` gives gunicorn (``gunicorn_options``), and the lines
are compared byte for byte: quotes in a path, a missing address, Basic and other
``Authorization`` headers, a status given as a number, nothing sent, a large body.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from feedserver.access_log import CLF_TIME, CommonAccessLogger, JsonAccessLogger
from feedserver.config import Settings
from feedserver.metrics.logs import JSON
from feedserver.serve import gunicorn_options

STAMP = "[01/Dec/2026:10:00:00 +0000]"
BASIC = "Basic " + __import__("base64").b64encode(b'ann"e:secret').decode()


def config(settings: Settings, **changed: Any) -> Config:
    """gunicorn's configuration as ``feedserver serve`` sets it (access log on)."""
    cfg = Config()
    for key, value in {**gunicorn_options(settings, "127.0.0.1", 8000), **changed}.items():
        if key in cfg.settings:
            cfg.set(key, value)
    return cfg


class Lines(logging.Handler):
    """The messages an access log received."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def logged(logger_class: type[glogging.Logger], cfg: Config, resp: Any, environ: dict[str, Any]
           ) -> str:
    logger = logger_class(cfg)
    lines = Lines()
    logger.access_log.addHandler(lines)
    try:
        logger.access(resp, SimpleNamespace(headers=[("HOST", "x")]), environ,
                      timedelta(microseconds=1234))
    finally:
        logger.access_log.removeHandler(lines)
    assert len(lines.lines) == 1
    return lines.lines[0]


def environ(**changed: Any) -> dict[str, Any]:
    base = {"REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": "GET", "RAW_URI": "/feed.rss",
            "PATH_INFO": "/feed.rss", "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_USER_AGENT": "reader/1.0", "wsgi.url_scheme": "http"}
    base.update(changed)
    return {k: v for k, v in base.items() if v is not None}


CASES = [
    ("200 OK", 261_596, environ()),
    ("304 Not Modified", 0, environ(HTTP_IF_NONE_MATCH='"abc"')),
    ("404 NOT FOUND", 1_079, environ(RAW_URI='/a"b?q=%22x%22', PATH_INFO='/a"b')),
    (429, None, environ(REMOTE_ADDR=None)),
    ("200 OK", 12, environ(HTTP_AUTHORIZATION=BASIC)),
    ("401 UNAUTHORIZED", 12, environ(HTTP_AUTHORIZATION="Bearer abc.def")),
    ("400 BAD REQUEST", 12, environ(HTTP_AUTHORIZATION="Basic !!not-base64!!")),
    ("200 OK", 5, environ(REMOTE_ADDR="::1", REQUEST_METHOD="HEAD", SERVER_PROTOCOL="HTTP/1.0")),
]


@pytest.mark.parametrize(("status", "sent", "env"), CASES)
def test_common_lines_are_gunicorns(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                    status: Any, sent: int | None, env: dict[str, Any]) -> None:
    cfg = config(settings)
    assert cfg.logger_class is CommonAccessLogger  # what serve runs with log_format common
    monkeypatch.setattr(glogging.Logger, "now", lambda self: STAMP)
    monkeypatch.setattr(CommonAccessLogger, "now", lambda self: STAMP)
    resp = SimpleNamespace(status=status, sent=sent, headers=[("Content-Type", "text/xml")])
    ours = logged(CommonAccessLogger, cfg, resp, env)
    assert ours == logged(glogging.Logger, cfg, resp, env)
    assert ours.startswith(env.get("REMOTE_ADDR", "-") + " - ")


def test_the_time_is_gunicorns(settings: Settings) -> None:
    logger = CommonAccessLogger(config(settings))
    for _ in range(3):
        before = time.strftime(CLF_TIME)
        ours = logger.now()
        after = time.strftime(CLF_TIME)
        if before == after:  # not across a second's edge
            assert ours == before == glogging.Logger.now(logger)
            return
    pytest.fail("three tries straddled a second")


def test_another_format_is_left_to_gunicorn(settings: Settings,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(settings, access_log_format='%(s)s "%(a)s" %({etag}o)s')
    resp = SimpleNamespace(status="200 OK", sent=3, headers=[("ETag", '"x"')])
    assert logged(CommonAccessLogger, cfg, resp, environ()) == '200 "reader/1.0" \\"x\\"'


def test_a_log_turned_off_writes_nothing(settings: Settings) -> None:
    logger = CommonAccessLogger(config(settings, accesslog=None))
    lines = Lines()
    logger.access_log.addHandler(lines)
    logger.access(SimpleNamespace(status="200 OK", sent=1, headers=[]), None, environ(),
                  timedelta(0))
    assert lines.lines == []


@pytest.mark.parametrize(("status", "sent", "env"), CASES)
def test_json_lines_carry_gunicorns_values(settings: Settings, status: Any, sent: int | None,
                                           env: dict[str, Any]) -> None:
    cfg = config(settings, logger_class=JsonAccessLogger)
    resp = SimpleNamespace(status=status, sent=sent, headers=[("Content-Type", "text/xml")])
    line = json.loads(logged(JsonAccessLogger, cfg, resp, env))
    atoms = glogging.Logger(cfg).atoms(resp, SimpleNamespace(headers=[]), env,
                                       timedelta(microseconds=1234))
    code = str(atoms["s"])
    assert line | {"time": "", "pid": 0} == {
        "time": "", "remote": atoms["h"], "method": atoms["m"],
        "path": env.get("RAW_URI") or atoms["U"], "protocol": atoms["H"],
        "status": int(code) if code.isdigit() else code, "bytes": atoms["B"] or 0,
        "referer": env.get("HTTP_REFERER"), "user_agent": env.get("HTTP_USER_AGENT"),
        "seconds": 0.001234, "pid": 0}


def test_json_is_what_serve_runs_for_log_format_json(settings: Settings) -> None:
    from dataclasses import replace

    assert config(replace(settings, log_format=JSON)).logger_class is JsonAccessLogger

