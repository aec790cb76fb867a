"""Item records carry their article's items as the build drew them (query/records.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from feedserver.core.records import Article, Channel
from feedserver.publish.readings_store import code_version, decode
from feedserver.query.records import (
    Drawer,
    Drawn,
    decode_record,
    drawing_key,
    encode_record,
    read_record,
)
from feedserver.render.feeds import Context, ItemCache, render
from feedserver.render.formats import FORMATS, rss_atom

CTX = Context(site_title="S", base_url="http://127.0.0.1:8000/", language="en", author="A",
              ttl_minutes=1, topic_names={"a": "Alpha", "b": "Beta"})


def article(slug: str = "s", title: str = "Tëst <1>") -> Article:
    return Article(id=f"urn:{slug}", slug=slug, path=f"seeds/{slug}.md", title=title,
                   link=f"http://127.0.0.1:8000/articles/{slug}/",
                   content_html="<p>Caf&eacute; <b>bold</b></p>", summary="sum",
                   published=datetime(2026, 1, 1, tzinfo=UTC),
                   updated=datetime(2026, 1, 2, tzinfo=UTC), topics=("a", "b"), author=None,
                   lang="fr", media=(), links=())


def test_a_record_carries_each_xml_item_as_its_renderer_draws_it() -> None:
    """RSS and Atom (drawn by feedgen, read by feedparser item by item); not JSON Feed's
    item, which costs a web worker little to draw (and has no such reading)."""
    made = Drawer(CTX)(article())
    found = decode_record(made.body)
    assert found.key == drawing_key(CTX, article())
    assert set(found.drawn) == {"atom", "rss"}
    for name in found.drawn:  # what the web would draw of the article read back
        assert found.drawn[name] == FORMATS[name].item(found.article, CTX)
    assert read_record(made.body) == (found.article, found.search)


def test_a_record_without_items_reads_as_one_that_carries_none() -> None:
    found = decode_record(encode_record(article()))
    assert (found.key, found.drawn) == ("", {})
    garbled = encode_record(article()).replace(b'"search"', b'"drawn":{"key":1},"search"')
    assert decode_record(garbled)[2:] == ("", {}, {}, "")  # a shape it does not know: none


def test_the_drawing_key_follows_the_context_the_item_shows() -> None:
    """Everything of the context but the names of other topics than the article's own:
    a record is made again when its article's page is (its topics' names, the settings),
    and a key over every topic name refused every kept record after any topic came."""
    art = article()  # topics a and b
    key = drawing_key(CTX, art)
    assert drawing_key(replace(CTX, topic_names=dict(CTX.topic_names)), art) == key
    assert drawing_key(replace(CTX, topic_names={**CTX.topic_names, "c": "Gamma"}), art) == key
    for other in (replace(CTX, base_url="http://127.0.0.1:9000/"), replace(CTX, author="B"),
                  replace(CTX, topic_names={"a": "Alpha", "b": "Bêta"}),
                  replace(CTX, language="fr"), replace(CTX, site_title="T"),
                  replace(CTX, hubs=("http://127.0.0.1:9/hub",))):
        assert drawing_key(other, art) != key
    assert drawing_key(CTX, replace(art, topics=("a",))) != key


def test_the_drawing_key_follows_the_registered_formats(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A format registered from outside the package is not in the hashed source: its
    functions' files are (:func:`feedserver.render.formats.fingerprint`)."""
    before = drawing_key(CTX, article())

    def item(art: Article, ctx: Context) -> bytes:
        return b"<x/>"

    monkeypatch.setitem(FORMATS, "extra", replace(FORMATS["json"], name="extra",
                                                  filename="feed.extra", item=item))
    assert drawing_key(CTX, article()) != before


def test_items_lie_as_they_were_drawn_after_the_json_line() -> None:
    """Any bytes at all (a format registered from outside may draw anything), found where
    the line says; an item said to lie past the end is left out, the rest kept."""
    items = {"atom": b"<entry>\n\xff</entry>", "odd": b"\x00{\"x\"}\n", "empty": b""}
    body = encode_record(article(), Drawn("k", items))
    assert read_record(body) == read_record(encode_record(article()))
    assert decode_record(body).drawn == items
    assert decode_record(body[:-3]).drawn == {"atom": items["atom"]}


def test_the_drawer_takes_the_builds_kept_items() -> None:
    """An incremental build's records take the items its channels just drew (looked up in
    the build's item cache, which they never fill)."""
    one, two = article("one"), article("two")
    cache = ItemCache(draw=lambda fmt, art, ctx: b"<kept>" + art.slug.encode() + b"</kept>")
    cache.get(FORMATS["atom"], one, CTX)
    drawer = Drawer(CTX, cache)
    assert decode_record(drawer(one).body).drawn["atom"] == b"<kept>one</kept>"
    assert decode_record(drawer(two).body).drawn["atom"] == FORMATS["atom"].item(two, CTX)
    assert len(cache) == 1  # looked up, never filled
    assert cache.kept(FORMATS["atom"], one, replace(CTX, author="B")) is None  # other context


