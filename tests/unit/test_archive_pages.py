"""Archive pages (RFC 5005), pure: how a history is cut into pages and what each links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feedserver.build.archives import arrival_order, paginate
from feedserver.core.records import Article, Channel, Identity
from feedserver.render import archives
from feedserver.render.feeds import Context

BASE = "https://news.example/"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CTX = Context(site_title="s", base_url=BASE, language="en", author="", ttl_minutes=1,
              topic_names={})


def article(n: int, published: datetime | None = None) -> Article:
    when = published or T0 + timedelta(days=n)
    return Article(id=f"id{n:03d}", slug=f"a{n}", path=f"a{n}.md", title=f"A{n}",
                   link=f"{BASE}articles/a{n}/", content_html="", summary="", published=when,
                   updated=when)


def channel(history: list[Article]) -> Channel:
    return Channel(slug="energy", title="t", description="d", path="topics/energy",
                   html_url=f"{BASE}topics/energy/", articles=tuple(history[-3:]),
                   updated=T0)


def test_pages_are_cut_from_the_oldest_and_the_newest_holds_the_rest() -> None:
    history = [article(n) for n in range(1, 11)]
    told, pages = paginate(channel(history), history, 4, BASE)
    assert told.archives == 3 and [p.archive for p in pages] == [1, 2, 3]
    assert [[a.title for a in p.articles] for p in pages] == [
        ["A4", "A3", "A2", "A1"], ["A8", "A7", "A6", "A5"], ["A10", "A9"]]
    assert [p.sealed for p in pages] == [True, True, False]
    assert pages[0].path == "topics/energy/archive/1" and pages[0].home == "topics/energy"
    assert pages[2].html_url == f"{BASE}topics/energy/archive/3/"


def test_a_history_that_fills_its_pages_starts_an_empty_one() -> None:
    history = [article(n) for n in range(1, 9)]
    told, pages = paginate(channel(history), history, 4, BASE)
    assert told.archives == 3 and pages[2].articles == () and pages[1].sealed


def test_arrival_order_puts_a_late_backdated_article_last() -> None:
    seen = {f"a{n}.md": Identity(f"id{n:03d}", f"a{n}", T0 + timedelta(days=30), T0)
            for n in range(1, 4)}
    late = article(9, published=T0 - timedelta(days=365))  # dated last year, added now
    seen["a9.md"] = Identity("id009", "a9", T0 + timedelta(days=40), T0)
    ordered = arrival_order([late, article(3), article(1), article(2)], seen)
    assert [a.title for a in ordered] == ["A1", "A2", "A3", "A9"]


def test_links_of_the_subscription_document_and_of_each_page() -> None:
    history = [article(n) for n in range(1, 11)]
    told, pages = paginate(channel(history), history, 4, BASE)
    feed = f"{BASE}topics/energy/"
    assert archives.links(told, CTX, "feed.atom") == [
        ("prev-archive", f"{feed}archive/3/feed.atom")]
    assert archives.links(pages[0], CTX, "feed.rss") == [
        ("current", f"{feed}feed.rss"), ("next-archive", f"{feed}archive/2/feed.rss")]
    assert archives.links(pages[1], CTX, "feed.atom") == [
        ("current", f"{feed}feed.atom"), ("prev-archive", f"{feed}archive/1/feed.atom"),
        ("next-archive", f"{feed}archive/3/feed.atom")]
    assert archives.next_url(told, CTX, "feed.json") == f"{feed}archive/3/feed.json"
    assert archives.next_url(pages[1], CTX, "feed.json") == f"{feed}archive/1/feed.json"
    assert archives.next_url(pages[0], CTX, "feed.json") is None
    assert archives.atom_links(told, CTX, "feed.atom").count(b"fh:archive") == 0
    assert archives.atom_links(pages[0], CTX, "feed.atom").count(b"<fh:archive") == 1
