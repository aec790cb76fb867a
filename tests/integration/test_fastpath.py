"""The request fast path (:mod:`feedserver.web.fastpath`) answers as Flask's view does.

Two apps over one built site: the shipped one (fast path in front of Flask) and one
with ``FEEDSERVER_FAST_PATH = False`` (every request through the Flask view).  For every
published file and for feeds in every negotiation case (encodings, validators, HEAD, a
browser's Accept) the two give the same status, headers and body; the fast path
really answered those (the Flask view was not called), and left the rest to Flask.
Every other HTTP test of the web app runs through the fast path too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.metrics import instruments
from feedserver.publish.manifest import load_manifest
from feedserver.web.app import create_app

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FEEDS = ["/feed.rss", "/feed.atom", "/feed.json", "/topics/energy/feed.rss"]
Answer = tuple[int, list[tuple[str, str]], bytes]


@pytest.fixture
def apps(build: Callable[..., BuildReport], settings: Settings) -> tuple[Flask, Flask]:
    report = build()
    assert report.published and not report.errors
    return (create_app({"FEEDSERVER_SETTINGS": settings}),
            create_app({"FEEDSERVER_SETTINGS": settings, "FEEDSERVER_FAST_PATH": False}))


def answer(client: FlaskClient, method: str, path: str, headers: dict[str, str]) -> Answer:
    response = client.open(path, method=method, headers=headers)
    return response.status_code, sorted(response.headers.items()), response.get_data()


def views_called(app: Flask) -> list[str]:
    """Paths the Flask file view was asked for, from now on."""
    calls: list[str] = []
    view = app.view_functions["file"]

    def counted(path: str = "") -> object:
        calls.append(path)
        return view(path)

    app.view_functions["file"] = counted
    return calls


def published(settings: Settings) -> list[str]:
    files = load_manifest(Path(settings.output_dir))["files"]
    return sorted("/" + path.removesuffix("index.html") for path in files
                  if not path.startswith(".feedserver/"))


def test_every_published_file_is_answered_alike_without_the_flask_view(
        apps: tuple[Flask, Flask], settings: Settings) -> None:
    fast, slow = apps
    calls = views_called(fast)
    paths = published(settings)
    assert "/feed.rss" in paths and "/" in paths
    for path in paths:
        if "/media/" in path:  # byte ranges: Flask's (below)
            continue
        for headers in ({}, {"Accept-Encoding": "gzip, br"}):
            assert answer(fast.test_client(), "GET", path, headers) == \
                answer(slow.test_client(), "GET", path, headers), (path, headers)
    assert calls == []


@pytest.mark.parametrize("path", FEEDS)
def test_feeds_negotiate_and_revalidate_as_flask_does(apps: tuple[Flask, Flask],
                                                      path: str) -> None:
    fast, slow = apps
    calls = views_called(fast)
    plain = fast.test_client().get(path)
    assert plain.status_code == 200
    if path.endswith(".json"):
        assert json.loads(plain.get_data())["items"], path
    else:
        parsed = feedparser.parse(plain.get_data())
        assert not parsed.bozo and parsed.entries, path
    etag, modified = plain.headers["ETag"], plain.headers["Last-Modified"]
    cases = [("GET", {}), ("HEAD", {}), ("HEAD", {"Accept-Encoding": "gzip"}),
             ("GET", {"Accept-Encoding": "gzip"}), ("GET", {"Accept-Encoding": "br"}),
             ("GET", {"Accept-Encoding": "gzip;q=1, br;q=0.5"}),
             ("GET", {"Accept-Encoding": "gzip;q=0, identity"}),
             ("GET", {"Accept-Encoding": "*"}),
             ("GET", {"If-None-Match": etag}), ("GET", {"If-None-Match": f"W/{etag}"}),
             ("GET", {"If-None-Match": '"other", ' + etag}),
             ("GET", {"If-None-Match": '"other"'}), ("GET", {"If-Modified-Since": modified}),
             ("GET", {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}),
             ("HEAD", {"If-None-Match": etag}),
             ("GET", {"Accept": BROWSER}), ("GET", {"Accept": BROWSER, "Accept-Encoding": "br"}),
             ("GET", {"Accept": "application/rss+xml, text/html;q=0.5"})]
    for method, headers in cases:
        got = answer(fast.test_client(), method, path, headers)
        assert got == answer(slow.test_client(), method, path, headers), (method, headers)
        if method == "HEAD":
            assert got[2] == b""
    assert len(calls) == 0
    assert fast.test_client().get(path + "?utm=x").get_data() == plain.get_data()


@pytest.mark.parametrize("method,path", [
    ("GET", "/no-such-file.rss"), ("GET", "/topics/energy"), ("GET", "/healthz"),
    ("OPTIONS", "/feed.json"), ("POST", "/feed.rss"), ("GET", "/topics/../feed.rss"),
    ("GET", "/topics//energy/feed.rss"), ("GET", "/nowhere.json"),
])
def test_everything_else_is_flasks(apps: tuple[Flask, Flask], method: str, path: str) -> None:
    fast, slow = apps
    got = answer(fast.test_client(), method, path, {})
    assert got[0] != 200 or path == "/healthz"
    if path != "/healthz":  # its body holds the time
        assert got == answer(slow.test_client(), method, path, {})


def test_a_route_added_later_wins_over_a_file(apps: tuple[Flask, Flask]) -> None:
    """Another change may add a route whose path a file has: Flask's routing decides."""
    fast, _ = apps
    fast.add_url_rule("/feed.json", "mine", lambda: "from a route")
    fast.add_url_rule("/api/<name>", "api", lambda name: f"api {name}")
    assert fast.test_client().get("/feed.json").get_data() == b"from a route"
    assert fast.test_client().get("/feed.rss").status_code == 200


