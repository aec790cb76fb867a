"""gunicorn's access log lines, written without gunicorn's atoms.

For each request gunicorn's ``Logger.access`` builds a dict of every atom it knows (every
request and response header, the whole WSGI environ, a dozen more), escapes each value
and %-formats ``access_log_format`` with it: 23 us of the 260-360 us of worker CPU a
request costs (``feedserver serve``, the 3,000-article all-feed; measured in process,
logging to ``/dev/null``).  The line needs six of those atoms.  :class:`CommonAccessLogger`
writes the same bytes for :data:`COMMON_ACCESS_FORMAT` in 8 us; :class:`JsonAccessLogger`
(``log_format = "json"``) takes its fields from the request the same way.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from gunicorn import glogging

from feedserver.metrics.logs import COMMON_ACCESS_FORMAT, utc_stamp

CLF_TIME = "[%d/%b/%Y:%H:%M:%S %z]"  # gunicorn's Logger.now


def status_of(resp: Any) -> Any:
    """The status code as gunicorn's ``s`` atom has it (a str, or the int it was given)."""
    status = resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


class CommonAccessLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger; each access line in the Common Log Format, built directly.

    The same bytes as gunicorn's (``tests/unit/test_access_log.py`` compares them): a
    ``"`` in any value is written ``\\"``, an absent value is ``-``, the user is the
    name of a Basic ``Authorization``.  The time is formatted once a second.  Any
    other ``access_log_format`` is left to gunicorn.
    """

    _clock: tuple[int, str] = (-1, "")

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if self.cfg.access_log_format != COMMON_ACCESS_FORMAT:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        user = self._get_user(environ) if "HTTP_AUTHORIZATION" in environ else None
        sent = getattr(resp, "sent", None)
        request = f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} " \
                  f"{environ['SERVER_PROTOCOL']}"
        line = (f"{_quoted(environ.get('REMOTE_ADDR', '-'))} - {_quoted(user or '-')} "
                f"{self.now()} \"{_quoted(request)}\" {_quoted(status_of(resp))} "
                f"{'-' if sent is None else sent}")
        try:
            self.access_log.info(line)
        except Exception:
            self.exception("could not write an access log line")

    def now(self) -> str:
        """gunicorn's ``now()`` (local time, ``[day/Mon/year:H:M:S zone]``), once a second."""
        second = int(time.time())
        clock = self._clock
        if clock[0] != second:
            clock = self._clock = (second, time.strftime(CLF_TIME, time.localtime(second)))
        return clock[1]


def _quoted(value: Any) -> Any:
    """What gunicorn's ``SafeAtoms`` makes of an atom: ``"`` escaped in a str."""
    return value.replace('"', '\\"') if isinstance(value, str) else value


class JsonAccessLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, with each access line as one JSON object (``log_format = "json"``).

    gunicorn's ``access_log_format`` is a %-template: a quote or backslash in a
    path or a User-Agent would break a JSON template, so the line is built with
    :func:`json.dumps` from the request's own values (gunicorn's unescaped atoms).
    """

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not getattr(self, "access_log_enabled", True):
            return
        status = str(status_of(resp))
        line = {"time": utc_stamp(time.time()), "remote": environ.get("REMOTE_ADDR", "-"),
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("RAW_URI") or environ.get("PATH_INFO"),
                "protocol": environ.get("SERVER_PROTOCOL"),
                "status": int(status) if status.isdigit() else status,
                "bytes": getattr(resp, "sent", None) or 0,
                "referer": environ.get("HTTP_REFERER"),
                "user_agent": environ.get("HTTP_USER_AGENT"),
                "seconds": request_time.total_seconds(), "pid": os.getpid()}
        try:
            self.access_log.info(json.dumps(line, ensure_ascii=False))
        except Exception:
            self.exception("could not write an access log line")
