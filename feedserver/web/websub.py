"""``POST /websub`` (the built-in WebSub hub) and the hub's line in ``/healthz``.

The web side of the hub only records: a request is checked and stored by
:func:`feedserver.websub.hub.handle`; the process that runs the scheduler
verifies it and delivers (:mod:`feedserver.websub.deliver`).  ``/healthz`` gets
totals and a fixed sentence when an external hub is failing; the subscriber
count per channel is for the operator only (``feedserver subscribers``).
"""

from __future__ import annotations

import functools
import sqlite3
import time
from typing import Any

from flask import Flask, Response, request

from feedserver.config import HUB_PATH, Settings
from feedserver.websub import hub
from feedserver.websub.ping import NOTE_PREFIX
from feedserver.websub.store import HubStore

HUB_ERROR = ("An external WebSub hub could not be told about the last publish; it is "
             "retried. Details: the server log and 'feedserver subscribers'.")


def register(app: Flask, settings: Settings, is_feed: Any) -> None:
    """Add ``/websub`` when the built-in hub is on (``hubs`` has "builtin")."""
    if not settings.builtin_hub:
        return
    store = HubStore(settings.state_dir)

    def websub() -> Response:
        if request.method != "POST":
            return Response("WebSub hub: POST subscription requests here.\n", 405,
                            {"Allow": "POST", "Cache-Control": "no-store"},
                            content_type="text/plain; charset=utf-8")
        form = {key: request.form.get(key, "") for key in request.form}
        answer = hub.handle(form, request.remote_addr or "", settings, store, is_feed,
                            time.time())
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        if answer.retry_after:
            headers["Retry-After"] = str(answer.retry_after)
        return Response(answer.text, answer.status, headers,
                        content_type="text/plain; charset=utf-8")

    app.add_url_rule("/" + HUB_PATH, "websub", websub, methods=["GET", "POST"])


@functools.lru_cache(maxsize=4)
def _store(state_dir: str) -> HubStore:
    return HubStore(state_dir)


def health(settings: Settings) -> dict[str, Any] | None:
    """The hub's totals and failures for /healthz; None when no hub is configured."""
    if not settings.hubs:
        return None
    store = _store(settings.state_dir)
    if not store.exists():
        return {"subscribers": 0, "queued_pushes": 0, "queued_pings": 0, "failing": 0}
    try:
        found: dict[str, Any] = store.counts(time.time())
        failing_hubs = [k for k in store.notes() if k.startswith(NOTE_PREFIX)]
    except sqlite3.Error:
        return {"error": "The WebSub store cannot be read. Details: the server log."}
    if failing_hubs:
        found["hub_error"] = HUB_ERROR
    return found
