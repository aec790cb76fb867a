"""Format registry: one format-neutral :class:`Channel` to RSS, Atom and JSON Feed.

Each format is a small :class:`Format` value (file name, media type, an item
renderer and a channel renderer) in :data:`FORMATS`; adding a format is adding
an entry, not copying a renderer.  RSS and Atom go through feedgen.

Speed and determinism come from the same design: an article's item is
rendered once per format into bytes (:class:`ItemCache`) and spliced into every
channel that lists it, so 200 topic channels do not re-render the same item 200
times.  Every date comes from content (never ``now()``; feedgen's defaults are
overwritten), so the same articles always give the same bytes.
"""

from __future__ import annotations

import html
import json
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from lxml import etree

from feedserver.core import layout
from feedserver.core.records import Article, Channel

GENERATOR = "feedserver"
RSS_NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
}
ATOM_XMLNS = "http://www.w3.org/2005/Atom"
JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"


@dataclass(frozen=True)
class Context:
    """Site-wide facts every renderer needs besides the channel itself."""

    site_title: str
    base_url: str
    language: str
    author: str
    ttl_minutes: int
    topic_names: dict[str, str]

    def feed_url(self, channel: Channel, filename: str) -> str:
        """Absolute URL of one of the channel's feed files (from base_url only)."""
        return layout.url(self.base_url, layout.channel_file(channel.path, filename))


@dataclass(frozen=True)
class Format:
    """One feed format: where it goes, how it is served, how it is drawn."""

    name: str
    filename: str
    media_type: str
    item: Callable[[Article, Context], bytes]
    channel: Callable[[Channel, Context, list[bytes]], bytes]


def ttl_minutes(refresh_seconds: int) -> int:
    """RSS ttl in whole minutes, never shorter than the refresh interval."""
    return max(1, math.ceil(refresh_seconds / 60))


def _entry(article: Article, ctx: Context) -> FeedEntry:
    entry = FeedEntry()
    entry.load_extension("dc", atom=False, rss=True)
    entry.id(article.id)
    entry.guid(article.id, permalink=False)
    entry.title(article.title)
    entry.link(href=article.link, rel="alternate", type="text/html")
    entry.published(article.published)
    entry.updated(article.updated)
    entry.summary(article.summary)
    entry.description(article.summary)
    if article.content_html:
        entry.content(article.content_html, type="html")
    author = article.author or ctx.author
    if author:
        entry.author(name=author)
        entry.dc.dc_creator(author)
    for slug in article.topics:
        entry.category(term=slug, label=ctx.topic_names.get(slug, slug),
                       scheme=layout.folder_url(ctx.base_url, layout.TOPICS))
    return entry


def _inner(root: etree._Element, opening: bytes, closing: bytes) -> bytes:
    """Bytes between the first ``opening`` and the last ``closing`` of ``root``.

    Serialising an item alone would repeat the root's namespace declarations
    on every item; cutting it out of a whole document keeps the fragment
    identical to what feedgen writes inside a full feed.  Text and attribute
    values are escaped, so the markers cannot occur inside them.
    """
    whole = etree.tostring(root, encoding="UTF-8")
    return whole[whole.index(opening) + len(opening): whole.rindex(closing)]


def rss_item(article: Article, ctx: Context) -> bytes:
    entry = _entry(article, ctx)
    # RSS <description> is HTML; the summary is plain text ("a<b", or a literal
    # "<script>" someone wrote), so it goes in escaped.  Atom's summary is typed text.
    entry.description(html.escape(article.summary, quote=False))
    root = etree.Element("rss", nsmap=RSS_NS)
    etree.SubElement(root, "channel").append(entry.rss_entry())
    return _inner(root, b"<channel>", b"</channel>")


def atom_item(article: Article, ctx: Context) -> bytes:
    root = etree.Element("feed", xmlns=ATOM_XMLNS)
    root.append(_entry(article, ctx).atom_entry())
    return _inner(root, b">", b"</feed>")


def _generator(channel: Channel, ctx: Context, fmt: str) -> FeedGenerator:
    gen = FeedGenerator()
    gen.load_extension("dc", atom=False, rss=True)
    gen.id(ctx.feed_url(channel, FORMATS["atom"].filename))
    gen.title(channel.title)
    gen.description(channel.description)
    gen.subtitle(channel.description)
    # feedgen uses the last link as RSS <link>, so the page comes after self.
    gen.link(href=ctx.feed_url(channel, FORMATS[fmt].filename), rel="self",
             type=FORMATS[fmt].media_type.split(";")[0])
    gen.link(href=channel.html_url, rel="alternate", type="text/html")
    gen.language(ctx.language)
    gen.author(name=ctx.author or ctx.site_title)
    gen.generator(GENERATOR, uri=None, version=None)
    gen.updated(channel.updated)
    gen.lastBuildDate(channel.updated)
    gen.ttl(ctx.ttl_minutes)
    gen.docs("https://www.rssboard.org/rss-specification")
    return gen


