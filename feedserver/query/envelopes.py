"""Pure: the document around a computed feed's items, its own URL in it.

A computed (filtered or combined) feed is its channel's head around the items it
chose, and its own URL (``rel="self"``; Atom's id) carries its canonical query
string (:class:`QueryContext`).  Two answers on one channel differ in their items and
that query; feedgen drew the same head around them every time (0.3 ms of a first
answer's 2.7 in process, its biggest cost after the gate's own reading).

:class:`Envelopes` asks a format for a channel head's envelope once, drawn with
:data:`TOKEN` as the query, and fills in each answer's query, escaped as lxml escapes
it.  That is sound where the query is canonical (:data:`CANONICAL`: what
``urlencode`` with ``quote`` writes, where ``&`` is the one character XML escapes)
and the token stands only where the query goes (``?`` before each of its
occurrences: a URL the format wrote some other way, a title that holds it, and
the head is drawn directly instead).  Whatever is drawn still goes through the
gate, which reads the answer's own elements with feedparser.
"""

from __future__ import annotations

import secrets
import string
from collections import OrderedDict
from dataclasses import dataclass, replace
from xml.sax.saxutils import escape

from feedserver.core.records import Channel
from feedserver.render.feeds import Context
from feedserver.render.formats import Format
from feedserver.render.formats.base import spliced_at

# Stands for the query in a kept envelope: random, so no seed's text holds it.
TOKEN = "feedserverquery" + secrets.token_hex(8)
_HOLE = b"?" + TOKEN.encode()
# The characters of a canonical query string (``urlencode(..., quote_via=quote)``).
CANONICAL = frozenset(string.ascii_letters + string.digits + "-._~%=&/+")
_KEPT = 256  # envelopes an engine keeps, least recently used first out


@dataclass(frozen=True)
class QueryContext(Context):
    """The site's context, but a feed's own URL carries its canonical query string, and it
    names no WebSub hub (:meth:`of`)."""

    query: str = ""

    def feed_url(self, channel: Channel, filename: str) -> str:
        own = super().feed_url(channel, filename)
        return f"{own}?{self.query}" if self.query else own

    @classmethod
    def of(cls, ctx: Context, query: str) -> QueryContext:
        """``ctx`` for a computed feed.  Without hubs: no publish tells a hub about a
        filtered or combined feed, and the built-in hub refuses its URL as a topic, so
        naming one sent subscribers to a subscription refused or never pushed to."""
        fields = {f: getattr(ctx, f) for f in ctx.__dataclass_fields__}
        return cls(**{**fields, "hubs": ()}, query=query)


class Envelopes:
    """Channel heads' envelopes with :data:`TOKEN` for the query, by format and head."""

    def __init__(self, kept: int = _KEPT) -> None:
        # (before, after) the items, or None: the format draws this head otherwise.
        self._kept: OrderedDict[tuple[str, Channel], tuple[bytes, bytes] | None] = \
            OrderedDict()
        self._limit = kept
        self._context: Context | None = None

    def draw(self, fmt: Format, channel: Channel, ctx: QueryContext, plain: Context,
             items: list[bytes]) -> tuple[bytes, tuple[int, int] | None]:
        """The document of ``channel`` and ``items`` in ``fmt`` for ``ctx`` (made from the
        site's ``plain`` one), byte for byte what ``fmt.channel`` draws, and where its
        items lie (None: not known; ``spliced_at`` finds them)."""
        found = self._envelope(fmt, channel, ctx, plain)
        if found is None:
            body = fmt.channel(channel, ctx, items)
            return body, spliced_at(body, items)
        own = b"?" + escape(ctx.query).encode()
        before, after = (part.replace(_HOLE, own) for part in found)
        at = len(before)
        return b"".join((before, *items, after)), (at, at + sum(map(len, items)))

    def _envelope(self, fmt: Format, channel: Channel, ctx: QueryContext,
                  plain: Context) -> tuple[bytes, bytes] | None:
        """The head's envelope with the token, drawn once; None: draw it all directly."""
        if fmt.envelope is None or not ctx.query or not CANONICAL.issuperset(ctx.query):
            return None
        if plain is not self._context:  # another site context: every envelope may differ
            if plain != self._context:
                self._kept.clear()
            self._context = plain
        # Of the articles an envelope shows only whether one carries media (Format).
        media = next((a for a in channel.articles if a.media), None)
        head = replace(channel, articles=(media,) if media is not None else ())
        key = (fmt.name, head)
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        drawn = fmt.envelope(head, replace(ctx, query=TOKEN))
        whole = b"".join(drawn) if drawn is not None else b""
        if whole.count(TOKEN.encode()) != whole.count(_HOLE):
            drawn = None  # the token stands somewhere other than the query's place
        self._kept[key] = drawn
        if len(self._kept) > self._limit:
            self._kept.popitem(last=False)
        return drawn
