"""``/metrics`` (Prometheus text format) and the request counting behind it.

Two sources.  Every request is counted by :class:`Counting`, a WSGI wrapper around
the app: route kind, status, content encoding, body bytes, whether it was
conditional, latency.  Under ``feedserver serve`` the values are memory-mapped files
shared by every worker and the scheduler (:mod:`feedserver.metrics.multiproc`), so a
scrape that lands on any worker sees the whole server.  What the published folder
says (articles, channels, problems, the last good publish, a running build) and the
WebSub totals are read when scraped (:class:`StateCollector`): a file or a row
count, never a copy that could go stale.

The request path stays cheap: the route kind comes from the path by a cached rule
(no manifest lookup), label children are looked up once per (kind, status,
encoding), the counts are added to the shared values once a second, not per request
(:mod:`feedserver.metrics.tally`: another worker's counts reach a scrape up to a
second late), and nothing is formatted until a scrape.  ``metrics_allow = []`` turns
all of it off.

``/metrics`` answers only clients whose address is in ``metrics_allow`` (networks;
loopback by default); anyone else gets the site's ordinary 404, so the endpoint is
not advertised.  The address is the connection's (``REMOTE_ADDR``): behind a proxy
on the same host that is the proxy's, so the proxy must guard the path too.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from feedserver.config import Settings
from feedserver.metrics import instruments, tally
from feedserver.publish.manifest import read_status
from feedserver.web import health, websub

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SEVERITIES = ("error", "warning")
NOTES = ("last_error", "config_error", "scheduler_error")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4096)
def route_kind(path: str) -> str:
    """``feed``, ``page``, ``embed``, ``archive`` or ``other`` for a URL path.

    By the path alone, as :mod:`feedserver.core.layout` names things: a channel's
    feeds are ``feed.<format>`` (``feed.html`` is its browser page), pages are
    folders and ``.html``, ``embed/`` holds the widgets and frames; ``archive``
    is any path with an ``archive`` segment (archived feed pages).
    """
    path = path.lstrip("/")
    segments = path.split("/")
    if segments[0] == "embed":
        return "embed"
    if "archive" in segments[:-1] or segments[-1].startswith("archive"):
        return "archive"
    name = segments[-1]
    if name.startswith("feed.") and name != "feed.html":
        return "feed"
    if name == "" or name.endswith(".html"):
        return "page"
    return "other"


def networks(settings: Settings) -> tuple[Network, ...]:
    """``metrics_allow`` as networks (checked when the settings were loaded)."""
    return tuple(ipaddress.ip_network(net, strict=False) for net in settings.metrics_allow)


def allowed(address: str | None, allow: tuple[Network, ...]) -> bool:
    """Whether a client address is inside one of ``allow``; IPv4-mapped IPv6 counts as v4."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in allow)


