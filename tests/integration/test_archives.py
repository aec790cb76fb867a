"""Full history (RFC 5005): archive pages, their links, their stability and their HTML.

A site of 11 articles (more than twice ``archive_size`` = 4) in five channels ('all',
three tags, two languages), built for real and read through the web app: every
channel's chain of archive documents, in all three formats, reaches each of its source
articles on exactly one page; full pages keep their bytes when articles arrive; the
HTML listings paginate the same way.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import Headers

from feedserver.build.run import BuildMemory, BuildReport, run_build
from feedserver.config import Settings, load_settings
from feedserver.web.app import create_app
from feedserver.websub.deliver import feed_paths
from tests.archive_kit import (
    MAX_ITEMS,
    SIZE,
    article_text,
    check_chain,
    config,
    expected,
    make_seeds,
)
from tests.conftest import misread_title, write

COUNT = 11
BASE = "http://history.example/"


@pytest.fixture
def now() -> datetime:
    """The real clock (the articles are all dated January 2026, always in the past)."""
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def site(tmp_path: Path) -> Settings:
    make_seeds(tmp_path / "seeds", COUNT)
    (tmp_path / "config.toml").write_text(config(f'base_url = "{BASE}"\n'), encoding="utf-8")
    return load_settings(tmp_path / "config.toml", env={})


def built(settings: Settings, when: datetime) -> BuildReport:
    report = run_build(settings, now=when)
    assert report.published and not report.errors, report.problems
    return report


@pytest.fixture
def client(site: Settings, now: datetime) -> FlaskClient:
    built(site, now)
    return create_app({"FEEDSERVER_SETTINGS": site}).test_client()


def fetcher(client: FlaskClient) -> Any:
    def fetch(url: str) -> tuple[bytes, Headers]:
        assert url.startswith(BASE), url
        response = client.get("/" + url.removeprefix(BASE))
        assert response.status_code == 200, url
        return response.data, response.headers
    return fetch


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_every_channel_reaches_each_of_its_articles_on_exactly_one_page(
        client: FlaskClient, fmt: str) -> None:
    channels = expected(COUNT)
    catalog = client.get("/topics.json").get_json()["channels"]
    folders = {c["html_url"].removeprefix(BASE) for c in catalog}
    assert folders == set(channels)  # 'all', odd, even, triple, en, ru: nothing else
    for folder, titles in channels.items():
        check_chain(fetcher(client), BASE, folder, fmt, titles)
    # A history its subscription documents hold whole (max_items) has no archive pages.
    assert len(channels["topics/triple/"]) <= MAX_ITEMS
    assert client.get("/topics/triple/archive/1/feed.atom").status_code == 404


def test_full_pages_are_immutable_and_the_newest_gets_the_channels_hints(
        client: FlaskClient) -> None:
    subscription = client.get("/feed.atom")
    assert "immutable" not in subscription.headers["Cache-Control"]
    for number in (1, 2):  # 8 of the 11 articles: two full pages
        full = client.get(f"/archive/{number}/feed.atom")
        assert full.headers["Cache-Control"] == "public, max-age=604800, immutable"
        assert full.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
        assert client.get(f"/archive/{number}/feed.json").headers["Content-Type"] == \
            "application/feed+json; charset=utf-8"
        assert client.get(f"/archive/{number}/feed.rss").headers["Content-Type"] == \
            "application/rss+xml; charset=utf-8"
    newest = client.get("/archive/3/feed.atom")
    assert newest.headers["Cache-Control"] == subscription.headers["Cache-Control"]
    assert client.get("/archive/4/feed.atom").status_code == 404
    # A conditional request for a full page is still answered 304 by its ETag.
    etag = client.get("/archive/1/feed.rss").headers["ETag"]
    assert client.get("/archive/1/feed.rss", headers={"If-None-Match": etag}).status_code == 304



def test_full_pages_are_compressed_in_gzip_only(client: FlaskClient, site: Settings) -> None:
    """A full page is fetched once per reader and never changes: brotli's few percent
    over gzip were not worth compressing every page of a history twice at every cold
    build.  The pages that change (the newest, the subscription documents) keep both."""
    import gzip

    out = Path(site.output_dir)
    both = {"Accept-Encoding": "br, gzip"}
    for name in ("feed.atom", "feed.rss", "feed.json"):
        for number in (1, 2):
            rel = f"archive/{number}/{name}"
            assert (out / f"{rel}.gz").is_file() and not (out / f"{rel}.br").exists(), rel
            answer = client.get(f"/{rel}", headers=both)
            assert answer.headers["Content-Encoding"] == "gzip", rel
            assert gzip.decompress(answer.data) == (out / rel).read_bytes(), rel
        for rel in (f"archive/3/{name}", name):
            assert (out / f"{rel}.br").is_file() and (out / f"{rel}.gz").is_file(), rel
            assert client.get(f"/{rel}", headers=both).headers["Content-Encoding"] == "br"

def archive_files(out: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file() and "archive" in p.parts}


def page_titles(out: Path, rel: str) -> list[str]:
    media = {".rss": "application/rss+xml", ".atom": "application/atom+xml"}
    parsed = feedparser.parse(io.BytesIO((out / rel).read_bytes()),
                              response_headers={"content-type": media[Path(rel).suffix]})
    return [entry.title for entry in parsed.entries]


def full_pages(out: Path) -> set[str]:
    """Feed files of the sealed archive pages (SIZE items), from what was published."""
    return {str(p.relative_to(out)) for p in out.rglob("archive/*/feed.atom")
            if len(page_titles(out, str(p.relative_to(out)))) == SIZE}


def test_a_new_article_touches_only_the_newest_pages(site: Settings, now: datetime) -> None:
    built(site, now)
    out = Path(site.output_dir)
    before = archive_files(out)
    sealed = full_pages(out)
    assert {"archive/1/feed.atom", "archive/2/feed.atom", "topics/odd/archive/1/feed.atom"} \
        <= sealed
    # Even an article dated before all the others arrives on the newest page.
    write(Path(site.seeds_dir) / "late.md", article_text(12).replace("2026-01-12", "2025-06-01"),
          mtime=time.time() - 60)
    built(site, now + timedelta(minutes=1))
    after = archive_files(out)
    for rel in sealed:
        for name in ("feed.atom", "feed.rss", "feed.json", "index.html"):
            path = rel.replace("feed.atom", name)
            assert after[path] == before[path], path  # same bytes, not even rewritten
    changed = {path for path in after if before.get(path) != after[path]}
    assert {"archive/3/feed.atom", "archive/4/feed.atom"} <= changed  # 12: page 4 begins
    assert page_titles(out, "archive/4/feed.atom") == []
    assert page_titles(out, "archive/3/feed.atom")[0] == "Story 12"
    assert "Story 12" in page_titles(out, "topics/even/archive/2/feed.atom")
    assert not any(path.startswith(("archive/1/", "archive/2/")) for path in changed)


def test_filling_a_page_starts_the_next_one_empty(site: Settings, now: datetime) -> None:
    """12 articles fill three pages exactly: the fourth exists, empty, so a full page's
    next-archive link never dangles and the full page need not change when it fills."""
    built(site, now)
    out = Path(site.output_dir)
    write(Path(site.seeds_dir) / "s12.md", article_text(12), mtime=time.time() - 60)
    built(site, now + timedelta(minutes=1))
    before = archive_files(out)
    assert page_titles(out, "archive/4/feed.atom") == []
    assert b'rel="next-archive"' in (out / "archive/3/feed.atom").read_bytes()
    write(Path(site.seeds_dir) / "s13.md", article_text(13), mtime=time.time() - 60)
    built(site, now + timedelta(minutes=2))
    after = archive_files(out)
    assert after["archive/3/feed.atom"] == before["archive/3/feed.atom"]
    assert page_titles(out, "archive/4/feed.atom") == ["Story 13"]


def test_an_edit_changes_its_page_only_and_a_deletion_moves_the_later_ones_up(
        site: Settings, now: datetime) -> None:
    built(site, now)
    out = Path(site.output_dir)
    first = archive_files(out)
    story = Path(site.seeds_dir) / "story-06.md"  # on page 2 of 'all'
    write(story, article_text(6).replace("Story 6", "Story six"), mtime=time.time() - 60)
    built(site, now + timedelta(minutes=1))
    edited = archive_files(out)
    assert "Story six" in page_titles(out, "archive/2/feed.atom")
    assert edited["archive/1/feed.atom"] == first["archive/1/feed.atom"]
    assert edited["archive/3/feed.atom"] == first["archive/3/feed.atom"]
    story.unlink()
    built(site, now + timedelta(minutes=2))
    assert page_titles(out, "archive/1/feed.atom") == [f"Story {i}" for i in (4, 3, 2, 1)]
    assert page_titles(out, "archive/2/feed.atom") == [f"Story {i}" for i in (9, 8, 7, 5)]
    assert page_titles(out, "archive/3/feed.atom") == ["Story 11", "Story 10"]


def page_texts(out: Path, rel: str) -> dict[str, str]:
    """Each item's title -> its text, as feedparser reads one archive page (JSON Feed:
    as JSON, which feedparser does not read)."""
    if rel.endswith(".json"):
        items = json.loads((out / rel).read_bytes())["items"]
        return {item["title"]: item.get("content_html", "") for item in items}
    parsed = feedparser.parse(io.BytesIO((out / rel).read_bytes()))
    return {entry.title: entry.get("content", [{}])[0].get("value", "")
            or entry.get("summary", "") for entry in parsed.entries}


@pytest.mark.parametrize("keep_memory", [False, True])
def test_an_edited_text_reaches_its_page_and_every_page_keeps_its_texts(
        site: Settings, now: datetime, keep_memory: bool) -> None:
    """A build fills only the archive pages it draws with their articles' content; the
    page an edit makes stale is drawn with the new text, and every page of every channel
    still has each item's text, whether the process built before (the scheduler's
    memory) or not (``feedserver build``)."""
    memory = BuildMemory.empty() if keep_memory else None
    assert run_build(site, now=now, memory=memory).published
    story = Path(site.seeds_dir) / "story-06.md"  # on page 2 of 'all', and of its topics
    write(story, article_text(6).replace("Paragraph 6 of", "Paragraph 6, rewritten, of"),
          mtime=time.time() - 60)
    report = run_build(site, now=now + timedelta(minutes=1), memory=memory)
    assert report.published and not report.errors, report.problems
    out = Path(site.output_dir)
    pages = sorted(str(p.relative_to(out)) for p in out.rglob("archive/*/feed.*")
                   if p.suffix in (".atom", ".rss", ".json"))
    assert len(pages) > 12
    for rel in pages:
        texts = page_texts(out, rel)
        assert texts or rel.startswith("archive/4/"), rel  # 11 articles: page 4 is empty
        for title, text in texts.items():
            number = title.removeprefix("Story ")
            words = "Paragraph 6, rewritten, of" if number == "6" else f"Paragraph {number} of"
            assert words in text, (rel, title, text)
    assert "Story 6" in page_texts(out, "archive/2/feed.atom")


class Links(HTMLParser):
    """The article links and the 'older' pagination link of one HTML listing."""

    def __init__(self) -> None:
        super().__init__()
        self.articles: list[str] = []
        self.older: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        href = found.get("href") or ""
        if tag == "a" and "/articles/" in href:
            self.articles.append(href)
        if tag == "a" and found.get("rel") == "prev":
            self.older = href


def html_chain(client: FlaskClient, start: str) -> Iterator[tuple[str, list[str]]]:
    url: str | None = start
    seen = set()
    while url:
        assert url not in seen
        seen.add(url)
        response = client.get("/" + url.removeprefix(BASE))
        assert response.status_code == 200 and response.mimetype == "text/html", url
        links = Links()
        links.feed(response.get_data(as_text=True))
        yield url, links.articles
        url = links.older


def test_html_listings_paginate_to_every_article_once(client: FlaskClient) -> None:
    for folder, titles in expected(COUNT).items():
        chain = list(html_chain(client, BASE + folder))
        listing, archives = chain[0], chain[1:]
        if len(titles) < SIZE:  # no archive: the channel's page lists its whole history
            assert not archives and len(listing[1]) == len(titles), folder
            continue
        assert len(listing[1]) == 3  # max_items newest on the channel page
        on_pages = [link for _, links in archives for link in links]
        assert len(on_pages) == len(set(on_pages)) == len(titles), folder
        assert set(listing[1]) <= set(on_pages)
        shown = set()
        for link in on_pages:  # every one an article page of the channel's source articles
            page = client.get("/" + link.removeprefix(BASE))
            assert page.status_code == 200
            shown.add(re.search(r"<h1>(.*?)</h1>", page.get_data(as_text=True)).group(1))
        assert shown == titles, folder
        newest = archives[0][0]
        assert re.fullmatch(rf"{re.escape(BASE + folder)}archive/\d+/", newest)


def test_an_item_that_fails_the_gate_does_not_hold_back_its_page(
        site: Settings, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    restore = misread_title(monkeypatch, "Story 2", "Story two?")
    report = run_build(site, now=now)
    assert [p.where for p in report.errors] == ["story-02.md"], report.problems
    restore()
    out = Path(site.output_dir)
    assert page_titles(out, "archive/1/feed.rss") == ["Story 4", "Story 3", "Story 1"]
    assert page_titles(out, "topics/even/archive/1/feed.atom") == ["Story 8", "Story 6",
                                                                    "Story 4"]


def test_archive_size_zero_publishes_no_archives(site: Settings, now: datetime) -> None:
    built(replace(site, archive_size=0), now)
    out = Path(site.output_dir)
    assert not any("archive" in p.parts for p in out.rglob("*"))
    assert b"prev-archive" not in (out / "feed.atom").read_bytes()
    assert b"next_url" not in (out / "feed.json").read_bytes()


def test_websub_announces_the_subscription_feeds_not_the_archive_pages(
        site: Settings, now: datetime) -> None:
    report = built(site, now)
    announced = feed_paths(Path(site.output_dir), report.written)
    assert "feed.atom" in announced and "topics/odd/feed.rss" in announced
    assert "archive/1/feed.atom" in report.written
    assert not [path for path in announced if "/archive/" in f"/{path}"]


def test_a_history_shorter_than_a_page_keeps_max_items_and_has_two_pages(
        site: Settings, now: datetime) -> None:
    """archive_size 20, max_items 3: the feeds still list 3 items (max_items holds
    whatever the archive), and a longer history is a partial page 1 and an empty page 2,
    linked both ways (a lone page would be an incomplete archive); a history of at most
    3 has no archive."""
    built(replace(site, archive_size=20), now)
    out = Path(site.output_dir)
    for folder, titles in expected(COUNT).items():
        feed = page_titles(out, f"{folder}feed.atom")
        assert len(feed) == min(MAX_ITEMS, len(titles)) and set(feed) <= titles, folder
        first, second = out / f"{folder}archive/1/feed.atom", out / f"{folder}archive/2/feed.atom"
        if len(titles) <= MAX_ITEMS:
            assert not first.exists() and b"prev-archive" not in (out / f"{folder}feed.rss"
                                                                   ).read_bytes(), folder
            continue
        assert set(page_titles(out, f"{folder}archive/1/feed.atom")) == titles, folder
        assert page_titles(out, f"{folder}archive/2/feed.atom") == [], folder
        assert b'rel="next-archive"' in first.read_bytes(), folder
        assert b'rel="prev-archive"' in second.read_bytes(), folder
        assert not (out / f"{folder}archive/3").exists(), folder