def _splice(head: bytes, closing: bytes, items: list[bytes]) -> bytes:
    cut = head.rindex(closing)
    return head[:cut] + b"".join(items) + head[cut:]


def rss_channel(channel: Channel, ctx: Context, items: list[bytes]) -> bytes:
    head = _generator(channel, ctx, "rss").rss_str(pretty=False)
    return _splice(head, b"</channel>", items)


def atom_channel(channel: Channel, ctx: Context, items: list[bytes]) -> bytes:
    head = _generator(channel, ctx, "atom").atom_str(pretty=False)
    return _splice(head, b"</feed>", items)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def json_item(article: Article, ctx: Context) -> bytes:
    item: dict[str, object] = {
        "id": article.id,
        "url": article.link,
        "title": article.title,
        "content_html": article.content_html,
        "summary": article.summary,
        "date_published": _iso(article.published),
        "date_modified": _iso(article.updated),
        "tags": [ctx.topic_names.get(slug, slug) for slug in article.topics],
        "language": article.lang or ctx.language,
    }
    author = article.author or ctx.author
    if author:
        item["authors"] = [{"name": author}]
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()


def json_channel(channel: Channel, ctx: Context, items: list[bytes]) -> bytes:
    head: dict[str, object] = {
        "version": JSONFEED_VERSION,
        "title": channel.title,
        "home_page_url": channel.html_url,
        "feed_url": ctx.feed_url(channel, FORMATS["json"].filename),
        "description": channel.description,
        "language": ctx.language,
        "authors": [{"name": ctx.author or ctx.site_title}],
    }
    opening = json.dumps(head, ensure_ascii=False, separators=(",", ":")).encode()
    return opening[:-1] + b',"items":[' + b",".join(items) + b"]}\n"


FORMATS: dict[str, Format] = {
    "rss": Format("rss", "feed.rss", "application/rss+xml; charset=utf-8", rss_item, rss_channel),
    "atom": Format("atom", "feed.atom", "application/atom+xml; charset=utf-8", atom_item,
                   atom_channel),
    "json": Format("json", "feed.json", "application/feed+json; charset=utf-8", json_item,
                   json_channel),
}
DEFAULT_FORMAT = "rss"


class ItemCache:
    """Rendered items by (format, article), the article being everything they show.

    A pipeline run fills one and every channel reuses it.  With ``limit`` it
    keeps only that many items, the least recently used going first: build
    workers handle channels largest first, so the items shared by many channels
    stay while memory stays bounded.  An evicted item is only rendered again,
    never wrong: the key is the whole :class:`Article`.

    A long-lived process (the scheduler) may keep one across builds
    (:class:`feedserver.build.parallel.Executor`), so a one-file change renders one
    or two new items.  Besides the article, an item shows only the
    :class:`Context` (author, base URL, topic names): the cache remembers the
    context its items were rendered with and forgets them all when another
    one comes, so a settings change cannot bring back stale bytes even if the
    caller kept the cache.
    """

    def __init__(self, limit: int | None = None) -> None:
        self._items: OrderedDict[tuple[str, Article], bytes] = OrderedDict()
        self._limit = limit
        self._context: Context | None = None

    def __len__(self) -> int:
        return len(self._items)

    def get(self, fmt: Format, article: Article, ctx: Context) -> bytes:
        if ctx is not self._context:  # one comparison per build: the site's one context
            if ctx != self._context:
                self._items.clear()
            self._context = ctx
        key = (fmt.name, article)
        found = self._items.get(key)
        if found is not None:
            if self._limit is not None:
                self._items.move_to_end(key)
            return found
        found = self._items[key] = fmt.item(article, ctx)
        if self._limit is not None and len(self._items) > self._limit:
            self._items.popitem(last=False)
        return found


def render(channel: Channel, fmt: Format, ctx: Context, cache: ItemCache | None = None) -> bytes:
    """One channel in one format, items spliced from the cache."""
    cache = cache if cache is not None else ItemCache()  # an empty one is falsy
    return fmt.channel(channel, ctx, [cache.get(fmt, a, ctx) for a in channel.articles])
