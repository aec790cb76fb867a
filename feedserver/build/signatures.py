"""What a build may skip: light stubs of parsed files and content signatures of channels.

Pure, like the rest of the core.  A :class:`Stub` is everything assembling the
site needs to know about a file (identity hints, dates, topics) without its
content, so an incremental build can order 10,000 articles and decide channel
membership without loading 10,000 bodies.  The content itself (a
:class:`Body`) is loaded only for articles that something is about to render.

A channel's *signature* hashes everything its three files are drawn from: the
settings fingerprint, the renderer version, the channel's own fields, and for
each listed article its content digest, identity, dates and the names of its
topics.  The same signature means byte-identical files, so a channel whose
signature is the one recorded in the manifest is neither rendered, validated
nor rewritten: its files keep their ETag and Last-Modified, also across
restarts.  A signature is a promise about inputs, never about time: nothing
here reads a clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from feedserver.build.codeversion import render_version
from feedserver.config import Settings
from feedserver.core.records import Article, Channel, Parsed
from feedserver.topics import rules as topic_rules

_SEP = "\x1f"


@dataclass(frozen=True, slots=True)
class Body:
    """The heavy part of a parsed file: what only rendering needs."""

    content_html: str
    summary: str


@dataclass(frozen=True, slots=True)
class Stub:
    """One parsed file without its content (see the module docstring)."""

    path: str
    title: str
    fingerprint: str
    digest: str
    slugs: tuple[str, ...] = ()
    names: tuple[tuple[str, str], ...] = ()
    author: str | None = None
    lang: str | None = None
    date: datetime | None = None
    updated: datetime | None = None
    explicit_id: str | None = None
    explicit_slug: str | None = None
    draft: bool = False


def content_digest(parsed: Parsed) -> str:
    """Hash of every Parsed field a renderer may show, so equal digests draw equal items."""
    parts = (parsed.title, parsed.content_html, parsed.summary, parsed.author or "",
             parsed.lang or "")
    return hashlib.sha256(_SEP.join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def split(parsed: Parsed, settings: Settings) -> tuple[Stub, Body]:
    """Parsed -> (stub, body); topics are assigned here, once per parse."""
    slugs, names = topic_rules.assign(parsed, settings)
    stub = Stub(path=parsed.path, title=parsed.title, fingerprint=parsed.fingerprint,
                digest=content_digest(parsed), slugs=slugs, names=tuple(names.items()),
                author=parsed.author, lang=parsed.lang, date=parsed.date,
                updated=parsed.updated, explicit_id=parsed.explicit_id,
                explicit_slug=parsed.explicit_slug, draft=parsed.draft)
    return stub, Body(parsed.content_html, parsed.summary)


def _moment(value: datetime) -> str:
    return value.isoformat()


def article_key(article: Article, digest: str) -> str:
    """What one listed article contributes to a channel signature."""
    return _SEP.join((digest, article.id, article.slug, _moment(article.published),
                      _moment(article.updated), ",".join(article.topics),
                      article.author or "", article.lang or ""))


def channel_signature(channel: Channel, settings_fingerprint: str,
                      keys: dict[str, str], names: dict[str, str]) -> str:
    """Signature of one channel; ``keys`` maps article ids to :func:`article_key`."""
    h = hashlib.sha256()
    head = (render_version(), settings_fingerprint, channel.slug, channel.title,
            channel.description, channel.path, channel.html_url, _moment(channel.updated))
    h.update(_SEP.join(head).encode())
    for article in channel.articles:
        h.update(b"\x1e" + keys[article.id].encode("utf-8", "surrogatepass"))
        for slug in article.topics:
            h.update(f"{_SEP}{slug}={names.get(slug, slug)}".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]
