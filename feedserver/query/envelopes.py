"""Pure: the document around a computed feed's items, its own URL in it.

A computed (filtered or combined) feed is its channel's head around the items it
chose, and its own URL (``rel="self"``; Atom's id; JSON Feed's ``feed_url``) carries its
canonical query string (:class:`QueryContext`).  Two answers on one channel differ in
their items and that query; the formats drew the same head around them every time
(feedgen: 0.3 ms of an Atom first answer's 2.7 in process, its biggest cost after the
gate's own reading).

:class:`Envelopes` asks a format for a channel head's envelope once, drawn with a query
of :data:`TOKEN`, the characters a canonical query may hold that are not letters or
digits (:data:`PROBE`), and the token again, and fills in each answer's query written as
the format wrote the probe: as it is (JSON) or with ``&`` as ``&amp;`` (XML), the only
two ways it is sound to take; any other, and the head is drawn directly.  So is a query
that is not canonical (``urlencode`` writes only letters, digits and the
probe's characters), and a head where the token stands anywhere but in that run after
``?`` (a URL the format wrote some other way, a title that holds it).  Whatever is drawn
still goes through the gate.  There feedparser reads a filled envelope's own elements
as the template has them, once, and they stand for every answer's: a canonical query's
run, as XML writes it, can only lie inside a text or an attribute's value, and
another run there changes none of expat's events but that value
(:func:`feedserver.render.formats.rss_atom._drafted`).
"""

from __future__ import annotations

import secrets
import string
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from xml.sax.saxutils import escape

from feedserver.core.records import Channel
from feedserver.render.feeds import Context
from feedserver.render.formats import Format
from feedserver.render.formats.base import Drafted, around, spliced_at

# Stands for the query in a kept envelope: random, so no seed's text holds it.
TOKEN = "feedserverquery" + secrets.token_hex(8)
# The characters of a canonical query string (``urlencode``, form-encoded) other
# than letters and digits: how a format writes them is learnt from its envelope.
PROBE = "-._~%=&/+"
CANONICAL = frozenset(string.ascii_letters + string.digits + PROBE)
# How a format may write a canonical query, by how it wrote PROBE: as it is (JSON
# Feed's strings), or XML-escaped (only ``&`` changes).
_WRITERS = {PROBE: lambda query: query, escape(PROBE): escape}
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
        global _OF
        held = _OF  # one read: a pair another thread replaces whole
        if held[0] is not ctx:  # one site context per publish: its fields read once
            held = _OF = (ctx, {**{f: getattr(ctx, f) for f in ctx.__dataclass_fields__},
                                "hubs": ()})
        return cls(**held[1], query=query)


# The last site context QueryContext.of was given, and its fields without hubs.
_OF: tuple[Context | None, dict[str, object]] = (None, {})


class Envelopes:
    """Channel heads' envelopes drawn once, by format and head (see the module's doc)."""

    def __init__(self, kept: int = _KEPT) -> None:
        # (before, after) the items with the token's run where the query goes, and how
        # the format writes a query; None: the format draws this head otherwise.
        self._kept: OrderedDict[tuple[str, Channel], _Draft | None] = OrderedDict()
        self._limit = kept
        self._context: Context | None = None

    def draw(self, fmt: Format, channel: Channel, ctx: QueryContext, plain: Context,
             items: list[bytes]) -> tuple[bytes, tuple[int, int] | None]:
        """The document of ``channel`` and ``items`` in ``fmt`` for ``ctx`` (made from the
        site's ``plain`` one), byte for byte what ``fmt.channel`` draws, and where its
        items lie, separators between them included (None: not known; ``spliced_at``
        finds them where they lie side by side)."""
        body, found, _ = self.drafted(fmt, channel, ctx, plain, items)
        return body, found

    def drafted(self, fmt: Format, channel: Channel, ctx: QueryContext, plain: Context,
                items: list[bytes]) -> tuple[bytes, tuple[int, int] | None, Drafted | None]:
        """:meth:`draw`, and how the envelope was drawn when it was filled in from a kept
        one (the gate's hint: :class:`~feedserver.render.formats.base.Drafted`)."""
        found = self._envelope(fmt, channel, ctx, plain)
        if found is None:
            body = fmt.channel(channel, ctx, items)
            return body, spliced_at(body, items), None
        own = b"?" + found.write(ctx.query).encode()
        before, after = (part.replace(found.hole, own) for part in found.parts)
        body = around(before, after, items, fmt.separator)
        return body, (len(before), len(body) - len(after)), Drafted(found.parts, found.hole, own)

    def _envelope(self, fmt: Format, channel: Channel, ctx: QueryContext,
                  plain: Context) -> _Draft | None:
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
        drafted = _Draft.of(fmt.envelope(head, replace(ctx, query=TOKEN + PROBE + TOKEN)))
        self._kept[key] = drafted
        if len(self._kept) > self._limit:
            self._kept.popitem(last=False)
        return drafted


@dataclass(frozen=True)
class _Draft:
    """An envelope drawn with the token's run for the query, and how to write a query."""

    parts: tuple[bytes, bytes]
    hole: bytes  # ``?`` and the token's run as the format wrote it
    write: Callable[[str], str]

    @classmethod
    def of(cls, drawn: tuple[bytes, bytes] | None) -> _Draft | None:
        """``drawn``'s draft, or None when the query cannot be filled in soundly."""
        if drawn is None:
            return None
        whole, token = b"".join(drawn), TOKEN.encode()
        at = whole.find(b"?" + token)
        end = whole.find(token, at + 1 + len(token)) if at >= 0 else -1
        if end < 0:
            return None
        hole = whole[at:end + len(token)]
        write = _WRITERS.get(hole[1 + len(token):-len(token)].decode("utf-8", "replace"))
        if write is None or whole.count(token) != 2 * whole.count(hole):
            return None  # another way of writing it, or the token somewhere else
        return cls(drawn, hole, write)
