"""Articles from stubs and identities; their content is added from values handed in.

Pure.  An :class:`Article` is made from a stub (no content) for ordering,
channel membership and signatures; the build shell fetches the content of the
articles the plan says will be rendered (:func:`feedserver.build.plan.content_wanted`)
and :func:`fill` makes the full copies.  Nothing here fetches, caches or writes:
what a long-lived process may reuse comes in as a read-only :class:`Known` and
what this build made goes out as values (see :class:`~feedserver.build.memory.BuildMemory`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import attrgetter

from feedserver.config import Settings
from feedserver.core import layout
from feedserver.core.fieldwise import converter
from feedserver.core.packed import Packed, pack
from feedserver.core.records import Article, Body, Channel, Identity, Stub
from feedserver.identify.dates import name_date
from feedserver.parse.links import linked
from feedserver.parse.rawhtml import anchored

Memo = dict[str, tuple[Stub, Identity, Article]]
ChannelMemo = dict[str, tuple[tuple[object, ...], tuple[Article, ...], str]]
# id(light article) -> (it, its page, the page's signature, its item record, the
# record's signature)
PageMemo = dict[int, tuple[Article, str, str, str, str]]


@dataclass(frozen=True)
class Known:
    """What the last build made, handed to the pure stages read-only (for the same settings).

    Every entry is checked by object identity: an article made from a stub
    and identity that did not change is the very object made last time
    (``articles``), so what was derived from it (the signature of a channel
    listing exactly those objects, its page's signature) still holds.  The
    scheduler's one-file build of 10,000 articles spent most of its time
    re-deriving these.  An empty one (a cold build) reuses nothing.
    """

    articles: Mapping[str, tuple[Stub, Identity, Article]] = field(default_factory=dict)
    channels: Mapping[str, tuple[tuple[object, ...], tuple[Article, ...], str]] = \
        field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)  # the topic names signed with
    pages: Mapping[int, tuple[Article, str, str]] = field(default_factory=dict)
    pages_context: tuple[object, ...] = ()


NOTHING_KNOWN = Known()


# Placeholder content of an article whose content was not fetched yet (compared by
# identity: a real article never holds this very string object).
UNREAD = Body("".join(["\x00", "unread"]), "")


_article_from_stub = converter(Stub, Article, "id", "slug", "link", "content_html", "summary",
                               "published", "updated", "topics", "author", "lang")


def _second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def make_article(stub: Stub, identity: Identity, slugs: tuple[str, ...], settings: Settings,
                 body: Body) -> Article:
    """Combine content and identity; explicit dates win over the ledger's.

    ``published``: the front matter's date, else the file name's (Jekyll's
    ``2026-10-02-title.md``), else the identity's first sight (git's first commit
    when the shell found one, see :mod:`feedserver.identify.dates`).  ``updated``: the
    front matter's, else the identity's change time *only if* it changed since it
    was first seen; an article never edited has ``updated`` == ``published`` (not
    the moment its file happened to be copied).
    """
    published = _second(stub.date or name_date(stub.path) or identity.first_seen)
    if stub.updated is not None:
        updated = _second(stub.updated)
    elif identity.changed != identity.first_seen:
        updated = max(_second(identity.changed), published)
    else:
        updated = published
    link = layout.page_link(settings.page_url, settings.base_url, identity.slug, published)
    return _article_from_stub(  # the fields the stub shares with Article (path, title) are copied
        stub, id=identity.id, slug=identity.slug, link=link,
        content_html=anchored(body.content_html, link), summary=body.summary,
        published=published, updated=max(updated, published), topics=_shared(slugs),
        author=_one(stub.author or (settings.author or None)),
        lang=_one(stub.lang or settings.language),
    )


def _shared(slugs: tuple[str, ...]) -> tuple[str, ...]:
    """``slugs`` as the one string object each slug is everywhere (``sys.intern``).

    Each stub's slugs arrive as strings of their own (from a parse worker or the parse
    cache): 10,000 articles held about 45,000 small strings for a few hundred topics,
    on pages of their own, and every feed worker forked from the build copied 4.6 MiB
    of them, since reading an article's topics writes their reference counts
    (benchmarks/README.md, "Which pages a worker copies").  Shared, they are a few
    hundred strings."""
    return tuple(map(sys.intern, slugs))


def _one(value: str | None) -> str | None:
    """An author or language code as the one string object it is everywhere (as
    :func:`_shared`: each article's was a string of its own)."""
    return None if value is None else sys.intern(value)


RARE, LIMITED = "trim", "limit"  # the stages that take topics away, in their order
TRIMS = (RARE, LIMITED)


def trimmed_key(path: str, stage: str = RARE) -> str:
    """The memo key of an article made with fewer topics than its stub names, by
    ``stage``: :data:`RARE`, the detected topics too few articles share
    (:func:`feedserver.build.assemble._drop_rare`); :data:`LIMITED`, the smallest topics
    past ``max_channels`` (:func:`feedserver.build.assemble._limit_topics`)."""
    return f"\0{stage}\0{path}"


def newest_first(articles: Iterable[Article]) -> list[Article]:
    """Newest published first; the same moment in id order (two stable sorts: no keys
    computed per article)."""
    ordered = sorted(articles, key=attrgetter("id"))
    ordered.sort(key=attrgetter("published"), reverse=True)
    return ordered


def article_of(stub: Stub, identity: Identity, settings: Settings, memo: Memo | None) -> Article:
    """The article (without content) for a stub, from the memo when nothing changed."""
    if memo is not None:
        known = memo.get(stub.path)
        if known is not None and (known[0] is stub or known[0] == stub) \
                and (known[1] is identity or known[1] == identity):
            return known[2]  # `is` first: unchanged files give the very same objects
    article = make_article(stub, identity, stub.slugs, settings, UNREAD)
    if memo is not None:
        memo[stub.path] = (stub, identity, article)
    return article


def known_article(stub: Stub, identity: Identity, known: Mapping[str, tuple[Stub, Identity,
                                                                           Article]]
                  ) -> Article | None:
    """The article made last time from this stub and identity, if neither changed."""
    last = known.get(stub.path)
    if last is not None and (last[0] is stub or last[0] == stub) \
            and (last[1] is identity or last[1] == identity):
        return last[2]  # `is` first: unchanged files give the very same objects
    return None


def fill(light: Article, body: Body) -> Article:
    """``light`` (made without content) with its content, its links to other articles
    pointing where ``light.links`` says (:mod:`feedserver.build.links`): the filled copy
    is a function of ``light`` and ``body`` only, which is what lets the build memory
    keep it by ``light``."""
    return replace(light, content_html=_html(light, body), summary=body.summary)


def fill_packed(lights: Sequence[Article], bodies: Mapping[str, Body],
                packer: Callable[[Sequence[str]], list[Packed]] = pack) -> list[Article]:
    """:func:`fill` of each of ``lights`` (its body by path in ``bodies``), their content
    and summaries packed together by ``packer`` (:mod:`feedserver.core.packed`: one
    buffer, or a :class:`~feedserver.build.spill.Spill`'s file): for a build whose
    workers render them, which then leave the text's pages shared.

    The summaries too: a few hundred characters each, they filled pages of their own
    in the parent's heap (blocks of one size lie together), and each feed worker of a
    cold 10,000-article build copied 8.3 of their 9 MiB (benchmarks/README.md, "Which
    pages a worker copies")."""
    handles = packer([_html(light, bodies[light.path]) for light in lights]
                     + [bodies[light.path].summary for light in lights])
    contents, summaries = handles[:len(lights)], handles[len(lights):]
    return [replace(light, content_html=content, summary=summary)
            for light, content, summary in zip(lights, contents, summaries, strict=True)]


def _html(light: Article, body: Body) -> str:
    return linked(anchored(body.content_html, light.link), dict(light.links))


def with_full(articles: Iterable[Article], full: Mapping[str, Article]) -> list[Article]:
    """Each article replaced by its full copy where ``full`` (by id) has one."""
    return [full.get(a.id, a) for a in articles]


def filled_channels(channels: tuple[Channel, ...],
                    full: Mapping[str, Article]) -> tuple[Channel, ...]:
    """The channels with each listed article replaced by its full copy (by id).

    Both steps are passes in C: a channel listing none of them stays itself, the others
    are filled by ``map(full.get, ...)``.  A one-file build of 50,000 articles has 5,400
    channels and archive pages listing about a million articles; a Python step for each
    was 0.39 s profiled.
    """
    ids = full.keys()
    return tuple(c if ids.isdisjoint(map(_ID, c.articles))
                 else _listing(c, articles=tuple(map(full.get, map(_ID, c.articles),
                                                     c.articles)))
                 for c in channels)


_ID = attrgetter("id")
UPDATED = attrgetter("updated")  # max(map(UPDATED, articles)): no Python step per article
_listing = converter(Channel, Channel, "articles")  # dataclasses.replace, compiled