class Counting:
    """WSGI wrapper that counts each answer (see the module docstring), in ``counts``
    first: the shared values are added to in batches (:mod:`feedserver.metrics.tally`)."""

    def __init__(self, app: Callable[..., Any], tools: instruments.Instruments,
                 counts: tally.Tally | None = None) -> None:
        self.app = app
        self.tools = tools
        self.counts = counts if counts is not None else tally.Tally()
        self._requests: dict[tuple[str, str, str], Any] = {}
        self._per_kind: dict[str, tuple[Any, Any, tally.Latency]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        seen: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            seen.append(status)
            seen.append(headers)
            return start_response(status, headers, *exc_info)

        body = self.app(environ, capture)
        if seen:
            self.record(environ, seen[-2], seen[-1], time.perf_counter() - started)
        return body

    def record(self, environ: dict[str, Any], status: str, headers: list[tuple[str, str]],
               seconds: float) -> None:
        """Add one answer to the counts."""
        kind = route_kind(environ.get("PATH_INFO", ""))
        encoding, length = "identity", 0
        for name, value in headers:
            if name == "Content-Length":
                length = int(value) if value.isdigit() else 0
            elif name == "Content-Encoding":
                encoding = value
        key = (kind, status[:3], encoding)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.tools.requests.labels(*key)
        per_kind = self._per_kind.get(kind)
        if per_kind is None:
            per_kind = self._per_kind[kind] = (
                self.tools.response_bytes.labels(kind), self.tools.conditional.labels(kind),
                tally.Latency(self.tools.latency.labels(kind)))
        sent, conditional, latency = per_kind
        amounts = [(counter, 1), *latency.amounts(seconds)]
        if length and environ.get("REQUEST_METHOD") != "HEAD":
            amounts.append((sent, length))
        if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ:
            amounts.append((conditional, 1))
        self.counts.add(amounts)


class StateCollector:
    """Gauges read at scrape time from status.json, the manifest and the hub's store."""

    def __init__(self, settings: Settings, channels: Callable[[], int]) -> None:
        self.settings = settings
        self.channels = channels

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        status = read_status(Path(self.settings.output_dir))
        now = time.time()

        def gauge(name: str, text: str, value: float | None = None,
                  labels: Iterable[str] = ()) -> Any:
            family = GaugeMetricFamily(f"feedserver_{name}", text, labels=list(labels))
            if value is not None:
                family.add_metric([], value)
            return family

        articles = status.get("articles")
        yield gauge("articles", "Articles in the last good publish.",
                    articles if isinstance(articles, int) else 0)
        yield gauge("channels", "Channels published now ('all' and each topic).",
                    self.channels())
        problems = status.get("problems")
        problems = problems if isinstance(problems, list) else []
        family = gauge("problems", "Problems of the last build, by severity.",
                       labels=["severity"])
        for severity in SEVERITIES:
            family.add_metric([severity], sum(
                1 for p in problems if isinstance(p, dict)
                and p.get("severity", "error") == severity))
        yield family
        last = health.moment(status.get("last_success"))
        if last is not None:
            yield gauge("last_success_timestamp_seconds", "Unix time of the last good "
                        "publish.", last.timestamp())
            yield gauge("seconds_since_last_success", "Seconds since the last good publish.",
                        max(0.0, now - last.timestamp()))
        since = health.moment(status.get("building_since"))
        yield gauge("build_running_seconds", "How long the build now running has run "
                    "(0: none runs).", max(0.0, now - since.timestamp()) if since else 0.0)
        family = gauge("status_note", "1 while /healthz reports this failure: the last "
                       "publish failed, config.toml kept back, the scheduler cannot run.",
                       labels=["note"])
        for note in NOTES:
            family.add_metric([note], 1.0 if status.get(note) else 0.0)
        yield family
        yield from self.websub()

    def websub(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        hub = websub.health(self.settings)
        if hub is None or "error" in hub:
            return
        yield GaugeMetricFamily("feedserver_websub_subscriptions", "Active WebSub "
                                "subscriptions of the built-in hub.", hub["subscribers"])
        queued = GaugeMetricFamily("feedserver_websub_queued", "Pushes and hub pings "
                                   "waiting to be delivered.", labels=["kind"])
        queued.add_metric(["push"], hub["queued_pushes"])
        queued.add_metric(["ping"], hub["queued_pings"])
        yield queued
        yield GaugeMetricFamily("feedserver_websub_failing", "Queued deliveries that "
                                "failed at least once.", hub["failing"])


class _Registered:
    """The in-process registry's metrics, as one collector (no multiprocess folder)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        return iter(self.registry.collect())


def exposition(tools: instruments.Instruments, state: StateCollector) -> bytes:
    """The text every scrape gets: the counters of all processes, then the state."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    if tools.multiprocess:
        MultiProcessCollector(registry)
    else:
        registry.register(_Registered(tools.registry))
    registry.register(state)
    return bytes(generate_latest(registry))


def register(app: Flask, settings: Settings, channels: Callable[[], int],
             refuse: Callable[[], Response]) -> None:
    """Count requests and add ``/metrics``, unless ``metrics_allow`` is empty."""
    if not settings.metrics_allow:
        return
    tools = instruments.get()
    allow = networks(settings)
    state = StateCollector(settings, channels)
    counts = tally.Tally()
    app.wsgi_app = Counting(app.wsgi_app, tools, counts)  # type: ignore[method-assign]

    def metrics() -> Response:
        if not allowed(request.remote_addr, allow):
            return refuse()
        counts.flush()  # this worker's own counts, exact; the others' up to a second old
        return Response(exposition(tools, state), 200,
                        {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
                        content_type=CONTENT_TYPE)

    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
