"""A computed feed's envelope is drawn once per channel head and filled in per query.

Every answer is compared byte for byte with what the format draws for the same channel,
context and query, in RSS, Atom and JSON Feed, over queries holding every character a
canonical query string may hold, channels with and without media, archives and hubs,
and the cases drawn directly every time (a podcast, a query that is not canonical, a
channel that holds the placeholder, a format that writes the query some other way).
The envelopes a format is asked for, and feedgen's heads, are counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import orjson
import pytest

from feedserver.config import Podcast
from feedserver.core.records import Article, Channel
from feedserver.query.answer import QueryContext
from feedserver.query.envelopes import TOKEN, Envelopes
from feedserver.render import feeds
from feedserver.render.formats import FORMATS, Format, rss_atom

WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PLAIN = feeds.Context("S & Co", "https://x.example/", "en", "Ana", 30, {"t": "T"},
                      hubs=("https://hub.example/",))
PICTURE = ("image", "https://x.example/media/p.jpg", "image/jpeg", "1234", "", "", "", "")
QUERIES = ("limit=3", "q=caf%C3%A9",
           "lang=fr&limit=5&q=a%26b%3Cc%22d&since=2020-01-01T00%3A00%3A00Z",
           "q=x%2By~z_w.v-u/t", "limit=1")


def article(n: int, **changes: Any) -> Article:
    drawn = Article(f"urn:x:{n}", f"s{n}", f"s{n}.txt", f"Story {n} <&>",
                    f"https://x.example/articles/s{n}/", f"<p>Body {n}</p>", f"Body {n}",
                    WHEN + timedelta(hours=n), WHEN + timedelta(hours=n), topics=("t",))
    return replace(drawn, **changes)


def channel(*articles: Article, **changes: Any) -> Channel:
    drawn = Channel("t", "S: T & <more>", "Articles about T", "topics/t",
                    "https://x.example/topics/t/", articles,
                    max((a.updated for a in articles), default=WHEN), topic_names={"t": "T"})
    return replace(drawn, **changes)


HEADS = {
    "plain": channel(article(1), article(2), article(3)),
    "one item": channel(article(2)),
    "media": channel(article(1), article(4, media=(PICTURE,))),
    "plain's head, with media": channel(article(1), article(2), article(3, media=(PICTURE,))),
    "archives": channel(article(1), article(2), archives=3),
    "empty": channel(),
}


def items(fmt_name: str, chan: Channel) -> list[bytes]:
    fmt = FORMATS[fmt_name]
    return [fmt.item(a, PLAIN) for a in chan.articles]


def drawn_directly(fmt_name: str, chan: Channel, query: str,
                   plain: feeds.Context = PLAIN) -> bytes:
    return FORMATS[fmt_name].channel(chan, QueryContext.of(plain, query), items(fmt_name, chan))


@pytest.fixture
def generators(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The channels feedgen drew a head for, by title, while the test runs."""
    drawn: list[str] = []
    real = rss_atom.generator

    def counted(chan: Channel, ctx: feeds.Context, fmt: Any) -> Any:
        drawn.append(chan.title)
        return real(chan, ctx, fmt)

    monkeypatch.setattr(rss_atom, "generator", counted)
    yield drawn


@pytest.mark.parametrize("fmt_name", ["rss", "atom", "json"])
def test_every_answer_is_what_the_format_draws(fmt_name: str) -> None:
    envelopes = Envelopes()
    for _ in range(2):  # the second time round every envelope is a kept one
        for chan in HEADS.values():
            for query in QUERIES:
                fragments = items(fmt_name, chan)
                body, (at, end) = envelopes.draw(FORMATS[fmt_name], chan,
                                                 QueryContext.of(PLAIN, query), PLAIN, fragments)
                assert body == drawn_directly(fmt_name, chan, query), (chan.title, query)
                assert body[at:end] == FORMATS[fmt_name].separator.join(fragments)


@pytest.mark.parametrize("fmt_name", ["rss", "atom", "json"])
def test_a_reader_reads_each_answers_own_url(fmt_name: str) -> None:
    envelopes = Envelopes()
    chan = HEADS["plain"]
    for query in QUERIES:
        ctx = QueryContext.of(PLAIN, query)
        body, _ = envelopes.draw(FORMATS[fmt_name], chan, ctx, PLAIN, items(fmt_name, chan))
        own = ctx.feed_url(chan, FORMATS[fmt_name].filename)
        assert own.endswith("?" + query)
        if fmt_name == "json":
            doc = orjson.loads(body)
            assert doc["feed_url"] == own
            assert [i["title"] for i in doc["items"]] == [a.title for a in chan.articles]
            continue
        parsed = feedparser.parse(body)
        assert not parsed.bozo, parsed.bozo_exception
        assert [link.href for link in parsed.feed.links if link.rel == "self"] == [own]
        assert [e.title for e in parsed.entries] == [a.title for a in chan.articles]


