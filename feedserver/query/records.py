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

A record also carries its article's items as the build drew them (``drawn``: the RSS
and Atom fragments, with the key of what drew them, :class:`DrawingKeys`, and their
feedparser readings in the envelopes answers are drawn in, :class:`Drawer`): a
web worker answering with an item it has not drawn before takes the record's instead
of drawing it again with feedgen and lxml (0.13-0.21 ms an item in a worker, 0.06 in a
warm loop) and asking the readings store for its reading (0.04-0.1 ms), when the key is
its own: the same drawing code and the same context give the same bytes
(:class:`~feedserver.render.feeds.ItemCache` rests on that too), and a record drawn by
other code or for another context is drawn again, never trusted.  A record is a line of
JSON, then the items' and readings' bytes as they are (:func:`encode_record`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import html
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import NamedTuple

import msgspec
import orjson

from feedserver.config import Podcast
from feedserver.core import layout
from feedserver.core.records import Article, Channel, Rendered
from feedserver.publish.codedigest import digest
from feedserver.publish.readings_store import code_version, encode
from feedserver.query.params import WORD, fold
from feedserver.render.feeds import Context, ItemCache
from feedserver.render.formats import FORMATS, Format, fingerprint
from feedserver.render.site import EPOCH, Site

JSON_TYPE = "application/json; charset=utf-8"
RECORD_TYPE = "application/octet-stream"  # a line of JSON, then bytes (encode_record)
VERSION = 2  # 2: each channel's head carries its date
_TAG = re.compile(r"<[^>]*>")
# What draws an item's bytes (a format's ``item``): the renderers (not their templates and
# static files, which only the pages read), the records they draw from, and the
# libraries they call.
DRAWING_MODULES = ("render", "core")
DRAWING_LIBRARIES = ("feedgen", "lxml", "orjson")
DRAWING_ASSETS = ("render/templates", "render/static")


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


@functools.cache
def _drawing_code() -> str:
    """The drawing code's digest and the interpreter running it (the standard library
    writes an RSS item's dates)."""
    return f"{digest(DRAWING_MODULES, DRAWING_LIBRARIES, without=DRAWING_ASSETS)}\0{sys.version}"


class DrawingKeys:
    """What an article's items are drawn from besides the article: the drawing code
    (:data:`DRAWING_MODULES`, :data:`DRAWING_LIBRARIES`, Python's version, the registered
    formats) and the context (base URL, author, language...), of its topic names those
    of the article's own topics only.  Equal keys draw equal bytes of equal articles; a
    record's items are taken only under the taker's own key.

    The names of other topics are left out: a record is made again only when its
    article's page is (:mod:`feedserver.build.page_signatures`: the article, the names
    of its topics, the settings, the code), so a key over every topic name made the
    records an earlier build kept differ from those a full build makes, and refused
    every kept record to the web after a topic was added anywhere.  Reckoned for one
    context, its part hashed once (a web worker keys each item new to it)."""

    def __init__(self, ctx: Context) -> None:
        self.context = ctx
        site = {**_context(ctx), "topic_names": None}
        self._site = hashlib.sha256(f"{_drawing_code()}\0{fingerprint()}\0".encode()
                                    + orjson.dumps(site, option=orjson.OPT_SORT_KEYS))

    def of(self, article: Article) -> str:
        """The key of ``article``'s items drawn in this context."""
        names = self.context.topic_names
        named = self._site.copy()
        named.update(orjson.dumps([[slug, names.get(slug, slug)] for slug in article.topics]))
        return named.hexdigest()[:32]


def drawing_key(ctx: Context, article: Article) -> str:
    """:meth:`DrawingKeys.of` for one article."""
    return DrawingKeys(ctx).of(article)


class Drawn(NamedTuple):
    """An article's items as the build drew them, for its record."""

    key: str  # :func:`drawing_key` of the article in the context they were drawn for
    items: dict[str, bytes]  # each format's fragment, by the format's name
    # Readings the build has of them: (format name, reading key, the reading as the
    # readings store keeps one: :func:`feedserver.publish.readings_store.encode`), made
    # by the readings code ``code`` (:func:`~feedserver.publish.readings_store.code_version`).
    readings: tuple[tuple[str, bytes, bytes], ...] = ()
    code: str = ""


class Record(NamedTuple):
    """An item record read back: the article, its search text and its items as the build
    drew them (``key``: :func:`drawing_key` of the build; '' and no items for a record
    that carries none), with the readings the build had of them (by format name: reading
    key, stored reading; ``code``: the readings code that made them)."""

    article: Article
    search: str
    key: str
    drawn: dict[str, bytes]  # by format name
    readings: dict[str, list[tuple[bytes, bytes]]]
    code: str


def encode_record(article: Article, drawn: Drawn | None = None) -> bytes:
    """One article's record (bytes that change only when the article does, or, with
    ``drawn``, the code or context that drew its items, or the readings kept of them).

    One line of JSON (the article, its search text and, with ``drawn``, where each item
    and each reading lies after the line: [start, length]), then the items' and the
    readings' bytes as they are.  Inside the JSON every item was escaped again (its
    quotes, its markup in its markup) and decoded whole at every read: 33 us of a 54 us
    read at 10,000 articles, for the one item an answer takes."""
    # Not its seeds path: no renderer draws it, and a renamed file keeps its item.
    data: dict[str, object] = {f.name: getattr(article, f.name)
                               for f in dataclasses.fields(Article) if f.name != "path"}
    data["content_html"] = str(article.content_html)
    data["summary"] = str(article.summary)
    data["media"] = _row(article.media)
    data["links"] = _row(article.links)
    data["search"] = search_text(article)
    if drawn is None:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS) + b"\n"
    tail: list[bytes] = []
    at = 0

    def place(value: bytes) -> list[int]:
        nonlocal at
        tail.append(value)
        at += len(value)
        return [at - len(value), len(value)]

    data["drawn"] = {
        "key": drawn.key, "code": drawn.code,
        "items": {name: place(fragment) for name, fragment in drawn.items.items()},
        "readings": [[name, key.hex(), *place(value)] for name, key, value in drawn.readings]}
    return b"".join((orjson.dumps(data, option=orjson.OPT_SORT_KEYS), b"\n", *tail))


