"""The articles shipped to the feed workers as bytes (feedserver.build.shelf): equal to the
objects they stand for, rendered to the same bytes, and read without copying the parent's."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedserver.build import shelf as shelf_module
from feedserver.build.shelf import Shelved, shelve
from feedserver.build.spill import Spill
from feedserver.core.packed import Packed, pack
from feedserver.core.records import Article, Channel
from feedserver.render import feeds
from feedserver.render.formats import FORMATS
from feedserver.render.site import Site
from tests.forkmem import copied_in_child, pages_of

CTX = feeds.Context("S", "https://x.example/", "en", "Ana", 30, {"t": "T", "u": "U"})
MOMENT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def article(n: int, content: str | Packed, summary: str | Packed) -> Article:
    return Article(f"urn:x:{n}", f"a-{n}", f"{n}.md", f"Title \u00e9 {n} <&>", f"https://x.example/a-{n}/",
                   content, summary, MOMENT - timedelta(hours=n), MOMENT - timedelta(minutes=n),
                   ("t", "u") if n % 2 else ("t",), "Ana" if n % 3 else None,
                   "kk" if n % 5 == 0 else "en",
                   (("https://x.example/m.mp3", "audio/mpeg", "12"),) if n % 7 == 0 else (),
                   (("b.md", "https://x.example/b/"),) if n % 4 == 0 else ())


def site_of(articles: list[Article]) -> Site:
    def channel(slug: str, listed: list[Article]) -> Channel:
        return Channel(slug, slug or "all", "d", f"topics/{slug}" if slug else "",
                       "https://x.example/", tuple(listed), MOMENT)
    return Site(articles, {}, (channel("", articles),
                               channel("u", [a for a in articles if "u" in a.topics]),
                               channel("t", articles[::-1])), CTX)


def test_shelved_channels_list_equal_articles_and_render_the_same_bytes(
        tmp_path: Path) -> None:
    texts = [f"<p>\u0410\u0441\u0442\u0430\u043d\u0430 {n}</p>" for n in range(40)]
    contents = Spill(tmp_path).pack(texts)
    summaries = pack([f"summary {n}" for n in range(40)])
    made = [article(n, contents[n] if n % 3 else texts[n], summaries[n] if n % 2
                    else f"summary {n}") for n in range(40)]
    site = site_of(made)
    shipped = shelve(site)
    for before, after in zip(site.channels, shipped.channels, strict=True):
        listed = after.articles
        assert isinstance(listed, Shelved) and len(listed) == len(before.articles)
        assert list(listed) == list(before.articles) and listed == before.articles
        assert after == before and hash(after) == hash(before)
        assert listed[2:5] == before.articles[2:5] and listed[-1] == before.articles[-1]
        for a, b in zip(listed, before.articles, strict=True):
            assert hash(a) == hash(b) and a.published.tzinfo is not None
            assert type(a.content_html) is type(b.content_html)
            assert str(a.content_html) == str(b.content_html)
        for fmt in FORMATS.values():
            assert feeds.render(after, fmt, CTX) == feeds.render(before, fmt, CTX)
    # One article listed by three channels is written once.
    assert len(shipped.channels[0].articles._shelf) == len(made)  # type: ignore[attr-defined]


def test_a_worker_keeps_a_bounded_number_of_articles_decoded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shelf_module, "KEPT", 5)
    made = [article(n, f"<p>{n}</p>", "s") for n in range(30)]
    listed = shelve(site_of(made)).channels[0].articles
    assert list(listed) == made and list(listed) == made
    assert len(listed._shelf._kept) == 5  # type: ignore[attr-defined]
    assert listed[0] is listed[0]  # the memo's


def _read_fields(channel: Channel) -> int:
    """Every field of every article of ``channel``, as drawing and checking its items
    reads them."""
    seen = 0
    for a in channel.articles:
        seen += len(a.id) + len(a.title) + len(a.link) + len(a.slug) + len(a.path)
        seen += len(a.topics) + len(a.lang or "") + a.published.year
    return seen


@pytest.mark.skipif(not Path("/proc/self/pagemap").exists(), reason="Linux's pagemap")
def test_a_forked_worker_reading_shelved_articles_copies_few_of_theirs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The point: a forked reader of 20,000 articles copies the pages their objects and
    strings lie on; reading them off the shelf, it copies few of those pages: only
    where the copies it decodes for itself (a few thousand kept) are placed in the free
    slots of those very pages (5.8% on a clean clone's run, under 2% here)."""
    monkeypatch.setattr(shelf_module, "KEPT", 1000)
    rng = random.Random(3)
    made, clutter = [], []
    for n in range(20_000):
        clutter.append([rng.random() for _ in range(6)])  # other objects between them
        made.append(article(n, "<p>x</p>", f"summary {rng.random()}"))
    site = site_of(made)
    shipped = shelve(site)
    theirs = pages_of(value for a in made for value in (a, a.id, a.title, a.link, a.slug))
    assert len(theirs) > 1000
    assert copied_in_child(theirs, lambda: _read_fields(site.channels[0])) \
        > 0.9 * len(theirs)
    assert copied_in_child(theirs, lambda: _read_fields(shipped.channels[0])) \
        < 0.2 * len(theirs)
    assert clutter


def test_an_article_listed_twice_is_one_number() -> None:
    one = article(1, "<p>1</p>", "s")
    site = site_of([one, replace(one, id="urn:x:2")])
    shipped = shelve(site)
    assert len(shipped.channels[0].articles._shelf) == 2  # type: ignore[attr-defined]


def test_an_article_s_page_and_record_makers_read_the_shelf() -> None:
    """A cold build's file makers that are one call on one article (its page, its item
    record) are moved onto the shelf and make the same file; any other stays itself."""
    from functools import partial

    from feedserver.build.shelf import Shipping
    from feedserver.query.records import record_file

    made = [article(n, f"<p>{n}</p>", f"s{n}") for n in range(12)]
    site = site_of(made)
    shipping = Shipping(site)
    stranger = article(99, "<p>99</p>", "s")
    makers = [partial(record_file, made[3]), partial(record_file, stranger),
              partial(len, "x"), partial(record_file, article=made[2])]
    moved = list(map(shipping.maker, makers))
    assert moved[0] is not makers[0] and moved[0]() == makers[0]()
    assert moved[1:] == makers[1:]  # not on the shelf, not one article, a keyword
    assert moved[0].args[1:] == (shipping.shelf, 3)  # type: ignore[attr-defined]
    pages = shipping.site(replace(site, archives=(site.channels[1],)))
    assert isinstance(pages.archives[0].articles, Shelved) and pages.articles is site.articles
    assert list(pages.archives[0].articles) == list(site.channels[1].articles)
