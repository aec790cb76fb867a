"""The hub's front door: a subscription or unsubscription request, checked and recorded.

What a web worker does with ``POST /websub`` (W3C WebSub §5.1): check the form
(``hub.mode``, ``hub.topic``, ``hub.callback``, ``hub.lease_seconds``,
``hub.secret``), refuse what is not acceptable with a 4xx and a plain-text
reason, and record the rest for verification: ``202 Accepted``.  Only the
process that runs the scheduler calls subscribers (:mod:`feedserver.websub.deliver`
verifies the intent with ``hub.challenge``), so a worker never waits on a
stranger's server.  The topic must be one of this site's published feeds; the
callback must pass :func:`feedserver.websub.addresses.check`; requests are
counted per client address (``hub_rate_limit`` a minute).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from feedserver.config import Settings
from feedserver.websub import addresses
from feedserver.websub.store import HubStore

MAX_SECRET = 199  # bytes (§5.1: "less than 200 bytes")
MODES = ("subscribe", "unsubscribe")


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    retry_after: int | None = None


def lease(settings: Settings, asked: str | None) -> int:
    """The lease granted: the one asked for (a positive integer), else the default;
    never past ``hub_lease_max_seconds``."""
    if asked is None or asked == "":
        wanted = settings.hub_lease_seconds
    else:
        if not asked.strip().isdigit() or int(asked) < 1:
            raise ValueError("hub.lease_seconds must be a positive integer")
        wanted = int(asked)
    return min(wanted, settings.hub_lease_max_seconds)


def handle(form: Mapping[str, str], client: str, settings: Settings, store: HubStore,
           is_feed: Callable[[str], bool], now: float) -> Answer:
    """Check one request and record it; the answer the subscriber gets."""
    if not store.allow_request(client, settings.hub_rate_limit, now):  # before any lookup
        return Answer(429, "Too many subscription requests; try again in a minute.\n", 60)
    mode = form.get("hub.mode", "")
    if mode == "publish":
        return Answer(400, "This hub only distributes the feeds of this site; they are "
                           "pushed when they are published.\n")
    if mode not in MODES:
        return Answer(400, "hub.mode must be 'subscribe' or 'unsubscribe'.\n")
    topic, callback = form.get("hub.topic", ""), form.get("hub.callback", "")
    if not topic.startswith(settings.base_url) or not is_feed(topic[len(settings.base_url):]):
        return Answer(400, "hub.topic is not a feed of this site.\n")
    try:
        addresses.check(callback, settings.hub_allow_private_callbacks,
                        addresses.own_origins(settings.base_url))
    except addresses.Refused as exc:
        return Answer(400, f"hub.callback refused: {exc}.\n")
    secret = form.get("hub.secret", "")
    if len(secret.encode("utf-8")) > MAX_SECRET:
        return Answer(400, "hub.secret must be shorter than 200 bytes.\n")
    try:
        granted = lease(settings, form.get("hub.lease_seconds"))
    except ValueError as exc:
        return Answer(400, f"{exc}.\n")
    store.request_intent(mode, topic, callback, secret, granted, now)
    return Answer(202, f"Accepted: the {mode} request will be verified with the callback.\n")
