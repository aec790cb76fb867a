"""The web app over a real build, through Flask's test client: routes, headers, HTTP rules."""

from __future__ import annotations

import gzip
import io
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import brotli
import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.core.freshness import channel_max_age
from feedserver.publish.output import ENCODINGS, etag_of
from feedserver.web.app import create_app
from feedserver.web.published import BodyCache
from tests.conftest import write
from tests.integration.test_build import source_titles

FEED_TYPES = {"rss": "application/rss+xml", "atom": "application/atom+xml",
              "json": "application/feed+json"}
CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Expose-Headers")


class Links(HTMLParser):
    """<link> and <a> elements of a page, as attribute dicts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []
        self.anchors: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "link":
            self.links.append(values)
        elif tag == "a":
            self.anchors.append(values.get("href", ""))

    def alternates(self) -> dict[str, str]:
        return {link["href"]: link["type"] for link in self.links if link["rel"] == "alternate"}


def local(url: str, settings: Settings) -> str:
    """The request path of one of our absolute URLs."""
    assert url.startswith(settings.base_url), url
    return "/" + url[len(settings.base_url):]


def catalog(client: FlaskClient) -> list[dict[str, Any]]:
    return client.get("/topics.json").get_json()["channels"]


def test_every_channel_is_served_with_its_media_type_and_validators(
        client: FlaskClient, settings: Settings) -> None:
    out = Path(settings.output_dir)
    channels = catalog(client)
    assert channels[0]["slug"] == "all" and len(channels) > 5
    for channel in channels:
        for fmt, url in channel["feeds"].items():
            response = client.get(local(url, settings))
            assert response.status_code == 200
            assert response.mimetype == FEED_TYPES[fmt]
            assert response.mimetype_params["charset"] == "utf-8"
            assert response.data == (out / local(url, settings)[1:]).read_bytes()
            assert response.headers["ETag"] == etag_of(response.data)
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Cache-Control"].startswith("public, max-age=")
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert "ETag" in response.headers["Access-Control-Expose-Headers"]
            assert response.last_modified is not None
        rss = client.get(local(channel["feeds"]["rss"], settings))
        parsed = feedparser.parse(io.BytesIO(rss.data),
                                  response_headers={"content-type": rss.content_type})
        assert not parsed.bozo and len(parsed.entries) == channel["items"]
        # Every format of a channel is fresh for as long as its own pace says: a quarter
        # of the median interval between its items' updates (feedserver.core.freshness).
        atom = feedparser.parse(io.BytesIO(client.get(local(channel["feeds"]["atom"],
                                                            settings)).data))
        updates = [datetime(*e.updated_parsed[:6], tzinfo=UTC) for e in atom.entries]
        fresh = channel_max_age(updates, settings.refresh_interval, settings.freshness_ceiling)
        assert {client.get(local(url, settings)).headers["Cache-Control"]
                for url in channel["feeds"].values()} == {f"public, max-age={fresh}"}
        assert int(parsed.feed.ttl) == -(-fresh // 60)


def test_pages_list_the_source_articles_with_autodiscovery(client: FlaskClient,
                                                           settings: Settings) -> None:
    index = client.get("/")
    assert index.status_code == 200 and index.mimetype == "text/html"
    assert "default-src 'none'" in index.headers["Content-Security-Policy"]
    assert "Access-Control-Allow-Origin" not in index.headers
    page = index.get_data(as_text=True)
    for title in source_titles(Path(settings.seeds_dir)):
        assert title.replace("'", "&#39;") in page
    found = Links(page)
    assert set(found.alternates().values()) == set(FEED_TYPES.values())
    channels = catalog(client)
    for channel in channels:  # every channel and each of its feeds is linked
        assert set(channel["feeds"].values()) <= set(found.anchors)
    topics = client.get("/topics/").get_data(as_text=True)
    for channel in channels[1:]:
        assert channel["html_url"] in topics
        html = client.get(local(channel["html_url"], settings)).get_data(as_text=True)
        assert set(Links(html).alternates()) == set(channel["feeds"].values())
        items = json.loads(client.get(local(channel["feeds"]["json"], settings)).data)["items"]
        for item in items:
            assert item["url"] in html


def test_article_pages_show_each_article(client: FlaskClient, settings: Settings) -> None:
    items = json.loads(client.get("/feed.json").data)["items"]
    assert len(items) == len(source_titles(Path(settings.seeds_dir)))
    for item in items:
        response = client.get(local(item["url"], settings))
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert item["content_html"] in html and item["date_published"] in html
        alternates = Links(html).alternates()
        assert f"{settings.base_url}feed.atom" in alternates


def test_untrusted_titles_are_escaped(build: Callable[..., BuildReport], settings: Settings,
                                      client: FlaskClient) -> None:
    write(Path(settings.seeds_dir) / "x.md",
          '---\ntitle: "<img src=x onerror=alert(1)> 1<2 & co"\ntags: [Evil <b>tag</b>]\n'
          '---\nBody.\n')
    build()
    page = client.get("/").get_data(as_text=True)
    # Tags leave plain-text fields (issue 12); what is left is text, escaped once.
    assert "1&lt;2 &amp; co" in page and "<img src=x" not in page and "onerror" not in page
    slug = next(c for c in catalog(client) if c["slug"] != "all" and "Evil" in c["title"])
    assert "<b>" not in client.get(local(slug["html_url"], settings)).get_data(as_text=True)


def test_opml_and_catalog_list_every_channel(client: FlaskClient, settings: Settings) -> None:
    response = client.get("/feeds.opml")
    assert response.mimetype == "text/x-opml"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    root = ET.fromstring(response.data)
    assert root.tag == "opml" and root.get("version") == "2.0"
    outlines = root.findall("./body/outline")
    channels = catalog(client)
    assert [o.get("xmlUrl") for o in outlines] == [c["feeds"]["rss"] for c in channels]
    assert [o.get("htmlUrl") for o in outlines] == [c["html_url"] for c in channels]
    assert {o.get("type") for o in outlines} == {"rss"}
    for channel in channels:
        assert set(channel) == {"slug", "title", "description", "html_url", "feeds", "items",
                                "updated", "kind", "language"}
        assert client.get(local(channel["html_url"], settings)).status_code == 200
    assert client.get("/topics.json").headers["Access-Control-Allow-Origin"] == "*"


def test_conditional_requests(client: FlaskClient) -> None:
    first = client.get("/topics/energy/feed.atom")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    kept = ("ETag", "Last-Modified", "Cache-Control", "Vary", *CORS_HEADERS)
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified},
                    {"If-None-Match": f'"other", {etag}'}, {"If-None-Match": "*"}):
        again = client.get("/topics/energy/feed.atom", headers=headers)
        assert again.status_code == 304 and again.data == b"", headers
        for name in kept:
            assert again.headers[name] == first.headers[name], name
    # If-None-Match wins: a different ETag means a full answer even if the date matches.
    stale = client.get("/topics/energy/feed.atom",
                       headers={"If-None-Match": '"old"', "If-Modified-Since": modified})
    assert stale.status_code == 200 and stale.data == first.data
    older = client.get("/topics/energy/feed.atom",
                       headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert older.status_code == 200


def test_head_matches_get(client: FlaskClient) -> None:
    for path in ("/", "/feed.rss", "/topics.json", "/topics/"):
        get, head = client.get(path), client.head(path)
        assert head.status_code == 200 and head.data == b""
        assert dict(head.headers) == dict(get.headers)
        assert int(head.headers["Content-Length"]) == len(get.data)


@pytest.mark.parametrize("accept,expected", [
    ("gzip", "gzip"), ("br", "br"), ("gzip, deflate, br", "br"), ("br;q=0.5, gzip", "gzip"),
    ("*", "br"), ("gzip;q=0, br;q=0", None), ("", None), ("identity", None),
])
def test_precompressed_bodies(client: FlaskClient, accept: str, expected: str | None) -> None:
    plain = client.get("/feed.rss")
    response = client.get("/feed.rss", headers={"Accept-Encoding": accept})
    assert response.headers.get("Content-Encoding") == expected
    assert response.headers["Vary"] == "Accept, Accept-Encoding"  # feeds negotiate HTML too
    decode = {"gzip": gzip.decompress, "br": brotli.decompress, None: bytes}[expected]
    assert decode(response.data) == plain.data
    assert (response.headers["ETag"] == plain.headers["ETag"]) == (expected is None)
    assert response.headers["ETag"] == etag_of(response.data)
    again = client.get("/feed.rss", headers={"Accept-Encoding": accept,
                                             "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.headers.get("Content-Encoding") is None


def test_host_header_is_never_used(client: FlaskClient) -> None:
    for path in ("/", "/feed.rss", "/feeds.opml", "/topics.json", "/nope"):
        normal = client.get(path)
        evil = client.get(path, headers={"Host": "evil.example",
                                         "X-Forwarded-Host": "evil.example"})
        assert evil.status_code == normal.status_code and evil.data == normal.data
        assert b"evil.example" not in evil.data
    redirect = client.get("/topics", headers={"Host": "evil.example"})
    assert redirect.status_code == 308 and redirect.headers["Location"] == "./topics/"


@pytest.mark.parametrize("raw", [
    "/../config.toml", "/%2e%2e/config.toml", "/topics/..%2f..%2fconfig.toml",
    "/topics/../../config.toml", "/.feedserver/manifest.json", "/.feedserver/status.json",
    "//etc/passwd", "/etc/passwd", "/topics/energy/..", "/feed.rss.gz", "/static/..%5cstatus",
])
def test_paths_outside_the_published_files_are_404(app: Flask, raw: str) -> None:
    client = app.test_client()
    response = client.get("/x", environ_overrides={"PATH_INFO": raw})
    assert response.status_code == 404, raw
    assert b"[topics" not in response.data and b"root:" not in response.data


def test_unknown_paths_and_methods(client: FlaskClient) -> None:
    html = client.get("/topics/no-such-topic/")
    assert html.status_code == 404 and html.mimetype == "text/html"
    assert b"Not found" in html.data and html.headers["X-Content-Type-Options"] == "nosniff"
    data = client.get("/topics/no-such-topic/feed.json")
    assert data.status_code == 404 and data.get_json()["status"] == 404
    assert client.get("/articles/nope/").status_code == 404
    assert client.post("/feed.rss").status_code == 405
    preflight = client.options("/feed.json")
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"]


def test_removed_topic_is_gone(build: Callable[..., BuildReport], settings: Settings,
                               client: FlaskClient) -> None:
    assert client.get("/topics/open-web/feed.rss").status_code == 200
    (Path(settings.seeds_dir) / "2026-11-03-feeds-still-matter.md").unlink()
    build()
    for path in ("/topics/open-web/feed.rss", "/topics/open-web/", "/topics/open-web/feed.json"):
        assert client.get(path).status_code == 410, path
    assert client.get("/topics/open-web/feed.json").get_json()["status"] == 410


def test_a_new_publish_is_served_without_restart(build: Callable[..., BuildReport],
                                                 settings: Settings,
                                                 client: FlaskClient) -> None:
    before = client.get("/feed.json")
    write(Path(settings.seeds_dir) / "fresh.md", "---\ntitle: Fresh news\n---\nNew.\n")
    build()
    after = client.get("/feed.json", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert "Fresh news" in [i["title"] for i in after.get_json(force=True)["items"]]


def test_etag_always_matches_the_body_sent(client: FlaskClient, settings: Settings,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A file replaced before the manifest (mid-publish): a worker that holds the body the
    manifest names sends it, with the manifest's validators, until the manifest names the
    new one; a worker that does not sends the file as it finds it, with its own ETag."""
    target = Path(settings.output_dir) / "feed.rss"
    old = client.get("/feed.rss")
    encoded_old = client.get("/feed.rss", headers={"Accept-Encoding": "gzip"})
    # Held bodies are answered without a look at the disk.
    looked: list[str] = []
    real_lstat = os.lstat
    monkeypatch.setattr(os, "lstat", lambda path, *a, **k: looked.append(str(path))
                        or real_lstat(path, *a, **k))
    assert client.get("/feed.rss").data == old.data and not looked
    monkeypatch.setattr(os, "lstat", real_lstat)
    replacement = target.with_name(".feed.rss.tmp")
    replacement.write_bytes(old.data.replace(b"</channel>", b"<!-- new --></channel>"))
    os.replace(replacement, target)
    held = client.get("/feed.rss")
    assert held.data == old.data and held.headers["ETag"] == old.headers["ETag"]
    assert held.headers["Last-Modified"] == old.headers["Last-Modified"]
    encoded = client.get("/feed.rss", headers={"Accept-Encoding": "gzip"})
    assert encoded.data == encoded_old.data and encoded.headers["ETag"] == etag_of(encoded.data)
    # A fresh worker (nothing held) reads the file: its own ETag, no Last-Modified.
    fresh = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    new = fresh.get("/feed.rss")
    assert new.data == target.read_bytes() and new.headers["ETag"] == etag_of(new.data)
    assert "Last-Modified" not in new.headers  # the manifest does not describe it yet
    assert fresh.get("/feed.rss", headers={"If-None-Match": old.headers["ETag"]}
                     ).status_code == 200
    assert fresh.get("/feed.rss", headers={"If-None-Match": new.headers["ETag"]}
                     ).status_code == 304


