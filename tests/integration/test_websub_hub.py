"""The built-in WebSub hub in one process: the web side records, the deliverer verifies,
pushes, retries and pings, against real HTTP servers on 127.0.0.1 (issue 19)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import feedparser
import pytest
from flask.testing import FlaskClient

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.schedule.scheduler import Refresher
from feedserver.web.app import create_app
from feedserver.websub.deliver import Deliverer
from feedserver.websub.store import HubStore
from tests.conftest import NOW
from tests.websub_kit import TestServer, links, signed, wait_for

SECRET = "s3cret"


@pytest.fixture
def hub_settings(settings: Settings) -> Settings:
    return replace(settings, hub_allow_private_callbacks=True)


@pytest.fixture
def built(hub_settings: Settings, build: Callable[..., BuildReport]) -> Settings:
    assert build().published
    return hub_settings


@pytest.fixture
def subscriber() -> Iterator[TestServer]:
    with TestServer() as server:
        yield server


@pytest.fixture
def deliverer(built: Settings) -> Iterator[Deliverer]:
    running = Deliverer(built)
    running.start()
    yield running
    running.stop()


def web(settings: Settings) -> FlaskClient:
    return create_app({"FEEDSERVER_SETTINGS": settings}).test_client()


def subscribe(settings: Settings, callback: str, topic: str = "feed.atom",
              secret: str = SECRET, mode: str = "subscribe", **extra: str) -> int:
    answer = web(settings).post("/websub", data={
        "hub.mode": mode, "hub.topic": settings.base_url + topic, "hub.callback": callback,
        "hub.secret": secret, **extra})
    return answer.status_code


def active(settings: Settings) -> int:
    return HubStore(settings.state_dir).counts(time.time())["subscribers"]


def test_feed_responses_name_the_hub_and_themselves_also_on_304(built: Settings) -> None:
    client = web(built)
    for path in ("feed.rss", "topics/energy/feed.atom", "feed.json"):
        first = client.get("/" + path)
        found = links(first.headers.to_wsgi_list())
        assert found == {"hub": [built.base_url + "websub"], "self": [built.base_url + path]}
        again = client.get("/" + path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304
        assert links(again.headers.to_wsgi_list()) == found
    assert "Link" not in client.get("/").headers
    assert "Link" not in client.get("/topics.json").headers


def test_the_hub_answers_requests_and_refuses_what_is_not_ours(built: Settings) -> None:
    client = web(built)
    assert client.get("/websub").status_code == 405
    assert subscribe(built, "http://127.0.0.1:9/cb", topic="index.html") == 400
    assert subscribe(built, "http://127.0.0.1:9/cb", topic="feed.xml") == 400
    private = replace(built, hub_allow_private_callbacks=False)
    answer = web(private).post("/websub", data={
        "hub.mode": "subscribe", "hub.topic": built.base_url + "feed.rss",
        "hub.callback": "http://127.0.0.1:9/cb"})
    assert answer.status_code == 400 and b"loopback, private" in answer.data
    assert subscribe(built, "http://127.0.0.1:9/cb") == 202
    assert web(replace(built, hubs=())).post("/websub").status_code == 405  # no hub: no route


def test_subscribe_verify_push_signed_and_unsubscribe(built: Settings, deliverer: Deliverer,
                                                      subscriber: TestServer) -> None:
    callback = subscriber.url + "cb?id=7"
    assert subscribe(built, callback, **{"hub.lease_seconds": "600"}) == 202
    assert wait_for(lambda: active(built) == 1, 10)
    check = subscriber.recorder.gets()[0]
    assert check.query["hub.mode"] == "subscribe" and check.query["id"] == "7"
    assert check.query["hub.lease_seconds"] == "600"
    assert check.query["hub.topic"] == built.base_url + "feed.atom"
    # A publish that changed an unrelated feed and a page pushes nothing to this subscriber.
    assert deliverer.published(["topics/energy/feed.atom", "index.html"]) == 0
    assert deliverer.published(["feed.atom", "feed.rss", "index.html"]) == 1
    assert wait_for(lambda: subscriber.recorder.posts(), 10)
    push = subscriber.recorder.posts()[0]
    body = (Path(built.output_dir) / "feed.atom").read_bytes()
    assert push.body == body and push.path == "/cb"
    assert signed(SECRET, body, push.headers["x-hub-signature"])
    assert push.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert links({"link": push.headers["link"]})["self"] == [built.base_url + "feed.atom"]
    assert len(feedparser.parse(io.BytesIO(push.body)).entries) > 0
    assert subscribe(built, callback, mode="unsubscribe") == 202
    assert wait_for(lambda: active(built) == 0, 10)
    assert deliverer.published(["feed.atom"]) == 0


def test_a_callback_that_did_not_ask_is_not_subscribed(built: Settings, deliverer: Deliverer,
                                                       subscriber: TestServer) -> None:
    subscriber.recorder.confirm = False
    assert subscribe(built, subscriber.url + "cb") == 202
    assert wait_for(lambda: subscriber.recorder.gets(), 10)
    time.sleep(0.3)
    assert active(built) == 0
    assert deliverer.published(["feed.atom"]) == 0


def test_one_slow_subscriber_never_delays_another(built: Settings, deliverer: Deliverer,
                                                  subscriber: TestServer) -> None:
    release = threading.Event()
    subscriber.recorder.hold["/slow"] = release  # answers only when the test says so
    for path in ("slow", "fast"):
        assert subscribe(built, subscriber.url + path) == 202
    assert wait_for(lambda: active(built) == 2, 10)
    assert deliverer.published(["feed.atom"]) == 2
    try:
        assert wait_for(lambda: {p.path for p in subscriber.recorder.posts()} ==
                        {"/slow", "/fast"}, 10), "the fast subscriber waited for the slow one"
    finally:
        release.set()


def test_failures_are_retried_with_backoff_and_dropped_after_the_retry_time(
        built: Settings, subscriber: TestServer) -> None:
    store = HubStore(built.state_dir)
    deliverer = Deliverer(built, store)  # not started: the test takes each step itself
    assert subscribe(built, subscriber.url + "cb") == 202
    (intent,) = store.take_intents()
    assert deliverer.verify(intent)
    subscriber.recorder.push_status += [500, 503]
    assert deliverer.published(["feed.atom"]) == 1
    (job,) = store.due(time.time())
    deliverer.run_job(job)
    ((_, _, _, attempts, next_at, error),) = store.queued()
    assert (attempts, error) == (1, "HTTP 500") and next_at - time.time() > 1.0
    assert store.due(time.time()) == []  # not before its time
    (job,) = store.due(next_at)
    deliverer.run_job(job)
    assert store.queued()[0][3:6:2] == (2, "HTTP 503")
    (job,) = store.due(time.time() + 10)
    deliverer.run_job(job)  # 200
    assert store.queued() == [] and len(subscriber.recorder.posts()) == 3
    short = Deliverer(replace(built, hub_retry_seconds=1), store)
    subscriber.recorder.push_status.append(500)
    assert short.published(["feed.atom"]) == 1
    (job,) = store.due(time.time())
    short.run_job(job)
    assert store.queued() == []  # dropped: the next try would be past hub_retry_seconds


def test_gone_and_expired_subscribers_get_nothing(built: Settings,
                                                  subscriber: TestServer) -> None:
    store = HubStore(built.state_dir)
    deliverer = Deliverer(built, store)
    for path in ("gone", "brief"):
        assert subscribe(built, subscriber.url + path,
                         **({"hub.lease_seconds": "1"} if path == "brief" else {})) == 202
    for intent in store.take_intents():
        assert deliverer.verify(intent)
    subscriber.recorder.push_status.append(410)
    assert deliverer.published(["feed.atom"]) == 2
    for job in store.due(time.time()):
        if job.target.endswith("gone"):
            deliverer.run_job(job)
    assert store.subscription(built.base_url + "feed.atom", subscriber.url + "gone",
                              time.time()) is None
    later = time.time() + 2  # the 1-second lease has run out
    assert store.subscription(built.base_url + "feed.atom", subscriber.url + "brief",
                              later) is None
    assert store.expire(later) == 1 and store.per_topic(later) == {}


def test_external_hubs_are_pinged_for_changed_feeds_and_failures_show_in_healthz(
        built: Settings, subscriber: TestServer) -> None:
    settings = replace(built, hubs=(subscriber.url + "hub",))
    store = HubStore(settings.state_dir)
    deliverer = Deliverer(settings, store)
    assert deliverer.published(["feed.rss", "feed.atom", "index.html", "feeds.opml"]) == 2
    subscriber.recorder.push_status.append(502)
    jobs = store.due(time.time())
    assert {(j.kind, j.topic) for j in jobs} == {("ping", settings.base_url + "feed.rss"),
                                                 ("ping", settings.base_url + "feed.atom")}
    deliverer.run_job(jobs[0])
    health = web(settings).get("/healthz").get_json()
    assert health["status"] == "degraded" and "hub_error" in health["websub"]
    assert health["websub"]["queued_pings"] == 2 and health["websub"]["failing"] == 1
    for job in store.due(time.time() + 60):
        deliverer.run_job(job)
    health = web(settings).get("/healthz").get_json()
    assert health["status"] == "ok" and "hub_error" not in health["websub"]
    bodies = sorted(p.body for p in subscriber.recorder.posts())
    assert len(bodies) == 3 and all(b.startswith(b"hub.mode=publish&hub.url=") for b in bodies)


def test_the_scheduler_hands_over_exactly_what_a_publish_changed(
        hub_settings: Settings, site_dir: Path) -> None:
    job = Refresher(hub_settings, clock=lambda: NOW)
    handed: list[list[str]] = []
    job.after_publish = handed.append
    assert job.run("test").report is not None
    assert handed and "feed.atom" in handed[0]
    job.run("test")  # nothing changed: nothing written, nothing handed over
    assert len(handed) == 1

    def broken(paths: list[str]) -> None:
        raise RuntimeError("the hub's store is locked")

    job.after_publish = broken
    (site_dir / "seeds" / "new.md").write_text('+++\ntitle = "New"\ndate = 2026-11-27\n+++\n\nx\n')
    assert job.run("test").report.published  # type: ignore[union-attr]  # never fails a run


def test_a_queued_push_outlives_its_process(built: Settings, subscriber: TestServer) -> None:
    store = HubStore(built.state_dir)
    first = Deliverer(built, store)
    assert subscribe(built, subscriber.url + "cb") == 202
    (intent,) = store.take_intents()
    assert first.verify(intent)
    assert first.published(["feed.atom"]) == 1
    del first  # never ran: as if the process had stopped
    again = Deliverer(built, HubStore(built.state_dir))
    again.start()
    try:
        assert wait_for(lambda: subscriber.recorder.posts(), 10)
    finally:
        again.stop()
    assert wait_for(lambda: store.queued() == [], 5)


def test_a_renewal_replaces_the_lease_and_the_secret(built: Settings,
                                                     subscriber: TestServer) -> None:
    store = HubStore(built.state_dir)
    deliverer = Deliverer(built, store)
    topic, callback = built.base_url + "feed.atom", subscriber.url + "cb"
    assert subscribe(built, callback, secret="old", **{"hub.lease_seconds": "60"}) == 202
    (intent,) = store.take_intents()
    assert deliverer.verify(intent)
    first = store.subscription(topic, callback, time.time())
    assert first is not None and first.secret == "old" and first.lease_seconds == 60
    assert subscribe(built, callback, secret="new", **{"hub.lease_seconds": "3600"}) == 202
    (intent,) = store.take_intents()
    assert deliverer.verify(intent)
    renewed = store.subscription(topic, callback, time.time() + 120)  # past the old lease
    assert renewed is not None and renewed.secret == "new" and renewed.lease_seconds == 3600
    assert store.per_topic(time.time()) == {topic: 1}


def test_a_callback_checked_again_at_delivery_time_is_refused_and_dropped(
        built: Settings, subscriber: TestServer) -> None:
    """The address is checked when a push is sent too (a name may resolve elsewhere by
    then); here the rule itself changed: private callbacks are no longer allowed."""
    store = HubStore(built.state_dir)
    assert subscribe(built, subscriber.url + "cb") == 202
    (intent,) = store.take_intents()
    assert Deliverer(built, store).verify(intent)
    strict = Deliverer(replace(built, hub_allow_private_callbacks=False), store)
    assert strict.published(["feed.atom"]) == 1
    (job,) = store.due(time.time())
    strict.run_job(job)
    assert subscriber.recorder.posts() == [] and store.queued() == []
    assert store.per_topic(time.time()) == {}


def test_a_callback_that_trickles_is_cut_off(built: Settings) -> None:
    """One byte every 0.1 s forever: the whole exchange is bounded, not each read."""
    import socket

    from feedserver.websub import addresses

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b"X")
                except OSError:
                    return
                time.sleep(0.1)

    threading.Thread(target=trickle, daemon=True).start()
    port = listener.getsockname()[1]
    target = addresses.check(f"http://127.0.0.1:{port}/cb", True, frozenset())
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(addresses.call(target, "POST", b"x", {}, timeout=0.5))
        except OSError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(20)
    stop.set()
    listener.close()
    assert not caller.is_alive(), "the request was not cut off"
    assert len(outcome) == 1 and isinstance(outcome[0], TimeoutError)


def test_a_computed_feed_names_no_hub(built: Settings) -> None:
    """A filtered or combined feed is computed per request: no publish is told to a hub
    about it, and the hub refuses its URL as a topic.  Naming the hub there (in the
    document or a Link header) sent subscribers to a subscription that is refused, or,
    at an external hub, one that is never pushed to."""
    client = web(built)
    listed = client.get("/topics.json").get_json()["channels"]
    a, b = sorted(c["slug"] for c in listed if c["kind"] not in ("all", "language"))[:2]
    for path in ("feed.atom?limit=1", "feed.rss?limit=2", f"topics/{a},{b}/feed.atom",
                 f"topics/{a}+{b}/feed.rss?limit=3"):
        got = client.get("/" + path)
        assert got.status_code == 200, path
        assert links(got.headers.to_wsgi_list()) == {"self": [built.base_url + path]}, path
        parsed = feedparser.parse(io.BytesIO(got.data))
        assert not parsed.bozo and parsed.entries, path
        assert [x.rel for x in parsed.feed.links if x.rel == "hub"] == [], path
        assert subscribe(built, "http://127.0.0.1:9/cb", topic=path) == 400, path
    listed_json = client.get("/feed.json?limit=1")
    assert "hubs" not in listed_json.get_json() and "rel=\"hub\"" not in str(
        listed_json.headers.get_all("Link"))
