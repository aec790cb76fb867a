"""Drawing items and channels loads feedgen's extensions without looking up modules.

feedgen's ``load_extension`` imports ``feedgen.ext.dc_entry`` (which does not exist)
before it falls back to ``feedgen.ext.dc``, and a failed import searches ``sys.path``
again every time: once per item drawn.  These tests watch the import system while
items and channels are drawn (after a first drawing has imported what it needs) and
check that the extensions still show in the bytes, Dublin Core in RSS and Media RSS
where an item has a picture.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import feedparser
import pytest

from feedserver.core.records import Article, Channel
from feedserver.render import feeds
from feedserver.render.formats import FORMATS

WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CTX = feeds.Context("S", "https://x.example/", "en", "Ana", 30, {"t": "T"})
# A picture as an article holds it (feedserver.core.media.MediaRow).
PICTURE = ("image", "https://x.example/media/p.jpg", "image/jpeg", "1234", "", "", "", "")


def article(n: int, **changes: Any) -> Article:
    drawn = Article(f"urn:x:{n}", f"s{n}", f"s{n}.txt", f"Story {n}",
                    f"https://x.example/articles/s{n}/", f"<p>Body {n}</p>", f"Body {n}",
                    WHEN, WHEN, topics=("t",), lang="fr" if n % 2 else "en")
    return replace(drawn, **changes)


CHANNEL = Channel("all", "All", "Everything", "", "https://x.example/",
                  (article(1), article(2, media=(PICTURE,))), WHEN)


class _Spy:
    """A meta path finder that only notes the modules the import system looks for."""

    def __init__(self) -> None:
        self.looked_up: list[str] = []

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self.looked_up.append(name)


@pytest.fixture
def lookups() -> Iterator[list[str]]:
    """Names of modules looked up (not found in ``sys.modules``) while the test runs."""
    spy = _Spy()
    sys.meta_path.insert(0, spy)
    try:
        yield spy.looked_up
    finally:
        sys.meta_path.remove(spy)


def _draw_all() -> dict[str, bytes]:
    """The channel in every format, from a new item cache (every item drawn anew)."""
    cache = feeds.ItemCache()
    return {name: feeds.render(CHANNEL, fmt, CTX, cache) for name, fmt in FORMATS.items()}


def test_drawing_items_again_looks_up_no_module(lookups: list[str]) -> None:
    lookups.clear()
    _draw_all()  # the first drawing may import feedgen, lxml and their extensions
    first = list(lookups)
    lookups.clear()
    for _ in range(3):
        _draw_all()
    assert lookups == [], f"looked up again: {sorted(set(lookups))} (first: {first})"


def test_the_extensions_still_show_in_the_bytes() -> None:
    drawn = _draw_all()
    rss = feedparser.parse(drawn["rss"])
    assert not rss.bozo
    assert b'xmlns:dc="http://purl.org/dc/elements/1.1/"' in drawn["rss"]
    assert [e.get("author") for e in rss.entries] == ["Ana", "Ana"]  # dc:creator
    assert [e.get("language") for e in rss.entries] == ["fr", None]  # dc:language
    atom = feedparser.parse(drawn["atom"])
    assert not atom.bozo
    for body in (drawn["rss"], drawn["atom"]):
        assert b'xmlns:media="http://search.yahoo.com/mrss/"' in body
        assert b"https://x.example/media/p.jpg" in body
