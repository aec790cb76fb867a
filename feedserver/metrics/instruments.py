"""The counters and histograms every process of a server run updates.

Created on first use (:func:`get`), not at import: prometheus_client picks its value
store (in-process, or memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``) when a
value is created, and ``feedserver serve`` sets that variable only after this module
may have been imported (:mod:`feedserver.metrics.multiproc`).  Without the variable
(the Flask test client, ``feedserver watch``, a plain WSGI server's command line)
the values live in the process, in a registry of their own.

What is computed at scrape time from files (articles, channels, problems, the age of
the last good publish, WebSub subscriptions) is not here: see
:mod:`feedserver.web.metrics`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from feedserver.metrics.multiproc import ENV

# Request latency of a file server: most answers take well under a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# A build: an incremental one takes tens of milliseconds, a cold one of a large folder minutes.
BUILD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
KINDS = ("feed", "page", "embed", "archive", "other")  # requests by route kind
OUTCOMES = ("published", "unchanged", "failed", "skipped")  # builds


@dataclass(frozen=True)
class Instruments:
    """One set of metric objects; ``registry`` is None in multiprocess mode (the
    values are files, read back by ``MultiProcessCollector``)."""

    registry: Any
    multiprocess: bool
    requests: Any  # Counter: kind, status, encoding
    response_bytes: Any  # Counter: kind
    conditional: Any  # Counter: kind (requests carrying If-None-Match / If-Modified-Since)
    latency: Any  # Histogram: kind
    builds: Any  # Counter: outcome
    build_seconds: Any  # Histogram
    deliveries: Any  # Counter: kind (push, ping), outcome (ok, retry, dropped)
    scheduler_active: Any  # Gauge: 1 while this run's scheduler holds scheduler.lock
    scheduler_heartbeat: Any  # Gauge: unix time of the scheduler's last look around


_made: dict[str | None, Instruments] = {}
_lock = threading.Lock()


def get() -> Instruments:
    """The instruments for the current ``PROMETHEUS_MULTIPROC_DIR`` (made once)."""
    key = os.environ.get(ENV) or None
    found = _made.get(key)
    if found is None:
        with _lock:
            found = _made.get(key) or _make(key)
            _made[key] = found
    return found


def _make(folder: str | None) -> Instruments:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

    multiprocess = folder is not None
    # The value store is chosen per value; match it to the environment as it is now.
    if multiprocess != (values.ValueClass is not values.MutexValue):
        values.ValueClass = values.get_value_class()
    registry = None if multiprocess else CollectorRegistry(auto_describe=True)
    ns = "feedserver"
    return Instruments(
        registry=registry,
        multiprocess=multiprocess,
        requests=Counter("http_requests", "HTTP requests answered, by route kind, status "
                         "and content encoding.", ["kind", "status", "encoding"],
                         namespace=ns, registry=registry),
        response_bytes=Counter("http_response_bytes", "Body bytes sent (HEAD and 304 "
                               "send none), by route kind.", ["kind"], namespace=ns,
                               registry=registry),
        conditional=Counter("http_conditional_requests", "Requests that carried "
                            "If-None-Match or If-Modified-Since, by route kind (the "
                            "denominator of the 304 ratio).", ["kind"], namespace=ns,
                            registry=registry),
        latency=Histogram("http_request_duration_seconds", "Time from the request to "
                          "the start of the answer, by route kind.", ["kind"],
                          namespace=ns, registry=registry, buckets=LATENCY_BUCKETS),
        builds=Counter("builds", "Builds run by the scheduler, by outcome (published, "
                       "unchanged, failed, skipped).", ["outcome"], namespace=ns,
                       registry=registry),
        build_seconds=Histogram("build_duration_seconds", "Duration of the scheduler's "
                                "builds that ran.", namespace=ns, registry=registry,
                                buckets=BUILD_BUCKETS),
        deliveries=Counter("websub_deliveries", "WebSub pushes to subscribers and pings "
                           "to external hubs, by outcome (ok, retry, dropped).",
                           ["kind", "outcome"], namespace=ns, registry=registry),
        scheduler_active=Gauge("scheduler_active", "1 while this server's scheduler holds "
                               "scheduler.lock and builds, 0 while it stands by or after it "
                               "stopped.", namespace=ns, registry=registry,
                               multiprocess_mode="mostrecent"),
        scheduler_heartbeat=Gauge("scheduler_heartbeat_timestamp_seconds", "Unix time of "
                                  "the scheduler's last look around (every half second "
                                  "while it runs).", namespace=ns, registry=registry,
                                  multiprocess_mode="max"),
    )


def build_outcome(published: bool, changed: bool) -> str:
    """A finished build's outcome label: something published, or nothing to write."""
    return "published" if published and changed else "unchanged"