def counted(fmt: Format, heads: list[str]) -> Format:
    """``fmt``, noting the title of each head it is asked to draw an envelope of."""
    assert fmt.envelope is not None
    real = fmt.envelope

    def envelope(chan: Channel, ctx: feeds.Context) -> Any:
        heads.append(chan.title)
        return real(chan, ctx)

    return replace(fmt, envelope=envelope)


@pytest.mark.parametrize("fmt_name", ["rss", "atom", "json"])
def test_a_channel_head_is_drawn_once(fmt_name: str, generators: list[str]) -> None:
    envelopes = Envelopes()
    heads: list[str] = []
    fmt = counted(FORMATS[fmt_name], heads)
    same_head = [HEADS["plain"], replace(HEADS["plain"], articles=HEADS["plain"].articles[:2]),
                 replace(HEADS["plain"], articles=(article(9),))]
    for chan in same_head:
        for query in QUERIES:
            envelopes.draw(fmt, chan, QueryContext.of(PLAIN, query), PLAIN, items(fmt_name, chan))
    assert heads == [HEADS["plain"].title]
    assert generators == ([] if fmt_name == "json" else heads)  # feedgen: RSS and Atom
    # Another head (its date, the media namespace, a title) is drawn anew, once.
    others = [replace(HEADS["plain"], updated=WHEN), HEADS["media"],
              replace(HEADS["plain"], title="Other")]
    for chan in others * 2:
        envelopes.draw(fmt, chan, QueryContext.of(PLAIN, "limit=2"), PLAIN,
                       items(fmt_name, chan))
    assert len(heads) == 4


def test_what_is_not_an_envelope_is_drawn_every_time(generators: list[str]) -> None:
    envelopes = Envelopes()
    podcast = replace(PLAIN, podcast=Podcast(channels=("t",), image="https://x.example/a.png"))
    # The heads feedgen draws for two answers: one a document; the envelope first tried
    # once where only the token tells it is not one.
    cases = [("rss", HEADS["plain"], podcast, "limit=2", 2),
             ("atom", HEADS["plain"], PLAIN, "q=not canonical", 2),
             ("json", HEADS["plain"], PLAIN, "q=not canonical", 0),
             ("atom", replace(HEADS["plain"], title=f"About {TOKEN}"), PLAIN, "limit=2", 3)]
    for fmt_name, chan, plain, query, heads in cases:
        before = len(generators)
        answers = [envelopes.draw(FORMATS[fmt_name], chan, QueryContext.of(plain, query), plain,
                                  items(fmt_name, chan)) for _ in range(2)]
        assert len(generators) - before == heads, (fmt_name, query)
        for body, found in answers:
            assert body == drawn_directly(fmt_name, chan, query, plain), (fmt_name, query)
            assert found is None or body[found[0]:found[1]] == b"".join(items(fmt_name, chan))


@pytest.mark.parametrize("written", [b"-._~%=&#38;/+", b"-._~%25=&/+", b""])
def test_a_format_writing_the_query_another_way_is_drawn_directly(written: bytes) -> None:
    """Only the two ways of writing a query that are sound to fill in are filled in:
    another (a numeric reference for ``&``, a percent sign escaped again, the query left
    out) and the head is drawn directly, every time."""
    fmt = FORMATS["atom"]
    real = fmt.envelope
    assert real is not None

    def other_writer(chan: Channel, ctx: feeds.Context) -> Any:
        drawn = real(chan, ctx)
        assert drawn is not None
        return tuple(part.replace(b"-._~%=&amp;/+", written) for part in drawn)

    heads: list[str] = []
    envelopes = Envelopes()
    odd = counted(replace(fmt, envelope=other_writer), heads)
    chan = HEADS["plain"]
    for _ in range(2):
        body, _ = envelopes.draw(odd, chan, QueryContext.of(PLAIN, "limit=3"), PLAIN,
                                 items("atom", chan))
        assert body == drawn_directly("atom", chan, "limit=3")
    assert len(heads) == 1  # tried once, then known to be drawn directly


def test_another_site_context_draws_anew() -> None:
    envelopes = Envelopes()
    chan = HEADS["plain"]
    moved = replace(PLAIN, base_url="https://y.example/")
    renamed = replace(PLAIN, topic_names={"t": "Tee"})
    for plain in (PLAIN, moved, renamed, PLAIN):
        body, _ = envelopes.draw(FORMATS["atom"], chan, QueryContext.of(plain, "limit=3"), plain,
                                 items("atom", chan))
        assert body == drawn_directly("atom", chan, "limit=3", plain)
