"""What ``/healthz`` tells the public: status and counts, never server details.

``status.json`` (written by the build and the scheduler into the output folder)
holds the full story: error messages with file paths, the text of a config
error, the problems of the last build.  Those are for the operator (the log,
``feedserver check``); ``/healthz`` is public, so it reduces them to a status,
counts, timestamps and fixed sentences (issue 12).

Statuses, most serious first:

* ``unavailable`` (503): no build has succeeded yet, nothing to serve.
* ``stuck``: a publishing build started ``building_since`` and has been running
  for ``stuck_after`` seconds or more (a file that hangs the parser, a
  deadlock).  The last good output is still served, so the answer stays 200
  when there is one (503 otherwise): a load balancer must not take a serving
  instance out.  Monitors alert on ``status`` in the body, or ask
  ``/healthz?strict``, which answers 503 for anything but ``ok``.
* ``degraded``: the last publish failed (``last_error``), a changed
  config.toml was kept back (``config_error``) or the scheduler cannot run
  (``scheduler_error``); the last good output is served.
* ``ok``.

:func:`report` and :func:`details` are pure (the clock is passed in).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feedserver.publish.manifest import read_status

NOTES = {
    "last_error": "The last build failed; the last good output is served. "
                  "Details: the server log and 'feedserver check'.",
    "config_error": "config.toml has an error; the last good configuration is in use. "
                    "Details: the server log and 'feedserver check'.",
    "scheduler_error": "The scheduler cannot run, so feeds are not refreshed. "
                       "Details: the server log.",
}


def moment(value: Any) -> datetime | None:
    """An ISO 8601 time from status.json, as an aware UTC datetime; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _when(value: Any) -> str | None:
    found = moment(value)
    return found.isoformat() if found else None


def notes(status: Mapping[str, Any]) -> dict[str, Any]:
    """Each reported failure as a fixed sentence (and when, for a failed build)."""
    found: dict[str, Any] = {}
    for key, sentence in NOTES.items():
        if not status.get(key):
            continue
        if key == "last_error":
            raw = status[key]
            found[key] = {"at": _when(raw.get("at")) if isinstance(raw, dict) else None,
                          "message": sentence}
        else:
            found[key] = sentence
    return found


def building(status: Mapping[str, Any], now: datetime, stuck_after: int) -> dict[str, Any]:
    """How long the running build has been at it, and whether that counts as stuck."""
    since = moment(status.get("building_since"))
    if since is None:
        return {}
    age = max(0, int((now - since).total_seconds()))
    return {"building_since": since.isoformat(), "building_for": age,
            "stuck_after": stuck_after}


def report(status: Mapping[str, Any], files: int, now: datetime, stuck_after: int
           ) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of ``/healthz`` for a status.json's contents."""
    problems = status.get("problems")
    problems = problems if isinstance(problems, list) else []
    last = _when(status.get("last_success"))
    running = building(status, now, stuck_after)
    found = notes(status)
    stuck = bool(running) and running["building_for"] >= stuck_after
    if stuck:
        state = "stuck"
    elif not last:
        state = "unavailable"
    else:
        state = "degraded" if found else "ok"
    articles = status.get("articles")
    body = {"status": state, "last_success": last, **found, **running,
            "problems": len(problems),
            "errors": sum(1 for p in problems
                          if isinstance(p, dict) and p.get("severity", "error") == "error"),
            "articles": articles if isinstance(articles, int) else None,
            "files": files}
    return (200 if last else 503), body


def details(status: Mapping[str, Any], now: datetime, stuck_after: int) -> list[str]:
    """The full story behind ``/healthz``'s fixed sentences, for ``feedserver check``.

    Read from status.json as the build and the scheduler wrote it: messages
    with paths, for the operator at the console, never for the public.
    """
    lines = []
    error = status.get("last_error")
    if error:
        at = _when(error.get("at")) if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        lines.append(f"the last publish failed at {at or 'an unknown time'}: {message}")
    if status.get("config_error"):
        lines.append(f"config kept back: {status['config_error']}")
    if status.get("scheduler_error"):
        lines.append(f"scheduler: {status['scheduler_error']}")
    running = building(status, now, stuck_after)
    if running:
        stuck = " (stuck)" if running["building_for"] >= stuck_after else ""
        lines.append(f"a build has been running since {running['building_since']}, "
                     f"{running['building_for']} s{stuck}")
    return lines


def published_details(out_dir: Path, stuck_after: int) -> list[str]:
    """:func:`details` of the status.json in ``out_dir`` (none if it cannot be read)."""
    return details(read_status(out_dir), datetime.now(UTC), stuck_after)
