"""JSON Feed 1.1 (``feed.json``), written with the standard ``json``, read back by orjson.

Released feedparser cannot read JSON Feed, so the check is a strict JSON parse plus
the structure the spec requires (version, title, home page and feed URLs, a
list of item objects with ``content_html``); the gate then compares the items
as it does for RSS and Atom.  The embed widget reads this format.

The parse is orjson's: RFC 8259 as strictly as the parsers readers use
(JavaScript's ``JSON.parse`` refuses ``NaN`` and ``Infinity``, which Python's ``json``
reads), and half the time of ``json.loads`` (0.37 against 0.73 ms for a 49-item answer
of 243 kB), the largest share of a computed JSON Feed answer's time.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from feedserver.core.records import Article, Channel
from feedserver.render import archives
from feedserver.render.formats import enclosures
from feedserver.render.formats.base import Date, Finding, Format, ReadBack, Seen, around, utc

if TYPE_CHECKING:
    from feedserver.render.feeds import Context

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
    problems = [Finding(f"missing '{key}'") for key in ("title", "home_page_url", "feed_url")
                if not isinstance(doc.get(key), str)]
    items: Any = doc.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return ReadBack([*problems, Finding("'items' must be a list of objects")])
    for index, found in enumerate(items):
        if not isinstance(found.get("content_html"), str):
            problems.append(Finding(f"item {index + 1}: content_html must be a string", index))
    seen = [Seen(i.get("id"), i.get("title"), i.get("url"),
                 {"published": _date(i.get("date_published")),
                  "updated": _date(i.get("date_modified"))},
                 enclosures=_attachments(i.get("attachments"))) for i in items]
    return ReadBack(problems, seen)


# Validating and compressing a 50-item channel takes ~12 ms (RSS, Atom: ~55 ms).
FORMAT = Format(name="json", filename="feed.json",
                media_type="application/feed+json; charset=utf-8", label="JSON Feed",
                item=item, channel=channel, check=check, cost=1, checked_by="the JSON check",
                envelope=envelope, separator=b",")