def test_the_poll_budget_holds_on_the_fast_path(build: Callable[..., BuildReport],
                                               settings: Settings) -> None:
    assert build().published
    app = create_app({"FEEDSERVER_SETTINGS": replace(settings, poll_budget=1)})
    calls = views_called(app)
    client = app.test_client()
    first = client.get("/topics/energy/feed.rss")
    refused = client.get("/topics/energy/feed.atom")
    assert (first.status_code, refused.status_code) == (200, 429)
    assert refused.headers["Cache-Control"] == "no-store" and int(refused.headers["Retry-After"])
    assert refused.mimetype == "text/plain" and b"429 Too Many Requests" in refused.get_data()
    again = client.get("/topics/energy/feed.rss", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert calls == []


def test_fast_answers_are_counted(apps: tuple[Flask, Flask]) -> None:
    fast, _ = apps
    tools = instruments.get()
    assert not tools.multiprocess

    def count(status: str, encoding: str) -> float:
        return tools.registry.get_sample_value(
            "feedserver_http_requests_total",
            {"kind": "feed", "status": status, "encoding": encoding}) or 0.0

    before = count("200", "gzip"), count("304", "identity")
    client = fast.test_client()
    etag = client.get("/feed.atom", headers={"Accept-Encoding": "gzip"}).headers["ETag"]
    client.get("/feed.atom", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    fast.wsgi_app.counts.flush()  # added in batches: as a scrape of this worker does
    assert (count("200", "gzip"), count("304", "identity")) == (before[0] + 1, before[1] + 1)


def topic_pair(app: Flask) -> tuple[str, str]:
    """Two topics of the built site, sorted."""
    listed = json.loads(app.test_client().get("/topics.json").get_data())["channels"]
    slugs = sorted(c["slug"] for c in listed if c["kind"] not in ("all", "language"))
    assert len(slugs) >= 2
    return slugs[0], slugs[1]


@pytest.mark.parametrize("path,computed", [
    ("/feed.atom?limit=1", True), ("/feed.rss?limit=2&utm=x", False),  # 308 to ?limit=2
    ("/topics/energy/feed.json?limit=1", True), ("/topics/{a},{b}/feed.atom", True),
    ("/topics/{a}+{b}/feed.rss?limit=5", True),
    ("/feed.atom?since=2000-01-01T00%3A00%3A00Z", True),
    ("/feed.atom?since=2000-01-01T00:00:00Z", False),  # 308 to its canonical spelling
    ("/topics/{b},{a}/feed.atom?limit=2", False),  # 308 to the sorted URL
    ("/topics/{a},nosuchtopic/feed.atom", False),  # 404
    ("/feed.atom?limit=0", False), ("/feed.json?since=yesterday", False),  # 400
    ("/feed.atom?utm=x", False),  # no filter: the published file, Flask's view
    ("/nowhere.atom?limit=1", False), ("/topics/{a}/?limit=1", False),
    # Arguments parsed as flask.request.args parses them, whoever answers:
    ("/feed.atom?limit=2&utm=1&limit=3", None), ("/feed.atom?q=%FF%FE", None),
    ("/feed.atom?q=caf%C3%A9&limit=2", None), ("/feed.atom?q=a+b&since=", None),
    ("/feed.atom?limit", None), ("/feed.atom?&&limit=1&", None),
])
def test_filtered_and_combined_feeds_are_answered_as_flask_does(
        apps: tuple[Flask, Flask], path: str, computed: bool | None) -> None:
    """A computed feed (issue 14) is answered by the fast path with Flask's view's very
    status, headers and body, in every negotiation case; the rest is left to Flask."""
    fast, slow = apps
    a, b = topic_pair(fast)
    path = path.format(a=a, b=b)
    calls = views_called(fast)
    first = fast.test_client().get(path)
    cases: list[tuple[str, dict[str, str]]] = [
        ("GET", {}), ("HEAD", {}), ("GET", {"Accept-Encoding": "gzip"}),
        ("GET", {"Accept-Encoding": "br"}), ("HEAD", {"Accept-Encoding": "br"})]
    if first.status_code == 200:
        cases += [("GET", {"If-None-Match": first.headers["ETag"]}),
                  ("GET", {"If-Modified-Since": first.headers["Last-Modified"]}),
                  ("GET", {"If-None-Match": '"other"'})]
    for method, headers in cases:
        got = answer(fast.test_client(), method, path, headers)
        assert got == answer(slow.test_client(), method, path, headers), (method, headers)
    if computed is not None:
        assert (calls == []) is computed, calls
    if computed:
        assert first.status_code == 200
        if not path.partition("?")[0].endswith(".json"):
            parsed = feedparser.parse(first.get_data())
            assert not parsed.bozo and parsed.entries
        if "?" in path:  # not the published file's bytes under the filtered URL
            whole = fast.test_client().get(path.partition("?")[0])
            assert first.headers["ETag"] != whole.headers.get("ETag")