def read_record(body: bytes) -> tuple[Article, str]:
    """A record's article and its search text; raises ValueError if garbled."""
    found = decode_record(body)
    return found.article, found.search


def _line(body: bytes) -> tuple[dict[str, object], int]:
    """A record's JSON line, decoded, and where the bytes after it start."""
    end = body.find(b"\n")
    end = len(body) if end < 0 else end
    data = orjson.loads(memoryview(body)[:end])
    if not isinstance(data, dict):
        raise ValueError("not an item record")
    return data, end + 1


def decode_record(body: bytes) -> Record:
    """A record read back whole (:class:`Record`); raises ValueError if garbled.  Items
    and readings it cannot place (a shape it does not know, bytes past the end) are left
    out: the reader draws and reads them itself."""
    data, tail = _line(body)
    drawn = data.pop("drawn", None)
    key, code, items = "", "", {}
    readings: dict[str, list[tuple[bytes, bytes]]] = {}
    if isinstance(drawn, dict) and isinstance(drawn.get("key"), str):
        key = drawn["key"]
        room = len(body) - tail

        def placed(where: object) -> bytes | None:
            if type(where) is list and len(where) == 2 and type(where[0]) is int \
                    and type(where[1]) is int and where[0] >= 0 \
                    and 0 <= where[1] <= room - where[0]:
                return body[tail + where[0]:tail + where[0] + where[1]]
            return None

        listed = drawn.get("items")
        for name, where in (listed.items() if isinstance(listed, dict) else ()):
            if (fragment := placed(where)) is not None:
                items[name] = fragment
        code = drawn.get("code") if isinstance(drawn.get("code"), str) else ""
        rows = drawn.get("readings")
        for row in (rows if isinstance(rows, list) else ()):
            if type(row) is list and len(row) == 4 and isinstance(row[0], str) \
                    and isinstance(row[1], str) \
                    and (value := placed(row[2:])) is not None:
                try:
                    readings.setdefault(row[0], []).append((bytes.fromhex(row[1]), value))
                except ValueError:
                    continue
    try:
        search = str(data.pop("search"))
        data["path"] = ""
        data["published"] = datetime.fromisoformat(data["published"])
        data["updated"] = datetime.fromisoformat(data["updated"])
        for name in ("topics",):
            data[name] = tuple(data[name])
        data["media"] = tuple(tuple(row) for row in data["media"])
        data["links"] = tuple(tuple(row) for row in data["links"])
        return Record(Article(**data), search, key, items, readings, code)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an item record: {exc}") from exc


def search_of(body: bytes) -> str:
    """A record's search text alone (what ``q`` matches), without making its article;
    raises ValueError if garbled."""
    search = _line(body)[0].get("search")
    if not isinstance(search, str):
        raise ValueError("not an item record: no search text")
    return search


def record_file(article: Article, drawn: Drawn | None = None) -> Rendered:
    """The record of ``article`` (with content, and its items when ``drawn``) as a file
    of the output."""
    return Rendered(layout.item_record(article.slug), encode_record(article, drawn),
                    RECORD_TYPE, article.updated)


