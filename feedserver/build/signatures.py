"""What a build may skip: light stubs of parsed files and content signatures of channels.

Pure, like the rest of the core.  A :class:`Stub` (:mod:`feedserver.core.records`,
re-exported here with :class:`Body`) is everything assembling the site needs to
know about a file (identity hints, dates, topics) without its content, so an
incremental build can order 10,000 articles and decide channel membership
without loading 10,000 bodies.  The content itself (a :class:`Body`) is loaded
only for articles that something is about to render.

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
from datetime import datetime

from feedserver.config import Settings
from feedserver.core.fieldwise import converter, field_names, joiner
from feedserver.core.records import Article, Body, Channel, Parsed, Stub
from feedserver.topics import rules as topic_rules

_SEP = "\x1f"
__all__ = ["article_key", "channel_signature", "content_digest", "split"]


# The fields of what a file says that an Article shows (title, content, summary, author,
# language, and any added later), in a fixed order: the content digest covers them all.
# Not the path: it locates the file, no reader sees it (a rename renders nothing).
_shown = joiner(Parsed, tuple(name for name in field_names(Parsed)
                               if name in set(field_names(Article)) - {"path"}), _SEP)
_stub_of = converter(Parsed, Stub, "digest", "slugs", "names", "detected")
_body_of = converter(Parsed, Body)


def content_digest(parsed: Parsed) -> str:
    """Hash of every Parsed field a renderer may show, so equal digests draw equal items."""
    return hashlib.sha256(_shown(parsed).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def split(parsed: Parsed, settings: Settings) -> tuple[Stub, Body]:
    """Parsed -> (stub, body); topics are assigned here, once per parse."""
    slugs, names, detected = topic_rules.assign_all(parsed, settings)
    stub = _stub_of(parsed, digest=content_digest(parsed), slugs=slugs,
                    names=tuple(names.items()), detected=detected)
    return stub, _body_of(parsed)


def _moment(value: datetime) -> str:
    return value.isoformat()


def article_key(article: Article, digest: str) -> str:
    """What one listed article contributes to a channel (and its page's) signature: its
    links to other articles too, since where they point is not in its content digest."""
    key = _SEP.join((digest, article.id, article.slug, _moment(article.published),
                     _moment(article.updated), ",".join(article.topics),
                     article.author or "", article.lang or ""))
    if article.links:  # no links, the key it always had (published signatures stay)
        key += _SEP + "\x1d".join(f"{path}>{url}" for path, url in article.links)
    return key


def archive_links(channel: Channel) -> str:
    """What a channel's archive links depend on: a subscription document, the number of
    pages (it links the newest); an archive page, its number and whether it is the newest
    (a newer page to link to).  Not the count on a page: a page that gains a successor
    is drawn the same, so starting a new page does not render every older one again."""
    if not channel.archive:
        return f"of {channel.archives}"
    return f"{channel.archive}{' newest' if channel.archive == channel.archives else ''}"


def channel_signature(channel: Channel, shaping: str, keys: dict[str, str],
                      names: dict[str, str]) -> str:
    """Signature of one channel; ``keys`` maps article ids to :func:`article_key`;
    ``shaping`` is the settings' fingerprint and the renderers' code version (handed in
    by the build shell: :func:`feedserver.build.codeversion.render_version`)."""
    h = hashlib.sha256()
    head = (shaping, channel.slug, channel.title,
            channel.description, channel.path, channel.html_url, _moment(channel.updated))
    h.update(_SEP.join(head).encode())
    if channel.archives:  # its archive links (RFC 5005): only what they point at
        h.update(f"{_SEP}archive {archive_links(channel)}".encode())
    for article in channel.articles:
        h.update(b"\x1e" + keys[article.id].encode("utf-8", "surrogatepass"))
        for slug in article.topics:
            h.update(f"{_SEP}{slug}={names.get(slug, slug)}".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]
