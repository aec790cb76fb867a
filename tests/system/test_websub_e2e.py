"""End to end: WebSub against a real `feedserver serve` on 127.0.0.1 (issue 19).

A subscriber on another 127.0.0.1 port (:mod:`tests.websub_kit`) discovers the
hub from a feed's Link headers, subscribes, answers the challenge, and gets the
new feed pushed, signed, when an article is added to seeds/; an unsubscribed
callback gets nothing; a push answered with 500 is retried, across a restart of
the server.  External hub mode: a stand-in hub gets one ping per changed feed.
The server runs with ``hub_allow_private_callbacks`` (the subscriber is on
loopback) and a short ``refresh_interval``; the file watcher publishes at once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from tests.conftest import due_by_now, recent
from tests.system.test_serve_e2e import free_port, stop, wait_ready
from tests.websub_kit import TestServer, discover, hub_request, links, signed, wait_for

# Serial, in the `timing` group (these run one at a time, beside the fault tests): asserts the
# push arrives within 2 s.
pytestmark = [pytest.mark.serial, pytest.mark.xdist_group("timing")]


SECRET = "correct horse battery staple"


@contextlib.contextmanager
def serving(site: Path, port: int, **extra: str) -> Iterator[str]:
    """``feedserver serve`` (2 workers) on ``port``, ready; stopped by its PID after."""
    url = f"http://127.0.0.1:{port}/"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env.update(FEEDSERVER_BASE_URL=url, FEEDSERVER_SEEDS_DIR=str(site / "seeds"),
               FEEDSERVER_OUTPUT_DIR=str(site / "public"),
               FEEDSERVER_STATE_DIR=str(site / "state"), FEEDSERVER_REFRESH_INTERVAL="5",
               FEEDSERVER_HUB_ALLOW_PRIVATE_CALLBACKS="true", **extra)
    log = site / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "feedserver", "serve", "--port", str(port), "--workers", "2"],
            cwd=site, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(url, process, log)
        yield url
    finally:
        stop(process)


def healthz(url: str) -> dict:
    with urllib.request.urlopen(url + "healthz", timeout=10) as response:
        return json.loads(response.read())


def add_article(site: Path, name: str, title: str) -> None:
    """Write an article the way an editor saves one (the watcher publishes it)."""
    (site / "seeds" / f"{name}.md").write_text(
        f'+++\ntitle = "{title}"\ndate = {recent(0.5)}\nlang = "en"\n+++\n\n'
        'Pushed, not polled.\n',
        encoding="utf-8")


def subscribe(url: str, subscriber: TestServer, callback: str, feed: str = "feed.atom",
              secret: str = SECRET) -> str:
    """Discover, subscribe, and wait until the hub counts the subscription; the topic."""
    hub, topic = discover(url + feed)
    assert hub == url + "websub" and topic == url + feed
    before = healthz(url)["websub"]["subscribers"]
    status, text = hub_request(hub, "subscribe", topic, callback, secret=secret)
    assert status == 202, text
    assert wait_for(lambda: healthz(url)["websub"]["subscribers"] == before + 1, 10), \
        "the subscription was not verified"
    check = [s for s in subscriber.recorder.gets() if s.path == urlsplit_path(callback)][-1]
    assert check.query["hub.mode"] == "subscribe" and check.query["hub.topic"] == topic
    assert int(check.query["hub.lease_seconds"]) > 0
    return topic


def urlsplit_path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


@pytest.fixture
def site(site_dir: Path) -> Path:
    due_by_now(site_dir / "seeds")
    return site_dir


def test_a_subscriber_gets_the_new_feed_pushed_and_signed(site: Path) -> None:
    with TestServer() as subscriber, serving(site, free_port()) as url:
        callback = subscriber.url + "cb/atom"
        gone = subscriber.url + "cb/gone"
        topic = subscribe(url, subscriber, callback)
        subscribe(url, subscriber, gone)
        status, _ = hub_request(url + "websub", "unsubscribe", topic, gone)
        assert status == 202
        assert wait_for(lambda: healthz(url)["websub"]["subscribers"] == 1, 10)

        written = time.monotonic()
        add_article(site, "websub-push", "Pushed within two seconds")
        assert wait_for(lambda: any(p.path == "/cb/atom" for p in subscriber.recorder.posts()),
                        2.0), "no push within 2 s"
        push = next(p for p in subscriber.recorder.posts() if p.path == "/cb/atom")
        assert push.at - written <= 2.0
        assert push.headers["content-type"].startswith("application/atom+xml")
        assert signed(SECRET, push.body, push.headers["x-hub-signature"])
        assert not signed("another secret", push.body, push.headers["x-hub-signature"])
        found = links({"link": push.headers["link"]})
        assert found["hub"] == [url + "websub"] and found["self"] == [topic]
        parsed = feedparser.parse(io.BytesIO(push.body))
        assert not parsed.bozo
        assert "Pushed within two seconds" in [e.title for e in parsed.entries]
        served = feedparser.parse(topic)
        assert [e.id for e in served.entries] == [e.id for e in parsed.entries]
        # The unsubscribed callback got the verification of its unsubscription, no push.
        time.sleep(0.5)
        assert not [p for p in subscriber.recorder.posts() if p.path == "/cb/gone"]
        assert [g.query["hub.mode"] for g in subscriber.recorder.gets()
                if g.path == "/cb/gone"] == ["subscribe", "unsubscribe"]


def test_a_failed_push_is_retried_across_a_restart(site: Path) -> None:
    port = free_port()
    with TestServer() as subscriber:
        with serving(site, port) as url:
            callback = subscriber.url + "cb/rss"
            subscribe(url, subscriber, callback, feed="feed.rss")
            subscriber.recorder.push_status.append(500)  # the first push fails
            add_article(site, "websub-retry", "Delivered after a restart")
            assert wait_for(lambda: subscriber.recorder.posts(), 10), "no push attempted"
            assert wait_for(lambda: healthz(url)["websub"]["failing"] == 1, 5)
        # Stopped before the retry (2 s later) was due; the queue is in state/.
        assert len(subscriber.recorder.posts()) == 1
        with serving(site, port) as url:
            assert wait_for(lambda: len(subscriber.recorder.posts()) >= 2, 15), \
                "the failed push was not retried after the restart"
            retry = subscriber.recorder.posts()[1]
            assert signed(SECRET, retry.body, retry.headers["x-hub-signature"])
            titles = [e.title for e in feedparser.parse(io.BytesIO(retry.body)).entries]
            assert "Delivered after a restart" in titles
            assert wait_for(lambda: healthz(url)["websub"]["failing"] == 0, 5)


def test_external_hubs_get_one_ping_per_changed_feed(site: Path) -> None:
    with TestServer() as hub, serving(site, free_port(), FEEDSERVER_HUBS=hub.url) as url:
        with urllib.request.urlopen(url + "feed.json", timeout=10) as response:
            assert links(response.headers.items())["hub"] == [hub.url]
            assert json.loads(response.read())["hubs"] == [{"type": "WebSub", "url": hub.url}]
        pinged_at_start = len(hub.recorder.posts())
        # An English article with no topic: only the "all" channel's and the English
        # channel's three feeds change.
        add_article(site, "websub-ping", "Only the all channel changes")
        expected = {url + folder + name for folder in ("", "languages/en/")
                    for name in ("feed.rss", "feed.atom", "feed.json")}
        assert wait_for(lambda: len(hub.recorder.posts()) - pinged_at_start >= 6, 10)
        time.sleep(1.0)  # nothing else may follow
        pings = hub.recorder.posts()[pinged_at_start:]
        topics = [urllib.parse.parse_qs(p.body.decode())["hub.url"][0] for p in pings]
        assert sorted(topics) == sorted(expected)
        assert all(urllib.parse.parse_qs(p.body.decode())["hub.mode"] == ["publish"]
                   for p in pings)
        # No built-in hub in this mode: /websub is not there.
        status, _ = hub_request(url + "websub", "subscribe", url + "feed.atom", hub.url)
        assert status == 405  # POST goes nowhere
