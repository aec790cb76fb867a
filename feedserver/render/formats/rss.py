"""RSS 2.0 (``feed.rss``), drawn by feedgen and read back by feedparser.

RSS carries one date per item (``pubDate``), so the gate compares only that.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

from feedserver.core.records import Article, Channel
from feedserver.render import archives
from feedserver.render.formats import enclosures, rss_atom
from feedserver.render.formats.base import CachedCheck, Drafted, Format, ReadBack, around

if TYPE_CHECKING:
    from feedserver.render.feeds import Context
    from feedserver.render.formats.readings import Readings

RSS_NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "media": enclosures.MEDIA_NS,  # declared by a channel only when an item uses it
}
ITEM = ("item", 3)  # expat's name and depth of an item (rss > channel > item)


def item(article: Article, ctx: Context) -> bytes:
    """One ``<item>``."""
    from lxml import etree

    entry = rss_atom.entry(article, ctx)
    # RSS <description> is HTML; the summary is plain text ("a<b", or a literal
    # "<script>" someone wrote), so it goes in escaped.  Atom's summary is typed text.
    entry.description(html.escape(str(article.summary), quote=False))
    enclosures.rss_enclosure(entry, article)
    root = etree.Element("rss", nsmap=RSS_NS)
    drawn = entry.rss_entry()
    if article.media:
        enclosures.media_elements(drawn, article)
    etree.SubElement(root, "channel").append(drawn)
    return rss_atom.inner(root, b"<channel>", b"</channel>")


def envelope(chan: Channel, ctx: Context) -> tuple[bytes, bytes] | None:
    """The document's bytes before and after its items (which go before
    ``</channel>``), or None for a podcast, whose document is made over again with its
    items in it (:func:`~feedserver.render.formats.enclosures.podcast_document`).

    Of the channel's articles it shows only whether any carries media (see
    :func:`feedserver.render.formats.atom.envelope`)."""
    if enclosures.podcast_of(chan, ctx) is not None:
        return None
    return _envelope(chan, ctx)


def _envelope(chan: Channel, ctx: Context) -> tuple[bytes, bytes]:
    gen = rss_atom.generator(chan, ctx, FORMAT)
    enclosures.declare_media(gen, chan, atom=False)
    head = with_hubs(gen.rss_str(pretty=False), ctx.hubs)
    head = archives.insert_after_self(head, b"<atom:link ",
                                      archives.atom_links(chan, ctx, FORMAT.filename, "atom:"))
    return rss_atom.cut(head, b"</channel>")


def channel(chan: Channel, ctx: Context, items: list[bytes]) -> bytes:
    """The whole document, the items spliced into ``<channel>``."""
    body = around(*_envelope(chan, ctx), items)
    podcast = enclosures.podcast_of(chan, ctx)
    if podcast is not None:
        body = enclosures.podcast_document(body, chan, ctx, podcast,
                                           ctx.feed_url(chan, FORMAT.filename))
    return body


def with_hubs(head: bytes, hubs: tuple[str, ...]) -> bytes:
    """``<atom:link rel="hub">`` for each WebSub hub, right after the self link.

    feedgen writes only the ``rel="self"`` link into RSS and turns any other
    link into the channel's plain ``<link>``, so the hub links are added here,
    in the ``atom`` prefix the document already declares.
    """
    if not hubs:
        return head
    start = head.index(b"<atom:link ")
    end = head.index(b"/>", start) + 2
    links = b"".join(f"<atom:link href={quoteattr(hub)} rel=\"hub\"/>".encode()
                     for hub in hubs)
    return head[:end] + links + head[end:]


def check(chan: Channel, body: bytes) -> ReadBack:
    """feedparser must read RSS 2.0 with every item's id, title, link and pubDate."""
    return rss_atom.read_back(body, FORMAT.media_type, "rss20", ("published",))


def check_cached(chan: Channel, body: bytes, readings: Readings,
                 spliced: list[bytes] | None = None, drafted: Drafted | None = None
                 ) -> ReadBack:
    """:func:`check`, feedparser parsing only items it has not read (``rss_atom``);
    ``spliced``: the item fragments the renderer spliced in, ``drafted``: how its
    envelope was drawn, hints it checks."""
    return rss_atom.read_back(body, FORMAT.media_type, "rss20", ("published",), ITEM, readings,
                              spliced, drafted)


def keyer(head: bytes, tail: bytes, fragment: bytes) -> Callable[[bytes], bytes] | None:
    """:func:`check_cached`'s keys of items' readings in documents of this envelope
    (:func:`rss_atom.reading_keyer`)."""
    return rss_atom.reading_keyer(head, tail, fragment, FORMAT.media_type, "rss20",
                                  ("published",), ITEM)


# Validating and compressing a 50-item channel takes ~53 ms (JSON Feed: ~12 ms).
FORMAT = Format(name="rss", filename="feed.rss", media_type="application/rss+xml; charset=utf-8",
                label="RSS", item=item, channel=channel, check=check, cost=5,
                checked_by="feedparser",
                check_cached=CachedCheck(check, check_cached, keyer), envelope=envelope)
