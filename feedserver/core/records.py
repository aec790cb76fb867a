"""Plain data that flows between the stages.

Every stage of the pipeline hands the next one frozen values, so a stage can be
tested alone and nothing downstream can change what upstream decided.  None of
these classes does I/O or asks the clock: dates arrive from the ledger or the
caller's ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter

from feedserver.core.packed import Packed


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One article file as the scanner read it (path relative to seeds, POSIX)."""

    path: str
    data: bytes
    mtime: float


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that went wrong with one file or one channel, and why.

    ``where`` names the file (relative path) or the channel (``channel:slug/format``)
    so that a person can find and fix it.
    """

    where: str
    reason: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


# -- one article, from its file to the build ---------------------------------------------
#
# What a file says is a Head (light: kept for every article, so 10,000 can be ordered
# and put in channels) and a Body (heavy: fetched only for what is about to be
# rendered).  Parsed is both, plus what only the topic rules read; Stub is the head plus
# what the build derived from the parse (content digest, topics).  Conversions between
# them, into Article, and the parse cache's storage follow the fields
# (:mod:`feedserver.core.fieldwise`): a new field of what a file says (an image, a
# language) is one line in Head, and one in Article if renderers show it.


@dataclass(frozen=True, slots=True)
class Body:
    """The heavy part of what a file says: what only rendering needs."""

    content_html: str
    summary: str


@dataclass(frozen=True, kw_only=True)
class Head:
    """The light part of what a file says: what every article keeps, parsed or cached.

    Only a base (no slots of its own, so :class:`Parsed` can also be a
    :class:`Body`: two bases with slots cannot be combined); its subclasses are
    slotted.  ``fingerprint`` hashes only what a reader would see (title, text,
    topics, explicit dates), so whitespace or debris edits do not count as updates.
    ``body_print`` hashes the text alone ('' when it is too short to tell articles
    apart): it recognises a file renamed *and* retitled in one build.
    """

    __slots__ = ()
    path: str
    title: str
    fingerprint: str
    body_print: str = ""
    author: str | None = None
    lang: str | None = None
    date: datetime | None = None
    updated: datetime | None = None
    explicit_id: str | None = None
    explicit_slug: str | None = None
    draft: bool = False
    # The pictures, enclosures and attachments it shows (feedserver.core.media.MediaRow),
    # and the media files and articles its parse looked up, each with the stamp it had
    # ('' when missing): the parse cache holds only while every one is unchanged.
    media: tuple[tuple[str, ...], ...] = ()
    needs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed(Head, Body):
    """What one file says, before the ledger has given it an identity.

    ``text`` (the plain text) and ``topics`` (the file's own topic names) feed
    the topic rules, which turn them into a :class:`Stub`'s ``slugs``.
    """

    text: str
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Stub(Head):
    """One parsed file without its content: what the parse cache loads for every file.

    ``digest`` hashes everything a renderer may show (equal digests draw equal
    items); ``slugs`` are the assigned topics and ``names`` their display names.
    """

    digest: str
    slugs: tuple[str, ...] = ()
    names: tuple[tuple[str, str], ...] = ()
    # Topics found in the text, not named by config or front matter: (slug, name, kind),
    # kind one of place/organisation/person/subject.  Only these wait for
    # ``min_topic_articles`` before they make a channel.
    detected: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Identity:
    """What the ledger remembers about an article: never changes on edits."""

    id: str
    slug: str
    first_seen: datetime
    changed: datetime


class _KeptHash:
    """A slot for an object's hash, worked out on first use (see :class:`Article`).  A
    slot of a base class, not a field: a dataclass pickles and copies its fields only, so
    a hash (of strings: it differs between processes) never travels with the object."""

    __slots__ = ("_kept_hash",)


@dataclass(frozen=True, slots=True)
class Article(_KeptHash):
    """A publishable article: parsed content plus its identity and final dates.

    Its hash is the generated one's (every field's, as ``__eq__`` compares them) kept
    after the first use: an article is a key of the rendered items, of a channel's
    validated bodies and of the signatures, and a filtered answer of 49 items hashed
    each twice, 14 fields every time, about 1 us an article in a web worker, where they
    are seldom in the processor's cache."""

    id: str
    slug: str
    path: str
    title: str
    link: str
    # A full copy's content as built by a process that builds once may be packed
    # (feedserver.core.packed: str(...) is the text); read it as str(article.content_html).
    content_html: str | Packed
    summary: str | Packed  # packed with the content: read it as str(article.summary)
    published: datetime
    updated: datetime
    topics: tuple[str, ...] = ()
    author: str | None = None
    lang: str | None = None
    media: tuple[tuple[str, ...], ...] = ()  # feedserver.core.media.MediaRow each
    # The articles its content links to (seeds path, that article's page URL or '' while
    # it is not published): part of the article, so everything keyed by it (signatures,
    # rendered items, filled copies) follows the linked articles (feedserver.build.links).
    links: tuple[tuple[str, str], ...] = ()

    def __hash__(self) -> int:
        try:
            return self._kept_hash
        except AttributeError:
            value = hash(_ARTICLE_FIELDS(self))
            object.__setattr__(self, "_kept_hash", value)
            return value


# Every field of an article, in order, as a tuple: what its hash is made of.
_ARTICLE_FIELDS = attrgetter(*(f.name for f in fields(Article)))


@dataclass(frozen=True, slots=True)
class Topic:
    """A channel's name and description, keyed by its URL slug."""

    slug: str
    name: str
    description: str = ""
    kind: str = "subject"  # place, organisation, person, subject (or language)


@dataclass(frozen=True, slots=True)
class Channel:
    """A format-neutral channel: what every renderer receives.

    ``path`` is the folder inside the output ('' for all, 'topics/<slug>').
    """

    slug: str
    title: str
    description: str
    path: str
    html_url: str
    articles: tuple[Article, ...]
    updated: datetime
    topic_names: dict[str, str] = field(default_factory=dict, compare=False)
    language: str = ""  # what the channel declares: its articles' one language, else ''
    max_age: int = 0  # seconds its feeds stay fresh (core.freshness); 0: the refresh interval
    # Full history (RFC 5005, feedserver.build.archives): ``archives`` is how many archive
    # pages the channel's history fills; on an archive page ``archive`` is its number
    # (1 = oldest), ``home`` the folder of its subscription feeds, and ``sealed`` says it
    # is full (its items never change as new ones arrive).  0 / '' / False: a
    # subscription document.
    archives: int = 0
    archive: int = 0
    home: str = ""
    sealed: bool = False


@dataclass(frozen=True, slots=True)
class Rendered:
    """One output file: relative path, bytes, media type and its change time.

    ``format`` names the feed format of a feed file ('' for anything else) and
    ``cors`` says other sites' scripts may read it; both go into the manifest, so
    whatever serves the folder (the web app, nginx) needs no renderer to know them.
    ``max_age`` (feeds) is how long the channel stays fresh, for ``Cache-Control``.
    """

    path: str
    body: bytes
    media_type: str
    last_modified: datetime
    channel: str = ""
    format: str = ""
    cors: bool = False
    max_age: int = 0  # a feed's freshness in seconds (core.freshness); 0: not a feed
    immutable: bool = False  # a full archive page: cached long, never revalidated
