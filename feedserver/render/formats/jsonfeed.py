"""JSON Feed 1.1 (``feed.json``), written with the standard ``json``, read back by orjson.

Released feedparser cannot read JSON Feed, so the check is a strict JSON parse plus
the structure the spec requires (version, title, home page and feed URLs, a
list of item objects with ``content_html``); the gate then compares the items
as it does for RSS and Atom.  The embed widget reads this format.

The parse is orjson's: RFC 8259 as strictly as the parsers readers use
(JavaScript's ``JSON.parse`` refuses ``NaN`` and ``Infinity``, which Python's ``json``
reads), and half the time of ``json.loads`` (0.37 against 0.73 ms for a 49-item answer
of 243 kB), the largest share of a computed JSON Feed answer's time until the gate
parsed each item once a process (:func:`check_cached`).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from feedserver.core.records import Article, Channel
from feedserver.render import archives
from feedserver.render.formats import enclosures
from feedserver.render.formats.base import (
    CachedCheck,
    Date,
    Drafted,
    Finding,
    Format,
    ReadBack,
    Seen,
    around,
    spliced_at,
    utc,
)

if TYPE_CHECKING:
    from feedserver.render.feeds import Context
    from feedserver.render.formats.readings import Readings

JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"


def _compact(value: dict[str, object]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def item(article: Article, ctx: Context) -> bytes:
    """One item object."""
    drawn: dict[str, object] = {
        "id": article.id,
        "url": article.link,
        "title": article.title,
        "content_html": str(article.content_html),
        "summary": str(article.summary),
        "date_published": article.published.isoformat(),
        "date_modified": article.updated.isoformat(),
        "tags": [ctx.topic_names.get(slug, slug) for slug in article.topics],
        "language": article.lang or ctx.language,
    }
    author = article.author or ctx.author
    if author:
        drawn["authors"] = [{"name": author}]
    if article.media:
        drawn.update(enclosures.json_fields(article))
    return _compact(drawn)


def envelope(chan: Channel, ctx: Context) -> tuple[bytes, bytes]:
    """The document's bytes before and after its items (joined by commas): the head's
    fields, then the items' list.  Of the channel's articles it shows none."""
    head: dict[str, object] = {
        "version": JSONFEED_VERSION,
        "title": chan.title,
        "home_page_url": chan.html_url,
        "feed_url": ctx.feed_url(chan, FORMAT.filename),
        "description": chan.description,
        "language": chan.language or ctx.language,
        "authors": [{"name": ctx.author or ctx.site_title}],
    }
    if ctx.hubs:  # JSON Feed 1.1 "hubs": where to subscribe for pushes (WebSub)
        head["hubs"] = [{"type": "WebSub", "url": hub} for hub in ctx.hubs]
    older = archives.next_url(chan, ctx, FORMAT.filename)
    if older:  # JSON Feed 1.1 pagination: the next (older) items (RFC 5005 archives)
        head["next_url"] = older
    return _compact(head)[:-1] + b',"items":[', b"]}\n"


def channel(chan: Channel, ctx: Context, items: list[bytes]) -> bytes:
    """The whole document: the head's fields, then the items."""
    return around(*envelope(chan, ctx), items, FORMAT.separator)


def _date(value: object) -> Date | None:
    return _date_of(str(value))


