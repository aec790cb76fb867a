"""The publisher's side towards external hubs: "this feed changed" after a publish.

With external hubs in ``hubs``, each publish queues one ping per hub and per
feed whose bytes changed (never for unchanged ones); the delivering process
sends them (:mod:`feedserver.websub.deliver`) as the de facto publish request
that hubs accept (``hub.mode=publish&hub.url=<feed>``, form-encoded; the topic is
repeated as ``hub.topic`` for hubs that read that name).  A hub that is down is
retried with growing waits and never slows or fails a build; while its last
ping failed, a note in the store says so and ``/healthz`` shows it.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from feedserver.config import Settings
from feedserver.websub import addresses
from feedserver.websub.store import HubStore, Job

TIMEOUT = 10.0
NOTE_PREFIX = "hub_error "


def note_key(hub: str) -> str:
    """The store note that records a failing hub."""
    return NOTE_PREFIX + hub


def enqueue(store: HubStore, settings: Settings, topics: list[str], now: float) -> int:
    """One ping per external hub and changed feed URL; how many were queued."""
    hubs = settings.external_hubs
    return store.enqueue_pings(hubs, topics, now) if hubs and topics else 0


def send(job: Job, settings: Settings) -> str | None:
    """Tell one hub that one topic changed; None when it accepted (any 2xx)."""
    parts = urlsplit(job.target)
    target = addresses.Target(parts.scheme, parts.hostname or "",
                              parts.port or (443 if parts.scheme == "https" else 80),
                              parts.hostname or "",
                              (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    body = urlencode({"hub.mode": "publish", "hub.url": job.topic,
                      "hub.topic": job.topic}).encode()
    try:
        status, _ = addresses.call(target, "POST", body,
                                   {"Content-Type": "application/x-www-form-urlencoded"},
                                   TIMEOUT)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if 200 <= status < 300 else f"HTTP {status}"
