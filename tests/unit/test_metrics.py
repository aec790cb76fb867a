"""``/metrics`` through the Flask test client: counters, state gauges, access rules.

The values live in the process here (no multiprocess folder); the real server, with
two workers sharing one, is tests/system/test_metrics_e2e.py.  Counters are shared
by every app of this process, so each test compares before and after.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from feedserver.config import Settings, load_settings
from feedserver.core.errors import ConfigError
from feedserver.web.app import create_app
from feedserver.web.metrics import allowed, networks, route_kind


def scrape(client: FlaskClient, addr: str = "127.0.0.1") -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, parsed by prometheus_client's own parser."""
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": addr})
    assert response.status_code == 200, response.data[:200]
    assert response.content_type.startswith("text/plain; version=0.0.4")
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_kind_status_and_encoding(client: FlaskClient) -> None:
    before = scrape(client)
    plain = client.get("/feed.rss")
    assert plain.status_code == 200
    gz = client.get("/topics/energy/feed.atom", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip"
    again = client.get("/feed.rss", headers={"If-None-Match": plain.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/topics/energy/").status_code == 200
    assert client.get("/no/such/thing").status_code == 404
    client.head("/feed.json")
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    total = "feedserver_http_requests_total"
    assert delta(total, kind="feed", status="200", encoding="identity") == 2  # GET + HEAD
    assert delta(total, kind="feed", status="200", encoding="gzip") == 1
    assert delta(total, kind="feed", status="304", encoding="identity") == 1
    assert delta(total, kind="page", status="200", encoding="identity") == 1
    assert delta(total, kind="other", status="404", encoding="identity") == 1
    assert delta("feedserver_http_conditional_requests_total", kind="feed") == 1
    # Bytes: the two GET bodies of feeds; HEAD and 304 send none.
    assert delta("feedserver_http_response_bytes_total", kind="feed") == \
        len(plain.data) + len(gz.data)
    assert delta("feedserver_http_request_duration_seconds_count", kind="feed") == 4
    assert delta("feedserver_http_request_duration_seconds_bucket", kind="feed",
                 le="+Inf") == 4
    # The scrape itself counts as "other" (the first one was answered before it was counted).
    assert delta(total, kind="other", status="200", encoding="identity") == 1


def test_state_gauges_match_the_published_site(client: FlaskClient) -> None:
    catalog = json.loads(client.get("/topics.json").data)
    status = json.loads(client.get("/healthz").data)
    started = time.time()
    samples = scrape(client)
    ended = time.time()
    assert value(samples, "feedserver_channels") == len(catalog["channels"]) > 1
    assert value(samples, "feedserver_articles") == status["articles"] > 0
    assert value(samples, "feedserver_problems", severity="error") == status["errors"]
    last = datetime.fromisoformat(status["last_success"]).timestamp()
    assert value(samples, "feedserver_last_success_timestamp_seconds") == last
    since = value(samples, "feedserver_seconds_since_last_success")
    assert started - last <= since <= ended - last
    assert value(samples, "feedserver_build_running_seconds") == 0
    assert value(samples, "feedserver_status_note", note="last_error") == 0
    assert value(samples, "feedserver_websub_subscriptions") == 0  # the built-in hub is on


def test_other_addresses_are_refused(client: FlaskClient) -> None:
    refused = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert refused.status_code == 404
    assert b"feedserver_http_requests_total" not in refused.data
    assert scrape(client, "::1")  # loopback over IPv6 is allowed by default


def test_metrics_allow_opens_a_network(settings: Settings, build: object) -> None:
    build()  # type: ignore[operator]
    app = create_app({"FEEDSERVER_SETTINGS": dataclasses.replace(
        settings, metrics_allow=("10.0.0.0/8",))})
    client = app.test_client()
    assert scrape(client, "10.1.2.3")
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 404


def test_empty_metrics_allow_turns_metrics_off(app: Flask, settings: Settings) -> None:
    off = create_app({"FEEDSERVER_SETTINGS": dataclasses.replace(settings, metrics_allow=())})
    assert "metrics" not in off.view_functions
    assert off.test_client().get("/metrics").status_code == 404
    assert "metrics" in app.view_functions


@pytest.mark.parametrize(("path", "kind"), [
    ("/feed.rss", "feed"), ("/topics/energy/feed.json", "feed"),
    ("/topics/energy/feed.html", "page"), ("/", "page"), ("/articles/x/", "page"),
    ("/embed/energy.js", "embed"), ("/embed/energy/", "embed"),
    ("/archive/2026/feed.rss", "archive"), ("/topics/x/archive-2.rss", "archive"),
    ("/feeds.opml", "other"), ("/healthz", "other"), ("/static/style.css", "other"),
    ("/metrics", "other"),
])
def test_route_kinds(path: str, kind: str) -> None:
    assert route_kind(path) == kind


def test_address_rules(settings: Settings) -> None:
    default = networks(settings)
    assert allowed("127.0.0.1", default) and allowed("127.8.9.1", default)
    assert allowed("::1", default) and allowed("::ffff:127.0.0.1", default)
    assert not allowed("192.0.2.1", default) and not allowed("", default)
    assert not allowed("not-an-ip", default)


def test_settings(tmp_path: object) -> None:
    loaded = load_settings(env={"FEEDSERVER_METRICS_ALLOW": "10.0.0.0/8, 192.0.2.5",
                                "FEEDSERVER_LOG_FORMAT": "json"})
    assert loaded.metrics_allow == ("10.0.0.0/8", "192.0.2.5/32")
    assert loaded.log_format == "json"
    assert load_settings(env={}).metrics_allow == ("127.0.0.0/8", "::1/128")
    with pytest.raises(ConfigError, match=r"metrics_allow.*'nope'"):
        load_settings(env={"FEEDSERVER_METRICS_ALLOW": "nope"})
    with pytest.raises(ConfigError, match="log_format"):
        load_settings(env={"FEEDSERVER_LOG_FORMAT": "xml"})