@lru_cache(maxsize=16_384)
def _date_of(text: str) -> Date | None:
    """Remembered, as :func:`~feedserver.render.formats.base.utc` is: every document
    listing an item has the gate read its two dates again (98 parses in a 49-item
    answer)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return utc(moment) if moment.tzinfo else None


def _attachments(value: object) -> tuple[str, ...]:
    """The attachment URLs of one item, sorted (what the gate compares)."""
    if not isinstance(value, list):
        return ()
    return tuple(sorted(str(a.get("url")) for a in value if isinstance(a, dict)))


def check(chan: Channel, body: bytes) -> ReadBack:
    """Structural JSON Feed 1.1 checks, then the items as a reader gets them."""
    import orjson  # here: importing the formats loads no parser (a web worker's start)

    try:
        doc = orjson.loads(body)  # invalid UTF-8 too is a JSONDecodeError (a ValueError)
    except ValueError as exc:
        return ReadBack([Finding(f"not valid JSON: {exc}")])
    if not isinstance(doc, dict) or doc.get("version") != JSONFEED_VERSION:
        return ReadBack([Finding("missing or wrong JSON Feed version")])
    problems = _head_problems(doc)
    items: Any = doc.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return ReadBack([*problems, Finding("'items' must be a list of objects")])
    for index, found in enumerate(items):
        if not isinstance(found.get("content_html"), str):
            problems.append(Finding(f"item {index + 1}: content_html must be a string", index))
    return ReadBack(problems, [_seen(i) for i in items])


def _head_problems(doc: dict[str, Any]) -> list[Finding]:
    return [Finding(f"missing '{key}'") for key in ("title", "home_page_url", "feed_url")
            if not isinstance(doc.get(key), str)]


def _seen(found: dict[str, Any]) -> Seen:
    return Seen(found.get("id"), found.get("title"), found.get("url"),
                {"published": _date(found.get("date_published")),
                 "updated": _date(found.get("date_modified"))},
                enclosures=_attachments(found.get("attachments")))


def check_cached(chan: Channel, body: bytes, readings: Readings,
                 spliced: list[bytes] | None = None, drafted: Drafted | None = None
                 ) -> ReadBack:
    """:func:`check`'s reading of ``body``, each item parsed once per process.

    A computed answer lists items other answers listed, and :func:`check` parsed the whole
    document every time (a 25-item answer, about 75 kB) and made each item's reading
    anew, so the gate compared every item with its article again.  With ``spliced``, the
    item objects the renderer joined by commas, found so in ``body``:

    * orjson parses the envelope with a witness object where the items are, then with two
      witnesses side by side: the items list of the first must be the one witness, and
      of the second the two.  Then that place is inside the document's own ``items``
      list, holding nothing else: two values side by side are only valid in a list,
      and only that list changed between the two documents;
    * each item is parsed by itself (:func:`_item`, kept per process): it must be one
      JSON object with a string ``content_html``, at most a thousand lists and objects
      deep (orjson reads 1,024 levels, the document adds two).

    JSON means the same wherever a value stands: values side by side in a list's place
    make a valid document whose items are those values, so the reading is
    :func:`check`'s, and each item's is the same object in every answer (the gate's
    comparison memo, :class:`~.readings.Agreed`, keeps it).  Anything else (no hint, no
    item, a hint that does not hold, an item that is not so) is read by :func:`check`.
    ``readings`` (the XML formats' feedparser readings) and ``drafted`` are not used: a
    reading here needs no context.  tests/unit/test_jsonfeed_cached.py compares the
    findings with :func:`check`'s for edited, forged and misplaced documents.
    """
    del readings, drafted  # see above
    import orjson

    found = spliced_at(body, spliced, FORMAT.separator) if spliced else None
    if found is None:
        return check(chan, body)
    head, tail = body[:found[0]], body[found[1]:]
    try:
        one = orjson.loads(head + _WITNESS + tail)
        two = orjson.loads(head + _WITNESS + FORMAT.separator + _WITNESS + tail)
    except ValueError:
        return check(chan, body)
    if not isinstance(one, dict) or not isinstance(two, dict) \
            or one.get("items") != [_WITNESSED] or two.get("items") != [_WITNESSED] * 2 \
            or one.get("version") != JSONFEED_VERSION:
        return check(chan, body)
    seen: list[Seen] = []
    for fragment in spliced or ():
        reading = _item(fragment)
        if reading is None:
            return check(chan, body)
        seen.append(reading)
    return ReadBack(_head_problems(one), seen)


# Stands where the items go while the envelope is parsed (check_cached).
_WITNESSED = {"feedserver witness": 0}
_WITNESS = b'{"feedserver witness":0}'
# Lists and objects an item may open (orjson reads 1,024 levels; the document adds two).
_DEPTH = 1000


@lru_cache(maxsize=4096)
def _item(fragment: bytes) -> Seen | None:
    """The reading of one item object, parsed by itself: None when it is not a JSON
    object with a string ``content_html`` or may be too deep inside a document.  Kept:
    a pure function of the bytes, and every answer listing an item hands the gate the
    same bytes object (cheap to hash again, compared by identity first)."""
    import orjson

    if fragment.count(b"[") + fragment.count(b"{") > _DEPTH:
        return None
    try:
        value = orjson.loads(fragment)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("content_html"), str):
        return None
    return _seen(value)


# Validating and compressing a 50-item channel takes ~12 ms (RSS, Atom: ~55 ms).
FORMAT = Format(name="json", filename="feed.json",
                media_type="application/feed+json; charset=utf-8", label="JSON Feed",
                item=item, channel=channel, check=check, cost=1, checked_by="the JSON check",
                check_cached=CachedCheck(check, check_cached), envelope=envelope,
                separator=b",")