def test_a_renderer_that_raises_leaves_its_format_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed text a renderer chokes on loses that format's item in the record, not the
    record (the web draws that item itself and answers for it, as a build's channel)."""
    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("unrenderable")

    monkeypatch.setattr(rss_atom, "entry", boom)  # both XML formats draw their entry here
    made = decode_record(Drawer(CTX)(article()).body)
    assert made.drawn == {} and made.readings == {}
    assert made.article.slug == "s"


def test_readings_lie_after_the_json_line_by_format() -> None:
    rows = (("atom", b"\x01" * 32, b"first"), ("atom", b"\x02" * 32, b"second"),
            ("rss", b"\x03" * 32, b"third"))
    body = encode_record(article(), Drawn("k", {"atom": b"<entry/>"}, rows, "code"))
    found = decode_record(body)
    assert found.code == "code" and found.drawn == {"atom": b"<entry/>"}
    assert found.readings == {"atom": [(b"\x01" * 32, b"first"), (b"\x02" * 32, b"second")],
                              "rss": [(b"\x03" * 32, b"third")]}
    assert decode_record(body[:-2]).readings == {  # one said to lie past the end: left out
        "atom": [(b"\x01" * 32, b"first"), (b"\x02" * 32, b"second")]}
    odd = body.replace(b"0101", b"zz01", 1)  # a key that is not hex: that row left out
    assert decode_record(odd).readings["atom"] == [(b"\x02" * 32, b"second")]


@pytest.mark.parametrize("lang", ("en", "fr"))
def test_the_drawer_carries_the_readings_the_gate_made_in_a_channel(lang: str) -> None:
    """The key a record's reading is carried under is the very key the gate looked the
    item up under in a channel document in the article's language: a channel's feeds
    read by the gate, then the record drawn with that build's items and readings,
    carries those readings, and feedparser reads nothing more."""
    art = replace(article(), lang=lang)  # the site's language, or another
    cache = ItemCache()
    channel = Channel(slug="all", title="S", description="d", path="", html_url=CTX.base_url,
                      articles=(art,), updated=art.updated, language=lang)
    read: dict[str, object] = {}
    for name in ("atom", "rss"):
        fmt = FORMATS[name]
        reader = fmt.check_cached.of(fmt) if fmt.check_cached else None
        assert reader is not None
        back = reader(channel, render(channel, fmt, CTX, cache), cache.readings,
                      [cache.get(fmt, art, CTX)])
        assert back.findings == [] and back.items is not None and len(back.items) == 1
        read[name] = back.items[0]
    cache.readings.learned()  # what the gate read so far
    record = decode_record(Drawer(CTX, cache)(art).body)
    assert record.code == code_version()
    assert cache.readings.learned() == {}  # nothing read again
    for name in ("atom", "rss"):
        [(key, value)] = record.readings[name]
        assert decode(key, value) == cache.readings.get(key) == read[name]


def test_a_drawer_makes_the_reading_the_build_lacks_and_writes_it_alike() -> None:
    """With no reading kept, the drawer has the gate read the item in the envelope of an
    answer in the article's language: a record carries the same bytes whatever earlier
    builds read (a record must not change while its article does not), here against a
    drawer whose build read the item in a channel first.  Not in the site's language
    (another envelope, no answer listing only this article is in)."""
    art = article()  # French, on an English site
    made = Drawer(CTX, ItemCache())(art).body
    record = decode_record(made)
    for name in ("atom", "rss"):
        [(key, value)] = record.readings[name]
        seen = decode(key, value)
        assert seen is not None and seen.title == art.title and seen.id == art.id
    read_first = ItemCache()
    channel = Channel(slug="fr", title="S", description="d", path="", html_url=CTX.base_url,
                      articles=(art,), updated=art.updated, language="fr")
    for name in ("atom", "rss"):
        fmt = FORMATS[name]
        reader = fmt.check_cached.of(fmt) if fmt.check_cached else None
        assert reader is not None
        reader(channel, render(channel, fmt, CTX, read_first), read_first.readings,
               [read_first.get(fmt, art, CTX)])
    assert Drawer(CTX, read_first)(art).body == made


def test_a_drawer_without_the_builds_readings_carries_none() -> None:
    record = decode_record(Drawer(CTX)(article()).body)
    assert record.readings == {} and record.code == ""
    assert set(record.drawn) == {"atom", "rss"}
