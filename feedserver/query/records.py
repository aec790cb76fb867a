"""The published form of what a query needs: one index, one record per article.

The build writes them (:func:`index_file`, :func:`record_file`) under
``.feedserver/query/`` (never served by URL); the web app reads them back
(:func:`read_index`, :func:`read_record`) and never parses a seed.  A record holds an
:class:`~feedserver.core.records.Article` field for field (what a renderer draws its
item from) but its seeds path (no renderer shows it, and a renamed file must not make a
new record), plus ``search``: its title and text folded for matching (lower case, no
accents), so ``q`` needs no HTML parsing at request time.  The index holds the site's
render context, every channel's head and, newest first, each article's slug, dates,
topics and language code: enough to choose a channel's items over its whole history
before any record is read.  A record follows its article's page signature
(:mod:`feedserver.build.page_signatures`), so a build rewrites only what changed.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter, itemgetter

import msgspec
import orjson

from feedserver.config import Podcast
from feedserver.core import layout
from feedserver.core.records import Article, Channel, Rendered
from feedserver.query.params import WORD, fold
from feedserver.render.feeds import Context
from feedserver.render.site import EPOCH, Site

JSON_TYPE = "application/json; charset=utf-8"
VERSION = 2  # 2: each channel's head carries its date
_TAG = re.compile(r"<[^>]*>")


def search_text(article: Article) -> str:
    """An article's title and plain text (its HTML content without tags), folded, each
    distinct word once, in the order they first appear.

    ``q`` looks for each of its words (runs of word characters, :data:`WORD`) anywhere
    in this text.  Such a run occurs in a text exactly when it occurs inside one of the
    text's own maximal runs of word characters, so those runs, each once and apart,
    answer every ``q`` as the whole text did (tests/unit/test_query_params.py checks it
    exhaustively), in fewer characters (benchmarks/README.md, "``q`` at 50,000
    articles").  Every web worker keeps these texts (``query.answer.Words``, bounded)
    and reads from its record the ones it does not hold: fewer characters, more held,
    fewer read.
    """
    text = html.unescape(_TAG.sub(" ", str(article.content_html)))
    return " ".join(dict.fromkeys(WORD.findall(fold(f"{article.title} {text}"))))


def _row(values: Iterable[Iterable[str]]) -> list[list[str]]:
    return [list(v) for v in values]


def encode_record(article: Article) -> bytes:
    """One article's record (bytes that change only when the article does)."""
    # Not its seeds path: no renderer draws it, and a renamed file keeps its item.
    data = {f.name: getattr(article, f.name) for f in dataclasses.fields(Article)
            if f.name != "path"}
    data["content_html"] = str(article.content_html)
    data["summary"] = str(article.summary)
    data["media"] = _row(article.media)
    data["links"] = _row(article.links)
    data["search"] = search_text(article)
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS) + b"\n"


def read_record(body: bytes) -> tuple[Article, str]:
    """A record's article and its search text; raises ValueError if garbled."""
    data = orjson.loads(body)
    try:
        search = str(data.pop("search"))
        data["path"] = ""
        data["published"] = datetime.fromisoformat(data["published"])
        data["updated"] = datetime.fromisoformat(data["updated"])
        for name in ("topics",):
            data[name] = tuple(data[name])
        data["media"] = tuple(tuple(row) for row in data["media"])
        data["links"] = tuple(tuple(row) for row in data["links"])
        return Article(**data), search
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an item record: {exc}") from exc


def search_of(body: bytes) -> str:
    """A record's search text alone (what ``q`` matches), without making its article;
    raises ValueError if garbled."""
    data = orjson.loads(body)
    search = data.get("search") if isinstance(data, dict) else None
    if not isinstance(search, str):
        raise ValueError("not an item record: no search text")
    return search


def record_file(article: Article) -> Rendered:
    """The record of ``article`` (with content) as a file of the output."""
    return Rendered(layout.item_record(article.slug), encode_record(article), JSON_TYPE,
                    article.updated)



@dataclass(frozen=True)
class Entry:
    """One published article as the index lists it (newest first)."""

    slug: str
    published: datetime
    updated: datetime
    topics: tuple[str, ...]
    lang: str  # its language channel's code (languages/<code>)


@dataclass(frozen=True)
class Index:
    """What the build published, read back: context, channels' heads, articles."""

    context: Context
    channels: dict[str, Channel]  # by folder ('' is all), without articles
    kinds: dict[str, str]  # topic slug -> kind (place, ..., language)
    entries: tuple[Entry, ...]
    max_items: int
    refresh: int
    ceiling: int


def _context(ctx: Context) -> dict[str, object]:
    data = {f.name: getattr(ctx, f.name) for f in dataclasses.fields(Context)}
    data["podcast"] = dataclasses.asdict(ctx.podcast) if ctx.podcast else None
    return data


