"""The gate's feedparser reads every document exactly as feedparser as shipped reads it.

:mod:`feedserver.render.formats.gate_parser` replaces three of feedparser's private
helpers with faster ones of the same meaning (the cp1252 table has its own test,
tests/unit/test_c1_table.py).  Each is checked here against the very function it
replaced, on its own and through whole documents parsed both ways.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import feedparser
import pytest
from feedparser.util import FeedParserDict

from feedserver.render.formats import gate_parser

URIS = [
    "", "http://example.org/a", "http:///example.org/a", "http:////example.org//a//b",
    "HTTPS://Example.org/x?y=1&z=2#f", "feed:///x", "a+b.c-d:////x", "1http:///x",
    "mailto:someone@example.org", "urn:uuid:1234", "tag:example.org,2026:/a", "//host/p",
    "/rooted/path", "relative/path", "../up/one", "./here", "?only=query", "#only-fragment",
    "http://[::1]/v6", "http://[::1/broken-v6", "http://h:99999/bad-port", "http://h/\u00e9",
    "  http:///spaces  ", "http:", "http://", "http:///", "x://///", "://no-scheme",
    "j\u00e9://x", "HtTp://mixed///case",
]
BASES = ["", "http://example.org/dir/page", "http://example.org/", "https://h/a/b/c",
         "http://[::1/broken", "feed:///odd", "relative/base"]


def test_urljoin_is_feedparsers_own_for_every_pair() -> None:
    original = gate_parser.replaced()["urljoin"]
    for base in BASES:
        for uri in URIS:
            assert gate_parser.urljoin(base, uri) == original(base, uri), (base, uri)


def test_the_parameters_copy_is_a_deep_copy_of_the_same_class_and_items() -> None:
    params = FeedParserDict({"type": "text/html", "language": None, "base": "http://h/"})
    params["value"] = "x"
    fresh = gate_parser.copy_params(params)
    deep = copy.deepcopy(params)
    assert type(fresh) is type(deep) is FeedParserDict
    assert fresh == deep and list(fresh) == list(deep) and fresh is not params
    fresh["type"] = "text/plain"
    assert params["type"] == "text/html"


@pytest.mark.parametrize("value", [["a", "list"], {"a": "dict"}, FeedParserDict(x="nested")])
def test_anything_but_plain_values_is_copied_by_deepcopy(value: Any) -> None:
    params = FeedParserDict({"type": "text/html", "odd": value})
    fresh = gate_parser.copy_params(params)
    assert fresh == copy.deepcopy(params)
    assert fresh["odd"] is not value  # deep: the nested value was copied too


def test_keys_go_through_feedparsers_key_map_as_deepcopy_puts_them() -> None:
    params = FeedParserDict()
    dict.__setitem__(params, "description", "a summary")  # a key the map renames
    assert gate_parser.copy_params(params) == copy.deepcopy(params) == {"summary": "a summary"}


def test_the_gate_parser_uses_the_replacements() -> None:
    """Installed where feedparser is as they were written for (its slash-folding pattern the
    one :func:`gate_parser.urljoin` mirrors): a feedparser that changed it gets none."""
    parser = gate_parser.feedparser()
    assert parser.urls._urifixer.pattern == gate_parser._URIFIXER.pattern
    assert parser.mixin._urljoin is parser.urls._urljoin is gate_parser.urljoin
    assert parser.mixin.copy.deepcopy is gate_parser.copy_params


DOCUMENTS = {
    "atom": """<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en" xml:base="http://example.org/base/">
<id>http:///example.org/feed</id><title type="html">A &amp;lt;b&amp;gt;feed</title>
<subtitle type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Sub <a href="x">t</a></p>
</div></subtitle><updated>2026-01-02T03:04:05Z</updated>
<link href="feed.atom" rel="self"/><link href="http:////example.org//page" rel="alternate"/>
<author><name>N</name><uri>people/n</uri></author><generator uri="/gen">g</generator>
<entry xml:base="entries/" xml:lang="ru"><id>tag:example.org,2026:/1</id>
<title>\u0422\u0435\u043a\u0441\u0442 \x93q\x94</title><link href="one.html"/>
<link rel="enclosure" href="/m/a.mp3" length="10" type="audio/mpeg"/>
<published>2026-01-01T00:00:00+05:00</published><updated>2026-01-02T00:00:00Z</updated>
<summary type="html">&lt;p&gt;S &lt;a href="rel"&gt;l&lt;/a&gt;&lt;/p&gt;</summary>
<content type="html">&lt;p&gt;C&lt;/p&gt;</content><category term="t" scheme="s/" label="L"/>
<source><id>http://other/</id><title>Src</title><updated>2025-01-01T00:00:00Z</updated></source>
</entry>
<entry><id>http://example.org/2</id><title type="text">Plain</title>
<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">x<b>y</b></div></content>
<updated>2026-01-03T00:00:00Z</updated></entry></feed>""",
    "rss": """<?xml version='1.0' encoding='UTF-8'?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"
 xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>R &amp; S</title>
<link>http:///example.org/?a=1&amp;b=2</link><description>&lt;b&gt;D&lt;/b&gt;</description>
<atom:link href="http://example.org/feed.rss" rel="self" type="application/rss+xml"/>
<language>en</language><ttl>30</ttl><lastBuildDate>Fri, 02 Jan 2026 03:04:05 +0000</lastBuildDate>
<item><title>I \x93one\x94</title><link>http:////example.org/1?x=1&amp;y=2</link>
<guid isPermaLink="false">tag:x,1</guid><description>&lt;p&gt;d&lt;/p&gt;</description>
<content:encoded><![CDATA[<p>c <a href="/r">r</a></p>]]></content:encoded>
<dc:creator>Me</dc:creator><dc:language>kk</dc:language>
<pubDate>Thu, 01 Jan 2026 00:00:00 +0000</pubDate><category domain="d/">C</category>
<enclosure url="http://example.org/a.mp3" length="1" type="audio/mpeg"/></item>
<item><title>Two</title><guid>http://example.org/2</guid><description>plain text</description>
</item></channel></rss>""",
}


def _parse(body: bytes, **options: Any) -> Any:
    return feedparser.parse(io.BytesIO(body), response_headers={
        "content-type": "application/xml"}, **options)


def _both(body: bytes, **options: Any) -> tuple[Any, Any]:
    gate_parser.feedparser()  # the replacements in place, even for a test run alone
    fast = _parse(body, **options)
    with gate_parser.shipped():
        slow = _parse(body, **options)
    return fast, slow


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
@pytest.mark.parametrize("options", [{}, {"sanitize_html": False, "resolve_relative_uris": False}])
def test_a_document_reads_the_same_either_way(name: str, options: dict[str, bool]) -> None:
    fast, slow = _both(DOCUMENTS[name].encode("utf-8"), **options)
    assert not slow.bozo and slow.entries
    assert fast.feed == slow.feed
    assert fast.entries == slow.entries
    assert fast.version == slow.version and fast.namespaces == slow.namespaces


def test_every_feed_of_a_built_site_reads_the_same_either_way(build: Any,
                                                               site_dir: Path) -> None:
    build()
    feeds = [p for p in (site_dir / "public").rglob("*")
             if p.suffix in (".rss", ".atom") and p.is_file()]
    assert len(feeds) > 10
    for path in feeds:
        fast, slow = _both(path.read_bytes(), sanitize_html=False, resolve_relative_uris=False)
        assert not slow.bozo, path
        assert (fast.feed, fast.entries) == (slow.feed, slow.entries), path
