"""Feed rendering that is the same for every format: the site's context, the item cache.

A format (:mod:`feedserver.render.formats`, one module each) knows how to draw
one item and how to wrap a channel's items into a document; this module turns
a channel into a document in any format.  Speed and determinism come from the
same design: an article's item is rendered once per format into bytes
(:class:`ItemCache`) and spliced into every channel that lists it, so 200
topic channels do not re-render the same item 200 times.  Every date comes
from content (never ``now()``), so the same articles always give the same bytes.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from feedserver.core import layout
from feedserver.core.records import Article, Channel
from feedserver.render.formats.readings import Readings

if TYPE_CHECKING:
    from feedserver.config import Podcast
    from feedserver.render.formats import Format


@dataclass(frozen=True)
class Context:
    """Site-wide facts every renderer needs besides the channel itself."""

    site_title: str
    base_url: str
    language: str
    author: str
    ttl_minutes: int
    topic_names: dict[str, str]
    hubs: tuple[str, ...] = ()  # WebSub hub URLs every feed names (rel="hub")
    podcast: Podcast | None = None  # which channels are podcasts (render/formats/enclosures)

    def feed_url(self, channel: Channel, filename: str) -> str:
        """Absolute URL of one of the channel's feed files (from base_url only)."""
        return layout.url(self.base_url, layout.channel_file(channel.path, filename))


def ttl_minutes(refresh_seconds: int) -> int:
    """RSS ttl in whole minutes, never shorter than the refresh interval."""
    return max(1, math.ceil(refresh_seconds / 60))


class ItemCache:
    """Rendered items by (format, article), the article being everything they show.

    A pipeline run fills one and every channel reuses it.  With ``limit`` it
    keeps only that many items, the least recently used going first: build
    workers handle channels largest first, so the items shared by many channels
    stay while memory stays bounded.  An evicted item is only rendered again,
    never wrong: the key is the whole :class:`Article` (its ``links`` to other
    articles too, so an item follows the pages it links to).

    A long-lived process (the scheduler) may keep one across builds
    (:class:`feedserver.build.parallel.Executor`), so a one-file change renders one
    or two new items.  Besides the article, an item shows only the
    :class:`Context` (author, base URL, topic names): the cache remembers the
    context its items were rendered with and forgets them all when another
    one comes, so a settings change cannot bring back stale bytes even if the
    caller kept the cache.
    """

    def __init__(self, limit: int | None = None, readings: Readings | None = None,
                 draw: Callable[[Format, Article, Context], bytes] | None = None) -> None:
        self._items: OrderedDict[tuple[str, Article], bytes] = OrderedDict()
        self._limit = limit
        self._context: Context | None = None
        # What the gate's parser read from the items (by their bytes), kept as long as
        # they are: each distinct item is parsed once, not once per channel listing it.
        self.readings = readings if readings is not None else Readings()
        # What makes an item not kept: the format's renderer, or whatever gives the very
        # bytes it would (a web worker's engine takes them from the item records).
        self.draw = draw

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
        found = self._items[key] = fmt.item(article, ctx) if self.draw is None \
            else self.draw(fmt, article, ctx)
        if self._limit is not None and len(self._items) > self._limit:
            self._items.popitem(last=False)
        return found

    def kept(self, fmt: Format, article: Article, ctx: Context) -> bytes | None:
        """The item when it is kept for ``ctx``, else None; nothing is drawn or moved."""
        if ctx is not self._context and ctx != self._context:
            return None
        return self._items.get((fmt.name, article))


def render(channel: Channel, fmt: Format, ctx: Context, cache: ItemCache | None = None) -> bytes:
    """One channel in one format, items spliced from the cache."""
    cache = cache if cache is not None else ItemCache()  # an empty one is falsy
    return fmt.channel(channel, ctx, [cache.get(fmt, a, ctx) for a in channel.articles])