@dataclass(frozen=True)
class Drawer:
    """The maker of item records with their items (``partial(drawer, article)``: one
    argument, the article, as the build's shelf ships page makers).

    The items of the formats whose gate reads items one by one (a ``check_cached``: RSS
    and Atom, drawn by feedgen and read by feedparser, 0.2-0.3 ms an item new to a web
    worker); JSON Feed's item (orjson's, 0.03 ms) is drawn when asked: carried, it made
    the records of 10,000 articles 50 MB larger.

    ``items``: the build's own rendered items, looked up (never filled: a Pool worker's
    copy would only grow), so an incremental build's few records take the items its
    channels just drew; and its readings (what the gate's feedparser read, of this
    build's channels and of earlier ones), of which a record carries those of its items
    in the envelope of answers in the article's language, with the media namespace when
    the article has media (:meth:`_envelope`).  A worker then
    takes an item new to it whole from its record, with no lookup in the readings store
    (0.04-0.1 ms an item).  The drawing keys (:class:`DrawingKeys`) are reckoned once,
    in the build's process.  A format whose renderer raises on this article is left out
    of the record (the web draws it, and answers for it, as a build's channel would): one
    article's record is never held back by one renderer."""

    context: Context
    items: ItemCache | None = None
    _keys: DrawingKeys = field(init=False, compare=False, repr=False)
    # Envelopes by (format name, language, media): each drawn and read once a process.
    _envelopes: dict[tuple[str, str, bool],
                     tuple[bytes, Callable[[bytes], bytes], bytes, Channel] | None] = field(
        default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keys", DrawingKeys(self.context))

    def __call__(self, article: Article) -> Rendered:
        drawn: dict[str, bytes] = {}
        readings: list[tuple[str, bytes, bytes]] = []
        for name, fmt in FORMATS.items():
            if fmt.check_cached is None or fmt.check_cached.of(fmt) is None \
                    or fmt.check_cached.keyer is None:
                continue  # an item the gate reads in no context (JSON): drawn when asked
            kept = self.items.kept(fmt, article, self.context) if self.items else None
            if kept is None:
                try:
                    kept = fmt.item(article, self.context)
                except Exception:  # a renderer on seed text: the web draws it itself
                    continue
            drawn[name] = kept
            readings += self._readings(fmt, article, kept)
        return record_file(article, Drawn(self._keys.of(article), drawn, tuple(readings),
                                          code_version() if readings else ""))

    def _readings(self, fmt: Format, article: Article, fragment: bytes
                  ) -> list[tuple[str, bytes, bytes]]:
        """The reading of ``fragment`` in the envelope of an answer in the article's own
        language (see the class), in the readings store's form; one the build lacks (an
        envelope no channel of the site is drawn in, a reading the store let go) is made
        now: feedparser reads the item in that envelope, as the gate reads an answer, so
        what a record carries never hangs on which documents earlier builds read.

        Only that envelope: an answer listing articles of several languages is in the
        site's (its items in other languages are read from the store there), and on a
        site whose articles are all in another language than its setting no document is
        in the site's language, so its readings would be made for every record (0.8 ms
        each) and never asked for."""
        reader = fmt.check_cached.of(fmt) if fmt.check_cached is not None else None
        if self.items is None or reader is None:
            return []
        envelope = self._envelope(fmt, article.lang or self.context.language, article,
                                  fragment)
        if envelope is None:
            return []
        head, keyer, tail, channel = envelope
        key = keyer(fragment)
        readings = self.items.readings
        seen = readings.get(key)
        if seen is None:
            try:  # the gate's own reading of the item in that envelope
                reader(channel, head + fragment + tail, readings, [fragment])
            except Exception:  # a reading the gate cannot make: none carried
                return []
            seen = readings.get(key)
        value = encode(key, seen, canonical=True) if seen is not None else None
        return [(fmt.name, key, value)] if value is not None else []

    def _envelope(self, fmt: Format, lang: str, article: Article, fragment: bytes
                  ) -> tuple[bytes, Callable[[bytes], bytes], bytes, Channel] | None:
        """An answer's envelope in ``fmt`` in ``lang``, with the media namespace when
        ``article`` carries media (an envelope shows of its channel only its language and
        whether any article carries media: ``Format.envelope``): its bytes before and
        after the items, the keyer of its items' readings and the channel drawn."""
        media = bool(article.media)
        slot = (fmt.name, lang, media)
        if slot not in self._envelopes:
            self._envelopes[slot] = None
            cached = fmt.check_cached
            if cached is not None and cached.of(fmt) is not None and cached.keyer is not None \
                    and fmt.envelope is not None:
                channel = Channel(slug="", title=self.context.site_title or "feed",
                                  description="feed", path="", html_url=self.context.base_url,
                                  articles=(article,) if media else (), updated=EPOCH,
                                  language=lang)
                drawn, keyer = None, None
                try:
                    drawn = fmt.envelope(channel, self.context)
                    keyer = cached.keyer(*drawn, fragment) if drawn is not None else None
                except Exception:  # no envelope drawn: no readings carried
                    keyer = None
                if drawn is not None and keyer is not None:
                    self._envelopes[slot] = (drawn[0], keyer, drawn[1], channel)
        return self._envelopes[slot]


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
