"""Embeds and browser-friendly feeds through the web app (Flask test client over a real build)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import replace

import feedparser
import pytest
from flask.testing import FlaskClient

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.web.app import create_app
from feedserver.web.negotiate import feed_like, frame_ancestors, prefers_html

CHROME = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
          "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FEEDPARSER = ("application/atom+xml,application/rdf+xml,application/rss+xml,"
              "application/x-netcdf,application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1")
FEED_TYPES = {"feed.rss": "application/rss+xml", "feed.atom": "application/atom+xml",
              "feed.json": "application/feed+json"}


@pytest.mark.parametrize("accept,html", [
    (CHROME, True), (FIREFOX, True), ("text/html", True),
    ("", False), ("*/*", False), (FEEDPARSER, False),
    ("application/rss+xml, text/html", False),  # a tie goes to the feed
    ("text/html;q=0.7, application/atom+xml", False),
    ("application/json", False), ("text/*", False),
    ("text/html, application/xml", False),
    ("text/html;q=0.5, */*", False),  # the most specific range counts, not the highest q
    ("TEXT/HTML", True), ("text/html;q=abc, */*;q=0.1", False), ("text/html;q=0", False),
    ("text/html, " + "x/y;q=0.1, " * 300, False),  # too long to be a browser's
])
def test_only_a_browser_navigation_prefers_html(accept: str, html: bool) -> None:
    """The feeds' own types come from the manifest (here: the three published formats)."""
    assert prefers_html(accept, feed_like(f"{kind}; charset=utf-8"
                                          for kind in FEED_TYPES.values())) is html


@pytest.mark.parametrize("path", ["/feed.rss", "/feed.atom", "/feed.json",
                                  "/topics/energy/feed.rss", "/topics/energy/feed.json"])
def test_feed_urls_negotiate_between_feed_and_page(client: FlaskClient, path: str) -> None:
    kind = FEED_TYPES[path.rsplit("/", 1)[1]]
    for accept in (None, "*/*", FEEDPARSER, kind):
        reader = client.get(path, headers={"Accept": accept} if accept else {})
        assert reader.status_code == 200
        assert reader.headers["Content-Type"] == f"{kind}; charset=utf-8", accept
        assert reader.headers["Vary"] == "Accept, Accept-Encoding"
        assert reader.headers["Access-Control-Allow-Origin"] == "*"
    assert reader.headers["Cache-Control"].startswith("public, ")
    browser = client.get(path, headers={"Accept": CHROME})
    assert browser.headers["Content-Type"] == "text/html; charset=utf-8"
    assert browser.headers["Cache-Control"].startswith("private, ")  # never in a CDN
    assert browser.headers["Vary"] == "Accept, Accept-Encoding"
    assert browser.headers["ETag"] != reader.headers["ETag"]
    page = browser.get_data(as_text=True)
    assert "address bar" in page and f"<code>http://127.0.0.1:8000{path}</code>" in page


def items_of(client: FlaskClient, path: str) -> list[tuple[str, str]]:
    body = client.get(path).data
    if path.endswith(".json"):
        return [(i["title"], i["url"]) for i in json.loads(body)["items"]]
    feed = feedparser.parse(io.BytesIO(body))
    assert not feed.bozo
    return [(e.title, e.link) for e in feed.entries]


def test_readable_page_lists_the_feeds_items(client: FlaskClient) -> None:
    for path in ("/feed.atom", "/topics/energy/feed.json"):
        items = items_of(client, path)
        assert items
        page = client.get(path, headers={"Accept": CHROME}).get_data(as_text=True)
        positions = [page.index(f'href="{link}"') for _, link in items]
        assert positions == sorted(positions)


def test_each_representation_revalidates_on_its_own(client: FlaskClient) -> None:
    feed = client.get("/feed.rss", headers={"Accept": "*/*"})
    page = client.get("/feed.rss", headers={"Accept": CHROME})
    for accept, etag in (("*/*", feed.headers["ETag"]), (CHROME, page.headers["ETag"])):
        again = client.get("/feed.rss", headers={"Accept": accept, "If-None-Match": etag})
        assert again.status_code == 304 and again.headers["ETag"] == etag
        assert again.headers["Vary"] == "Accept, Accept-Encoding"
    # The page's validator does not revalidate the feed, nor the other way round.
    crossed = client.get("/feed.rss", headers={"Accept": "*/*",
                                               "If-None-Match": page.headers["ETag"]})
    assert crossed.status_code == 200 and crossed.data == feed.data


def test_widget_scripts_are_javascript_with_cors(client: FlaskClient, settings: Settings) -> None:
    for path in ("/embed/all.js", "/embed/energy.js", "/static/embed-widget.js"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/javascript; charset=utf-8"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    loader = client.get("/embed/energy.js").get_data(as_text=True)
    assert f'"{settings.base_url}topics/energy/feed.json"' in loader


def test_unknown_channel_widget_runs_the_quiet_fallback(client: FlaskClient) -> None:
    known = client.get("/static/embed-unknown.js")
    for path in ("/embed/no-such-topic.js", "/embed/x.js"):
        response = client.get(path)
        assert response.status_code == 200 and response.data == known.data
        assert 'feed: null' in response.get_data(as_text=True)
    for path in ("/embed/Bad_Name.js", "/embed/a/b.js", "/embed/.js", "/embed/nope/"):
        assert client.get(path).status_code == 404, path


def test_frame_may_be_embedded_and_pages_may_not(client: FlaskClient) -> None:
    frame = client.get("/embed/energy/")
    assert frame.status_code == 200
    assert "frame-ancestors *" in frame.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in frame.headers
    for path in ("/", "/topics/energy/", "/feed.html"):
        policy = client.get(path).headers["Content-Security-Policy"]
        assert policy.endswith("frame-ancestors 'self'"), path
    assert client.get("/embed/energy").status_code == 308


def test_frame_ancestors_comes_from_config(build: Callable[..., BuildReport],
                                           settings: Settings) -> None:
    strict = replace(settings, frame_ancestors="https://a.example https://b.example")
    build()
    client = create_app({"FEEDSERVER_SETTINGS": strict}).test_client()
    policy = client.get("/embed/all/").headers["Content-Security-Policy"]
    assert policy.endswith("frame-ancestors https://a.example https://b.example")
    # A value cannot smuggle another directive into the header.
    sneaky = replace(settings, frame_ancestors="'self'; script-src *")
    assert frame_ancestors(sneaky, "embed/all/index.html") == "'self' script-src *"