def test_healthz(settings: Settings, build: Callable[..., BuildReport]) -> None:
    client = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    empty = client.get("/healthz")
    assert empty.status_code == 503 and empty.get_json()["last_success"] is None
    assert not Path(settings.output_dir).exists()  # create_app builds nothing
    assert client.get("/feed.rss").status_code == 404
    write(Path(settings.seeds_dir) / "bad.md", "---\ntitle: [broken\n---\n")
    build()
    health = client.get("/healthz")
    body = health.get_json()
    assert health.status_code == 200 and body["status"] == "ok"
    assert body["last_success"].startswith("2026-11-27") and body["errors"] == 1
    assert body["problems"] >= 1 and health.headers["Cache-Control"] == "no-store"


def test_static_stylesheet_and_encodings_are_manifested(client: FlaskClient,
                                                       settings: Settings) -> None:
    html = client.get("/").get_data(as_text=True)
    css = next(link["href"] for link in Links(html).links if link["rel"] == "stylesheet")
    assert css.startswith("/static/style.css?v=")  # root-relative: styled at any address
    response = client.get(css)
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert b"max-width" in response.data
    for suffix in ENCODINGS.values():
        assert (Path(settings.output_dir) / f"static/style.css{suffix}").is_file()


def test_body_cache_is_bounded() -> None:
    cache = BodyCache(max_bytes=100)
    for n in range(10):
        cache.put(("f", f'"{n}"'), (f'"{n}"', b"x" * 20))
    assert cache.get(("f", '"0"')) is None and cache.get(("f", '"9"')) is not None
    cache.put(("big", '"b"'), ('"b"', b"x" * 90))  # more than a quarter: not kept
    assert cache.get(("big", '"b"')) is None