def _head(channel: Channel) -> dict[str, object]:
    # ``updated``: what dates a filtered answer when the channel has no history to date
    # it (a site with nothing published: the day its state was first built).
    return {"slug": channel.slug, "title": channel.title, "description": channel.description,
            "html_url": channel.html_url, "language": channel.language,
            "max_age": channel.max_age, "updated": channel.updated.isoformat()}


def index_file(site: Site, max_items: int, refresh: int, ceiling: int,
               default_language: str) -> Rendered:
    """The index of every published article and channel (content-free: any build has it).

    The dates and topics go to orjson as they are: it writes a datetime as ``isoformat``
    does (an article's are UTC, whole seconds) and a tuple as a list, the same bytes
    without 100,000 Python calls per 50,000 articles.  The articles' rows come from
    :data:`_ROWS` (each encoded once per article object); the bytes are those of
    ``orjson.dumps`` of the whole dictionary, keys in this order."""
    codes = layout.language_codes(map(_LANG, site.articles), default_language)
    head = orjson.dumps({
        "version": VERSION,
        "context": _context(site.context),
        "channels": {c.path: _head(c) for c in site.channels},
        "kinds": {slug: topic.kind for slug, topic in site.topics.items()},
    })
    tail = orjson.dumps({"max_items": max_items, "refresh": refresh, "ceiling": ceiling})
    body = b"".join((head[:-1], b',"articles":', _ROWS.encoded(site.articles, codes), b",",
                     tail[1:], b"\n"))
    newest = max((c.updated for c in site.channels), default=EPOCH)
    return Rendered(layout.QUERY_INDEX, body, JSON_TYPE, newest)


_LANG = attrgetter("lang")
_SECOND = itemgetter(1)


class _Rows:
    """The query index's article rows, each encoded once per article object.

    A long-lived build hands in the very objects of its last build for the articles
    that did not change (:class:`feedserver.build.articles.Known`); an article is
    frozen, so its row is its object's, under the same language codes.  Building and
    encoding every row was one of the larger passes of a one-file build at 50,000
    articles; this is a few passes in C when no article changed, and a Python pass when
    one did.  It holds the rows of the last index only, each with its article (so no
    other object can have that id while the row is kept), each a copy of its own length:
    what ``orjson.dumps`` returns keeps the buffer it wrote into, at least 4 KiB, so the
    rows as it made them held 40 MiB at 10,000 articles (2.8 copied), kept by a lasting
    build between builds (benchmarks/README.md, "A kept row, 4 KiB").
    """

    def __init__(self) -> None:
        self.codes: dict[str | None, str] = {}
        self.rows: dict[int, tuple[Article, bytes]] = {}

    def encoded(self, articles: Sequence[Article], codes: dict[str | None, str]) -> bytes:
        """``orjson.dumps`` of the rows of ``articles``, in order."""
        if codes != self.codes:
            self.codes, self.rows = dict(codes), {}
        ids = list(map(id, articles))
        found: list[tuple[Article, bytes] | None] = list(map(self.rows.get, ids))
        # A row holds its article, so no other object has that id while it is kept.
        if None in found:
            for at, article in enumerate(articles):
                if found[at] is None:
                    found[at] = (article, bytes(memoryview(orjson.dumps(
                        [article.slug, article.published, article.updated, article.topics,
                         codes[article.lang]]))))
            self.rows = dict(zip(ids, found, strict=True))  # type: ignore[arg-type]
        return b"[" + b",".join(map(_SECOND, found)) + b"]"  # type: ignore[arg-type]


_ROWS = _Rows()


def read_index(body: bytes) -> Index:
    """The index's bytes -> :class:`Index`; raises ValueError if garbled or of another
    version.

    Read by msgspec, as the manifest is: as fast as orjson, whose document of its own
    made the peak about four times the result (26 MiB for the 1.7 MB index of 10,000
    articles, against 7), in every web worker after each publish."""
    data = msgspec.json.decode(body)
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError("not a query index of this version")
    try:
        ctx = dict(data["context"])
        podcast = ctx.pop("podcast")
        ctx["hubs"] = tuple(ctx["hubs"])
        if podcast:
            podcast["channels"] = tuple(podcast["channels"])
        context = Context(**ctx, podcast=Podcast(**podcast) if podcast else None)
        channels = {path: Channel(path=path, articles=(), **{
                        **head, "updated": datetime.fromisoformat(head["updated"])})
                    for path, head in data["channels"].items()}
        entries = tuple(Entry(slug, datetime.fromisoformat(pub), datetime.fromisoformat(upd),
                              tuple(topics), lang)
                        for slug, pub, upd, topics, lang in data["articles"])
        return Index(context, channels, dict(data["kinds"]), entries, int(data["max_items"]),
                     int(data["refresh"]), int(data["ceiling"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a query index: {exc}") from exc
