"""What RSS and Atom share: feedgen draws both, feedparser reads both back.

An article is one feedgen entry, drawn as an RSS ``<item>`` or an Atom
``<entry>``; a channel is one feedgen generator.  Items are cut out of a whole
document (:func:`inner`) so the fragment is byte for byte what feedgen writes
inside a full feed, and spliced into the channel's document (:func:`splice`).
Every date comes from content (feedgen's defaults are overwritten), so the same
articles always give the same bytes.

feedgen, lxml and feedparser are imported inside the functions: importing a
format (the web app's negotiation, ``feedserver check --help``) stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from feedserver.core import layout
from feedserver.core.freshness import ttl_minutes
from feedserver.core.records import Article, Channel
from feedserver.render.formats.base import (
    Date,
    Drafted,
    Finding,
    Format,
    ReadBack,
    Seen,
    spliced_at,
)
from feedserver.render.formats.enclosures import seen_enclosures
from feedserver.render.formats.extensions import extend_entry, extend_feed
from feedserver.render.formats.gate_parser import c1_table, feedparser
from feedserver.render.formats.xml_items import Elements, Split, elements, probe, split

if TYPE_CHECKING:
    from feedgen.entry import FeedEntry
    from feedgen.feed import FeedGenerator
    from lxml import etree

    from feedserver.render.feeds import Context
    from feedserver.render.formats.readings import Readings

GENERATOR = "feedserver"
def entry(article: Article, ctx: Context) -> FeedEntry:
    """The article as one feedgen entry, with everything either format shows."""
    from feedgen.entry import FeedEntry

    drawn = FeedEntry()
    extend_entry(drawn, "dc", atom=False, rss=True)
    drawn.id(article.id)
    drawn.guid(article.id, permalink=False)
    drawn.title(article.title)
    drawn.link(href=article.link, rel="alternate", type="text/html")
    drawn.published(article.published)
    drawn.updated(article.updated)
    summary = str(article.summary)
    drawn.summary(summary)
    drawn.description(summary)
    if article.content_html:
        drawn.content(str(article.content_html), type="html")
    author = article.author or ctx.author
    if author:
        drawn.author(name=author)
        drawn.dc.dc_creator(author)
    if own_language(article, ctx):  # else the channel's (the site's) language is the item's
        drawn.dc.dc_language(article.lang)
    for slug in article.topics:
        drawn.category(term=slug, label=ctx.topic_names.get(slug, slug),
                       scheme=layout.folder_url(ctx.base_url, layout.TOPICS))
    return drawn


def own_language(article: Article, ctx: Context) -> bool:
    """Whether an item declares its language: when it is not the site's default.

    An item is drawn once for every channel listing it.  A channel declares its
    articles' one language, or the site default when they are mixed; so an item
    in the default language is right everywhere without saying so, and any other
    says its own (Atom ``xml:lang``, RSS ``dc:language``).
    """
    return bool(article.lang) and article.lang != ctx.language


def inner(root: etree._Element, opening: bytes, closing: bytes) -> bytes:
    """Bytes between the first ``opening`` and the last ``closing`` of ``root``.

    Serialising an item alone would repeat the root's namespace declarations
    on every item; cutting it out of a whole document keeps the fragment
    identical to what feedgen writes inside a full feed.  Text and attribute
    values are escaped, so the markers cannot occur inside them.
    """
    from lxml import etree

    whole = etree.tostring(root, encoding="UTF-8")
    return whole[whole.index(opening) + len(opening): whole.rindex(closing)]


def generator(channel: Channel, ctx: Context, fmt: Format) -> FeedGenerator:
    """The channel's head in ``fmt`` (RSS ignores the id; Atom's is its own URL)."""
    from feedgen.feed import FeedGenerator

    own = ctx.feed_url(channel, fmt.filename)
    gen = FeedGenerator()
    extend_feed(gen, "dc", atom=False, rss=True)
    gen.id(own)
    gen.title(channel.title)
    gen.description(channel.description)
    gen.subtitle(channel.description)
    # feedgen uses the last link as RSS <link>, so the page comes after self.
    gen.link(href=own, rel="self", type=fmt.mime)
    for hub in ctx.hubs:  # WebSub discovery; feedgen writes these in Atom only (see rss.py)
        gen.link(href=hub, rel="hub")
    gen.link(href=channel.html_url, rel="alternate", type="text/html")
    gen.language(channel.language or ctx.language)
    gen.author(name=ctx.author or ctx.site_title)
    gen.generator(GENERATOR, uri=None, version=None)
    gen.updated(channel.updated)
    gen.lastBuildDate(channel.updated)
    # The channel's own pace (core.freshness), else the site's refresh interval.
    gen.ttl(ttl_minutes(channel.max_age) if channel.max_age else ctx.ttl_minutes)
    gen.docs("https://www.rssboard.org/rss-specification")
    return gen


def cut(head: bytes, closing: bytes) -> tuple[bytes, bytes]:
    """A document without items cut where they go: before its last ``closing`` tag."""
    at = head.rindex(closing)
    return head[:at], head[at:]


def as_feedparser_shows(text: str) -> str:
    """The title feedparser hands a reader for ``text`` (mixin.pop, feedparser 6).

    Whitespace stripped; text that encodes as Latin-1 and decodes as UTF-8 is
    re-decoded ("its common error where people take data that is already
    utf-8, presume that it is iso-8859-1"); C1 controls mapped to cp1252.
    Scraped mojibake is common, and rejecting it held back whole channels.
    """
    text = text.strip()
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    return text.translate(c1_table())


def _struct(value: time.struct_time | None) -> Date | None:
    return tuple(value[:6]) if value else None


def read_back(body: bytes, media_type: str, version: str, dates: tuple[str, ...],
              item: tuple[str, int] | None = None, readings: Readings | None = None,
              spliced: list[bytes] | None = None, drafted: Drafted | None = None) -> ReadBack:
    """feedparser's reading of an RSS or Atom document, as a reader would get it.

    The bytes go in a ``BytesIO`` with the media type they are served with;
    ``bozo`` or another ``version`` is a finding about the whole document.
    feedparser's HTML sanitizer and relative-URI resolver are off: they rewrite
    item content for display (ours is sanitized by nh3, with absolute URLs) and
    were a large share of the round trip; well-formedness, the version and every compared
    field come from the same full parse.  ``dates``: which of 'published' and
    'updated' the format carries.

    With ``item`` (the item element's expat name and depth) and ``readings``, the
    same reading costs less (:func:`_pieces`): feedparser parses this document's
    envelope and only the items no document has shown it yet in that context.
    Whatever that path cannot vouch for, it hands to the full parse above.
    ``spliced``: the item fragments the renderer says it spliced into ``body``, a hint
    that spares expat the whole document when it holds up (:func:`_spliced`); an empty
    one says the document holds none (:func:`_itemless`).  ``drafted``: how the
    envelope around them was drawn, a hint that spares expat the envelope too
    (:func:`_drafted`).
    """
    if item is not None and readings is not None:
        found = None
        if spliced:
            found = _spliced(body, media_type, version, dates, item, readings, spliced,
                             drafted)
        elif spliced is not None:  # the renderer says it drew no item
            found = _itemless(body, media_type, version, dates, item, readings, drafted)
        if found is None:
            found = _pieces(body, media_type, version, dates, item, readings)
        if found is not None:
            return found
    parsed = _parse(body, media_type)
    if parsed.bozo:
        return ReadBack([Finding(f"feedparser: {parsed.get('bozo_exception')!s:.200}")])
    if parsed.version != version:
        return ReadBack([Finding(f"parsed as {parsed.version or 'unknown'}, "
                                 f"expected {version}")])
    entries: list[dict[str, Any]] = parsed.entries
    return ReadBack([], [_seen(e, dates) for e in entries], as_feedparser_shows)


def _parse(body: bytes, media_type: str) -> Any:
    return feedparser().parse(io.BytesIO(body), response_headers={"content-type": media_type},
                               sanitize_html=False, resolve_relative_uris=False)


def _seen(entry: dict[str, Any], dates: tuple[str, ...]) -> Seen:
    # Dates by their own key only (dict.get): FeedParserDict.get('updated_parsed') falls
    # back to the published date, which would hide an entry without <updated>.
    return Seen(entry.get("id"), entry.get("title"), entry.get("link"),
                {key: _struct(dict.get(entry, f"{key}_parsed")) for key in dates},
                seen_enclosures(entry))


def _pieces(body: bytes, media_type: str, version: str, dates: tuple[str, ...],
            item: tuple[str, int], readings: Readings) -> ReadBack | None:
    """The reading of :func:`read_back`, feedparser seeing each distinct item once.

    expat reads the whole document (well-formed, items where the renderer puts them,
    in order: :func:`~.xml_items.split`).  feedparser then parses this document's
    own envelope with, spliced into it, every item whose exact bytes it has not read
    in this context before (the envelope alone when there is none): no ``bozo``, the
    version, and exactly one entry per new item.  The items are read back in the
    document's order, each from its digest's reading.  None: something is not as the
    renderer makes it, and the caller parses the whole document instead (so every
    finding is worded as before, and a broken document is judged by the full parse).
    """
    cut = split(body, *item)
    if cut is None:
        return None
    prefix = _prefix(version, media_type, dates, cut.context)[0]
    keys: list[bytes] = []
    for fragment in cut.items:
        digest = prefix.copy()
        digest.update(fragment)
        keys.append(digest.digest())
    new = _unread(keys, cut.items, readings)
    if not _read(cut.head, cut.tail, new, prefix, item[1], media_type, version, dates,
                 readings):
        return None
    return _in_order(keys, readings)


def _unread(keys: list[bytes], fragments: list[bytes], readings: Readings) -> dict[bytes, bytes]:
    """The fragments (by key, in order, each once) that have no reading yet."""
    new: dict[bytes, bytes] = {}
    for key, fragment in zip(keys, fragments, strict=True):
        if key not in new and readings.get(key) is None:
            new[key] = fragment
    return new


def _read(head: bytes, tail: bytes, new: dict[bytes, bytes], prefix: Any, depth: int,
          media_type: str, version: str, dates: tuple[str, ...], readings: Readings,
          envelope_cut: Elements | None = None, context: bytes | None = None) -> bool:
    """feedparser reads the envelope (``head + tail``, well-formed by expat) holding the
    ``new`` items in order: no ``bozo``, the version, one entry per new item, whose
    readings are kept.  False when it is not so.

    The envelope's own elements (the items' siblings: :func:`~.xml_items.elements`) are
    read as the items are, each once in its context: feedparser is given the envelope's
    opening and closing (the prolog and the items' ancestors, the context of both) with
    only the elements it has not read there before, and the new items.  A filtered
    answer's envelope differs from its channel's in its own URL (id and self link) and
    its date: those are what is read, not the channel's title, author and links again
    (and for a drafted envelope, :func:`_drafted`, its template's own URL, once).
    An envelope that cannot be cut so is read whole, as before; an envelope read whole
    or in elements is known by its digest, and a document of it and read items only
    costs no parse.  ``envelope_cut``: :func:`~.xml_items.elements` of ``head + tail``, when
    the caller has it; ``context``: ``prefix``'s digest, when the caller has it.
    """
    envelope = None if new else _envelope_key(prefix, head, tail)
    if envelope is not None and readings.envelope_read(envelope):
        return True
    cut = envelope_cut or elements(head + tail, depth)
    unread: dict[bytes, bytes] = {}
    if cut is None:
        document = head + b"".join(new.values()) + tail
    else:
        context = context or prefix.digest()
        for element in cut.elements:
            key = _element_key(prefix, context, element)
            if key not in unread and not readings.envelope_read(key):
                unread[key] = element
        document = b"".join((cut.opening, *unread.values(), *new.values(), cut.closing))
    if cut is None or unread or new:
        parsed = _parse(document, media_type)
        if parsed.bozo or parsed.version != version or len(parsed.entries) != len(new):
            return False
        for key, entry in zip(new, parsed.entries, strict=True):
            readings.put(key, _seen(entry, dates))
        for key in unread:
            readings.envelope_sound(key)
    if envelope is not None:
        readings.envelope_sound(envelope)
    return True


def _in_order(keys: list[bytes], readings: Readings) -> ReadBack | None:
    """The readings of ``keys`` as the document's items, or None when one was evicted
    meanwhile (a tiny memo): the caller reads the document whole."""
    seen = [readings.get(key) for key in keys]
    if any(s is None for s in seen):
        return None
    return ReadBack([], [s for s in seen if s is not None], as_feedparser_shows)


@functools.lru_cache(maxsize=1024)
def _prefix(version: str, media_type: str, dates: tuple[str, ...], context: bytes
            ) -> tuple[Any, bytes]:
    """The digest every reading's key starts from (what the parser's reading of an item
    may depend on besides its own bytes), and its value.  Kept: a process meets few
    contexts (each channel's and page's own differ only in their URLs, and every
    computed answer of one channel shares one), and callers only copy the digest."""
    prefix = hashlib.sha256(f"{version}\0{media_type}\0{dates}\0".encode() + context)
    return prefix, prefix.digest()


def _envelope_key(prefix: Any, head: bytes, tail: bytes) -> bytes:
    whole = prefix.copy()
    whole.update(b"\0envelope\0" + head + tail)
    return bytes(whole.digest())


def _element_key(prefix: Any, context: bytes, element: bytes) -> bytes:
    """The digest of one of the envelope's own elements in its context (as an item's);
    ``context``: ``prefix``'s digest.

    Kept for the elements met last (:data:`_ELEMENT_KEYS`), by the context's digest and
    the element's bytes: the answers of one channel share all of their envelope's
    elements but those that hold their own URL, and each element cost a SHA-256 (about
    1.5 us) at each answer, ten or more an envelope."""
    pair = (context, element)
    key = _ELEMENT_KEYS.get(pair)
    if key is None:
        one = prefix.copy()
        one.update(b"\0element\0" + element)
        key = bytes(one.digest())
        if len(_ELEMENT_KEYS) >= ELEMENT_KEYS:
            _ELEMENT_KEYS.clear()
        _ELEMENT_KEYS[pair] = key
    return key


# Envelope elements' keys kept (_element_key); past this many all go at once (a channel's
# envelope has about ten, and the elements of one answer's own URL are never met again).
# Few: a build's workers keep them too (each archive page's own links are new), at a few
# hundred bytes each.
ELEMENT_KEYS = 1024
_ELEMENT_KEYS: dict[tuple[bytes, bytes], bytes] = {}


def _spliced(body: bytes, media_type: str, version: str, dates: tuple[str, ...],
             item: tuple[str, int], readings: Readings, spliced: list[bytes],
             drafted: Drafted | None = None) -> ReadBack | None:
    """The reading of :func:`_pieces` when ``body`` holds the renderer's ``spliced`` items,
    without expat reading the whole document.

    :func:`_pieces` has expat read every byte to find the items; for a document of read
    items (a filtered answer, a channel whose items other channels list) that was the
    largest part of the gate's time.  Here the hint is checked instead of trusted:

    * ``body`` must be ``head + b"".join(spliced) + tail`` for some ``head`` and ``tail``;
    * expat reads the envelope with an empty element of the first item's name where the
      items are (``<entry></entry>``: :func:`_witness`), which must be well-formed with
      that element, and no other, where the renderer puts items
      (:func:`~.xml_items.split`); that also gives the context of the readings;
    * every fragment must have a reading in that context, or get one now: expat reads the
      envelope holding only the fragments not read yet and must cut exactly them, one
      whole item each, and feedparser reads that document (as :func:`_pieces` reads the
      envelope with its new items).  A reading is only ever made of a fragment that expat
      cut out of a well-formed document as one whole item element, so each fragment is
      one balanced element, well-formed with the namespaces of that context; such
      elements side by side in place of the one are well-formed too (no DOCTYPE, so no
      entity of the document's own can differ);
    * with no fragment new, feedparser reads the envelope alone, as in :func:`_pieces`.

    So every byte has been read by feedparser in the context it is served in, and the
    document is well-formed, as when expat reads it whole.  Any check failing gives None,
    and the caller takes the path of :func:`_pieces`.  With ``drafted`` (and it holds:
    :func:`_drafted`), expat reads the envelope's template once instead of this envelope.
    """
    found = spliced_at(body, spliced)
    if found is None:
        return None
    head, tail = body[:found[0]], body[found[1]:]
    witness = _witness(spliced[0])
    if witness is None:
        return None
    filled = _drafted(head, tail, drafted, witness, item) if drafted is not None else None
    if filled is not None:
        seen_context, envelope_cut = filled
    else:  # one expat pass: the witness's split, and the envelope's elements (for _read)
        probed = _probed(head, witness, tail, *item)
        if probed is None:
            return None
        seen_context, envelope_cut = probed[0].context, probed[1]
    prefix, context = _prefix(version, media_type, dates, seen_context)
    keys, seen, new = _known(prefix, context, spliced, readings)
    if new:  # cut by expat from the envelope holding only them, then read by feedparser
        cut = split(head + b"".join(new.values()) + tail, *item)
        if cut is None or cut.items != list(new.values()) or cut.context != seen_context:
            return None
    if not _read(head, tail, new, prefix, item[1], media_type, version, dates, readings,
                 envelope_cut, context):
        return None
    if new:
        return _in_order(keys, readings)
    return ReadBack([], seen, as_feedparser_shows)


def _known(prefix: Any, context: bytes, fragments: list[bytes], readings: Readings
           ) -> tuple[list[bytes], list[Seen], dict[bytes, bytes]]:
    """Each fragment's key and reading, and the fragments (by key, in order, each once)
    with none yet: :func:`_unread` and :func:`_in_order` in one pass, for a document whose
    fragments all have readings (a filtered answer's, mostly), which are then the items
    (held here, so none can be evicted before they are returned)."""
    keys: list[bytes] = []
    found: list[Seen] = []
    new: dict[bytes, bytes] = {}
    key_of, get = readings.key_of, readings.get
    for fragment in fragments:
        key = key_of(prefix, context, fragment)
        keys.append(key)
        seen = get(key)
        if seen is None:
            new.setdefault(key, fragment)
        else:
            found.append(seen)
    return keys, found, new


def _itemless(body: bytes, media_type: str, version: str, dates: tuple[str, ...],
              item: tuple[str, int], readings: Readings, drafted: Drafted | None = None
              ) -> ReadBack | None:
    """The reading of :func:`_pieces` for a document the renderer drew with no item.

    A filtered answer that finds nothing (a poller's ``since`` after the newest article,
    a search no article matches) is its channel's envelope alone, and :func:`_pieces`
    cannot cut a document without items: feedparser read it whole, every element of a
    head it had read in that context before (1 ms of the 2.2 an answer took).  Here the
    envelope is read as any answer's is (:func:`_read`: the elements new to that context
    only), once this holds: the items' parent ends in ``body`` after elements only
    (:func:`~.xml_items.elements`), and an empty element of the items' name put just
    before that end (:func:`_witness`) is, to expat, the document's one item, with all
    of ``body`` before it as the head (:func:`~.xml_items.split`).  That is the
    document's well-formedness, and the context of its readings, as the witness gives
    them in :func:`_spliced`.  None otherwise: the caller takes :func:`_pieces`'s path.
    With ``drafted`` (a computed answer's envelope, filled in from its template), when it
    holds (:func:`_drafted`): no expat pass over ``body``, and its own elements are read
    as the template's.
    """
    witness = _witness(b"<" + item[0].rpartition(" ")[2].encode())
    if witness is None:
        return None
    filled = None
    if drafted is not None:  # the template's head, filled in: where the items would be
        head = drafted.parts[0].replace(drafted.hole, drafted.own)
        tail = body[len(head):]
        if body.startswith(head):
            filled = _drafted(head, tail, drafted, witness, item)
    if filled is not None:
        seen_context, cut = filled
    else:
        found = elements(body, item[1])
        if found is None:
            return None
        cut, head, tail = found, body[:len(body) - len(found.closing)], found.closing
        probe = split(head + witness + tail, *item)
        if probe is None or probe.items != [witness] or probe.head != head:
            return None
        seen_context = probe.context
    prefix, context = _prefix(version, media_type, dates, seen_context)
    if not _read(head, tail, {}, prefix, item[1], media_type, version, dates, readings, cut,
                 context):
        return None
    return ReadBack([], [], as_feedparser_shows)


_START = re.compile(rb"<([^\s/>]+)")


def _drafted(head: bytes, tail: bytes, drafted: Drafted, witness: bytes,
             item: tuple[str, int]) -> tuple[bytes, Elements] | None:
    """The context and the elements of an envelope drawn from a template (``drafted``),
    as :func:`~.xml_items.probe` gives them for ``head`` and ``tail`` with ``witness``
    where the items are, or None when the hint does not hold.

    A computed feed's envelope is its channel's template with the template's run of
    query (``hole``) replaced by the answer's own (``own``).  expat read the template
    once (:func:`_template`): well-formed with the witness as its one item, and every
    ``hole`` inside one of the envelope's own elements, none in the opening or the
    closing (the prolog and the items' ancestors: the context).  Here ``head`` and
    ``tail`` must be the template's parts with ``hole`` replaced by ``own``.  Then this
    envelope is the template's opening, elements and closing, each element with ``own``
    in place of ``hole``: the same context, the same places.  An element that holds
    ``own`` is new bytes, which :func:`_read` has feedparser read in that context before
    anything is kept (strict: a filled element that is not well-formed there, or not
    balanced, has no reading; one that has become two elements is read as two); the
    others are the template's own bytes.  Balanced runs of elements well-formed in that
    context, side by side in the template's places, make a well-formed document, as the
    item fragments do in :func:`_spliced`.  That spares expat's pass over each answer's
    envelope (about 50 us of a filtered answer's 0.5 ms in process).

    When ``hole`` and ``own`` are both runs of a canonical query as an XML format writes
    one (:data:`_QUERY_RUN`) and the template's elements that hold ``hole`` hold no
    comment, processing instruction, CDATA section or declaration and declare no
    namespace (whose name would tell feedparser what an element is), the elements given
    back are the template's own, which :func:`_read` has feedparser read in that context
    (once per template): they stand for this answer's.  Such a run starts with ``?``,
    which XML allows in no name and between no attributes, and holds no ``<``, ``>``,
    quote, space or ``]``, and ``&`` only in ``&amp;``: in a well-formed element with no
    other markup it lies inside one text or one attribute value, and ends inside it.
    Another such run in its place gives expat the same events (names, attributes,
    nesting) with other characters in that value, so the document is well-formed, and
    feedparser's verdicts (``bozo``: expat's errors and undeclared prefixes; the version:
    the root's name and attributes; the entries: the items' elements) are the same.
    What a reader takes from those values (a feed's id, its self link) the gate never
    compares; the items are read as they are.  tests/unit/test_gate_drafted.py fills
    random canonical queries in and compares with the full parse.  This spares feedparser
    the read of each answer's own id and self link: 0.18 ms of a 0.47 ms first answer
    in a live worker at 10,000 articles.
    """
    own, hole = drafted.own, drafted.hole
    before, after = drafted.parts
    if head != before.replace(hole, own) or tail != after.replace(hole, own):
        return None
    template = _template(before, after, hole, witness, *item)
    if template is None:
        return None
    context, cut, stands = template
    if stands and _QUERY_RUN.fullmatch(own) is not None:
        return context, cut
    return context, Elements(cut.opening, [e.replace(hole, own) if hole in e else e
                                           for e in cut.elements], cut.closing)


# A run of a canonical query string as an XML format writes it after a URL's path
# (feedserver.query.envelopes: letters, digits, the probe's characters, ``&`` escaped).
_QUERY_RUN = re.compile(rb"\?(?:[A-Za-z0-9\-._~%=/+]|&amp;)*")
# What opens a comment, CDATA section, declaration or processing instruction, and what
# declares a namespace: in an element holding them, a template does not stand for others.
_NOT_STANDING = (b"<!", b"<?", b"xmlns")


@functools.lru_cache(maxsize=256)
def _template(before: bytes, after: bytes, hole: bytes, witness: bytes, name: str,
              depth: int) -> tuple[bytes, Elements, bool] | None:
    """A template envelope's context and elements (:func:`_drafted`), read by expat once,
    and whether its elements may stand for a filled envelope's (``hole`` is a run of
    query, and no element holding it holds other markup than elements or declares a
    namespace); None when it is not well-formed with ``witness`` as its one item, or
    holds ``hole`` anywhere but inside its own elements.  Pure: kept by its arguments."""
    probed = _probed(before, witness, after, name, depth)
    if probed is None or probed[1] is None:
        return None
    split_, cut = probed
    inside = sum(element.count(hole) for element in cut.elements)
    if not hole or hole in cut.opening or hole in cut.closing \
            or inside != (before + after).count(hole):
        return None
    stands = _QUERY_RUN.fullmatch(hole) is not None and not any(
        markup in element for element in cut.elements if hole in element
        for markup in _NOT_STANDING)
    return split_.context, cut, stands


def reading_keyer(head: bytes, tail: bytes, fragment: bytes, media_type: str, version: str,
                  dates: tuple[str, ...], item: tuple[str, int]
                  ) -> Callable[[bytes], bytes] | None:
    """What gives the key :func:`read_back` looks an item's reading up under in documents
    of this envelope (``head``, the items, ``tail``), for items named as ``fragment``'s
    element; None when expat does not find the items' place where the renderer puts it.

    The key is the digest of the items' context as expat reads it with an item in place
    (:func:`_witness`, as :func:`_spliced` reads an answer's envelope) and the item's
    exact bytes, so a reading kept under it is feedparser's of those bytes in that
    context, whatever document it was read in: the build's item records carry the
    readings it has under the keys of the envelopes answers are drawn in
    (:class:`feedserver.query.records.Drawer`)."""
    witness = _witness(fragment)
    if witness is None:
        return None
    probed = _probed(head, witness, tail, *item)
    if probed is None:
        return None
    prefix = _prefix(version, media_type, dates, probed[0].context)[0]

    def key(one: bytes) -> bytes:
        digest = prefix.copy()
        digest.update(one)
        return bytes(digest.digest())

    return key


def _probed(head: bytes, witness: bytes, tail: bytes, name: str, depth: int
            ) -> tuple[Split, Elements | None] | None:
    """:func:`~.xml_items.probe` of the envelope with ``witness`` where its items go,
    when expat finds the witness there as its one item, right after ``head``; else None."""
    probed = probe(head, witness, tail, name, depth)
    if probed is None or probed[0].items != [witness] or probed[0].head != head:
        return None
    return probed


def _witness(fragment: bytes) -> bytes | None:
    """An empty element named as ``fragment``'s own (``<entry></entry>``), or None.

    It stands where the items stand while expat reads the envelope: it is an item to
    expat there exactly when the real items are (same name, so the same namespace, at the
    same depth), and an item element of a few bytes costs expat less than a real one of a
    few kilobytes (0.05 ms for an Atom entry's dozen elements)."""
    found = _START.match(fragment)
    if found is None:
        return None
    return found.group(0) + b"></" + found.group(1) + b">"
