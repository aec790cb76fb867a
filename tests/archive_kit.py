"""A small site with a long history, and a reader that follows RFC 5005 archive links.

Shared by the archive tests (Flask test client) and the end-to-end test (a real
``feedserver serve``): the same walk, only the way a URL is fetched differs.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import feedparser
from werkzeug.datastructures import Headers

from tests.conftest import write

MAX_ITEMS = 3  # max_items of the kit's site
SIZE = 4  # archive_size of the kit's site: small, so 11 articles fill several pages
TAGS = {"odd": lambda i: i % 2 == 1, "even": lambda i: i % 2 == 0,
        "triple": lambda i: i % 3 == 0}
MEDIA = {"rss": "application/rss+xml", "atom": "application/atom+xml"}
FH_ARCHIVE = b'<fh:archive xmlns:fh="http://purl.org/syndication/history/1.0"/>'
Fetch = Callable[[str], tuple[bytes, Headers]]  # absolute URL -> body, headers


def config(extra: str = "") -> str:
    """config.toml of the kit's site: no detection (the channels are the tags and the two
    languages), tiny pages, no poll budget (a test reads feeds many times)."""
    return ('site_title = "History"\nmax_items = ' + str(MAX_ITEMS) + '\n'
            f"archive_size = {SIZE}\ndetect_topics = false\ndetect_language = false\n"
            "auto_topics = false\npoll_budget = 0\n" + extra)


def article_text(index: int) -> str:
    """Article ``index`` (1-based): dated in January 2026 (always in the past), tagged by
    its number, every fourth in Russian."""
    tags = ", ".join(tag for tag, rule in TAGS.items() if rule(index))
    lang = "ru" if index % 4 == 0 else "en"
    return (f"---\ntitle: Story {index}\ndate: 2026-01-{index:02d}T08:00:00Z\n"
            f"tags: [{tags}]\nlang: {lang}\n---\nParagraph {index} of the history.\n")


def make_seeds(seeds: Path, count: int) -> None:
    """Articles 1..count, saved an hour ago (nothing is held back as half-written)."""
    for index in range(1, count + 1):
        write(seeds / f"story-{index:02d}.md", article_text(index), mtime=time.time() - 3600)


def expected(count: int) -> dict[str, set[str]]:
    """Each channel's folder -> the titles of every article it must reach (the sources)."""
    out: dict[str, set[str]] = {"": set(), "languages/en/": set(), "languages/ru/": set()}
    for index in range(1, count + 1):
        title = f"Story {index}"
        out[""].add(title)
        out[f"languages/{'ru' if index % 4 == 0 else 'en'}/"].add(title)
        for tag, rule in TAGS.items():
            if rule(index):
                out.setdefault(f"topics/{tag}/", set()).add(title)
    return out


@dataclass
class Page:
    """One document of a chain, as a reader got it."""

    url: str
    titles: list[str]
    links: dict[str, str]  # rel -> href (Atom, RSS); 'next_url' for JSON Feed
    archive_marker: bool
    headers: Headers = field(default_factory=Headers)


def read(fmt: str, url: str, body: bytes, headers: Headers) -> Page:
    """One feed document: its item titles and archive links, read as a reader would."""
    if fmt == "json":
        doc: dict[str, Any] = json.loads(body)
        links = {"next_url": doc["next_url"]} if "next_url" in doc else {}
        return Page(url, [item["title"] for item in doc["items"]], links, False, headers)
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-type": MEDIA[fmt]})
    assert not parsed.bozo, (url, parsed.get("bozo_exception"))
    links = {link["rel"]: link["href"] for link in parsed.feed.get("links", [])
             if link.get("rel") in ("current", "prev-archive", "next-archive")}
    return Page(url, [entry.title for entry in parsed.entries], links,
                FH_ARCHIVE in body, headers)


def walk(fetch: Fetch, subscription: str, fmt: str) -> tuple[Page, list[Page]]:
    """The subscription document and every archive page reached from it by following
    ``prev-archive`` (``next_url`` in JSON Feed), newest page first; a loop fails."""
    body, headers = fetch(subscription)
    first = read(fmt, subscription, body, headers)
    rel = "next_url" if fmt == "json" else "prev-archive"
    pages: list[Page] = []
    seen = {subscription}
    url = first.links.get(rel)
    while url:
        assert url not in seen, f"archive links loop at {url}"
        seen.add(url)
        body, headers = fetch(url)
        pages.append(read(fmt, url, body, headers))
        url = pages[-1].links.get(rel)
    return first, pages


def check_chain(fetch: Fetch, base_url: str, folder: str, fmt: str,
                titles: set[str]) -> list[Page]:
    """Follow one channel's chain in one format and assert RFC 5005's promises: the archive
    pages hold every article of the channel exactly once, the subscription document's
    items are among them, each page is marked and links ``current`` and its neighbours."""
    filename = f"feed.{fmt}"
    subscription = f"{base_url}{folder}{filename}"
    first, pages = walk(fetch, subscription, fmt)
    if len(titles) <= MAX_ITEMS:  # the subscription document holds the whole history
        assert not pages and set(first.titles) == titles and not first.links, subscription
        return pages
    assert len(first.titles) == MAX_ITEMS, subscription
    assert len(pages) == max(2, len(titles) // SIZE + 1), subscription
    archived = [title for page in pages for title in page.titles]
    assert len(archived) == len(set(archived)), f"{subscription}: an article on two pages"
    assert set(archived) == titles, subscription
    assert set(first.titles) <= titles and first.titles, subscription
    assert not first.archive_marker, subscription  # the subscription document is no archive
    numbers = [int(re.search(r"/archive/(\d+)/", page.url).group(1)) for page in pages]
    assert numbers == list(range(len(pages), 0, -1)), numbers  # newest to page 1
    for position, page in enumerate(pages):
        if fmt != "json":
            assert page.archive_marker, page.url
            assert page.links["current"] == subscription
            assert page.links.get("next-archive") == (pages[position - 1].url if position
                                                      else None)
        assert len(page.titles) == SIZE or position == 0, page.url  # only the newest partial
    return pages
