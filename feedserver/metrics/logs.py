"""Log lines a machine can read: ``log_format = "json"``.

With the default (``common``) the logs are for people: access lines in the
Common Log Format and the scheduler's one-line build summaries.  With ``json`` every
access line and every log record of the scheduler is one JSON object a line, so a
log shipper needs no pattern: :class:`JsonFormatter` turns a record into
``{"time", "level", "logger", "pid", "message"}`` plus the structured fields the caller
attached (``extra={"fields": {...}}``): a build's summary carries its counts that way
(:func:`build_fields`), so the same call gives the text line and the JSON object.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

COMMON = "common"
JSON = "json"
# The Common Log Format (NCSA): host ident authuser [date] "request" status bytes.
COMMON_ACCESS_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s'


def utc_stamp(seconds: float) -> str:
    """An ISO 8601 UTC time with milliseconds, the ``time`` of every JSON line."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object a line; ``record.fields`` (a dict) is merged in."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": utc_stamp(record.created), "level": record.levelname,
                                "logger": record.name, "pid": record.process,
                                "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def build_fields(report: Any, outcome: str, reason: str, run: int | None = None,
                 held: Iterable[str] = ()) -> dict[str, Any]:
    """The structured summary of one build (a :class:`~feedserver.build.run.BuildReport`)."""
    return {"event": "build", "outcome": outcome, "reason": reason, "run": run,
            "articles": report.articles, "channels": report.channels,
            "written": len(report.written), "unchanged": report.unchanged,
            "removed": len(report.removed), "held": len(list(held)),
            "problems": len(report.problems), "errors": len(report.errors),
            "seconds": round(report.seconds, 3)}


def failure_fields(outcome: str, reason: str, error: str, **more: Any) -> dict[str, Any]:
    """The structured summary of a build that failed or did not run."""
    return {"event": "build", "outcome": outcome, "reason": reason, "error": error, **more}


def json_line(message: str, fields: dict[str, Any]) -> str:
    """A summary as one JSON line outside logging (``feedserver build``'s last line)."""
    return json.dumps({"time": utc_stamp(datetime.now(UTC).timestamp()), "message": message,
                       **fields}, ensure_ascii=False, default=str)
