"""Plain data that flows between the stages.

Every stage of the pipeline hands the next one frozen values, so a stage can be
tested alone and nothing downstream can change what upstream decided.  None of
these classes does I/O or asks the clock: dates arrive from the ledger or the
caller's ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one file says, before the ledger has given it an identity.

    ``fingerprint`` hashes only what a reader would see (title, text, topics,
    explicit dates), so whitespace or debris edits do not count as updates.
    """

    path: str
    title: str
    content_html: str
    summary: str
    text: str
    fingerprint: str
    topics: tuple[str, ...] = ()
    author: str | None = None
    lang: str | None = None
    date: datetime | None = None
    updated: datetime | None = None
    explicit_id: str | None = None
    explicit_slug: str | None = None
    draft: bool = False


@dataclass(frozen=True, slots=True)
class Identity:
    """What the ledger remembers about an article: never changes on edits."""

    id: str
    slug: str
    first_seen: datetime
    changed: datetime


@dataclass(frozen=True, slots=True)
class Article:
    """A publishable article: parsed content plus its identity and final dates."""

    id: str
    slug: str
    path: str
    title: str
    link: str
    content_html: str
    summary: str
    published: datetime
    updated: datetime
    topics: tuple[str, ...] = ()
    author: str | None = None
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Topic:
    """A channel's name and description, keyed by its URL slug."""

    slug: str
    name: str
    description: str = ""


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


@dataclass(frozen=True, slots=True)
class Rendered:
    """One output file: relative path, bytes, media type and its change time.

    ``format`` names the feed format of a feed file ('' for anything else) and
    ``cors`` says other sites' scripts may read it; both go into the manifest, so
    whatever serves the folder (the web app, nginx) needs no renderer to know them.
    """

    path: str
    body: bytes
    media_type: str
    last_modified: datetime
    channel: str = ""
    format: str = ""
    cors: bool = False
