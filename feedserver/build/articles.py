"""Articles from stubs and identities, with their content fetched only when needed.

Pure.  An :class:`Article` is made from a stub (no content) for ordering,
channel membership and signatures; :class:`Articles` fetches content for the
articles the channels list, and for every other one only when something
iterates the whole site (the pages).  Split from :mod:`feedserver.build.stages`,
which assembles the site from these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import attrgetter
from typing import overload

from feedserver.build.signatures import Body, Stub
from feedserver.config import Settings
from feedserver.core.fieldwise import converter
from feedserver.core.records import Article, Channel, Identity
from feedserver.identify.dates import name_date
from feedserver.parse.rawhtml import anchored

Fetch = Callable[[list[str]], Mapping[str, Body]]
Memo = dict[str, tuple[Stub, Identity, Article]]
Filled = dict[int, tuple[Article, Article]]  # id(light article) -> (it, with content)


@dataclass
class Reuse:
    """What a long-lived process may reuse from its last build, for the same settings.

    Every entry is checked by object identity: an article made from a stub
    and identity that did not change is the very object made last time
    (``articles``), so what was derived from it (its content-filled copy, the
    signature of a channel listing exactly those objects) still holds.  The
    scheduler's one-file build of 10,000 articles spent most of its time
    re-deriving these.  ``begin`` keeps only what the last build used.
    """

    articles: Memo = field(default_factory=dict)
    filled: Filled = field(default_factory=dict)
    earlier: Filled = field(default_factory=dict)
    channels: dict[str, tuple[tuple[object, ...], tuple[Article, ...], str]] = \
        field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # the topic names signed with
    pages: dict[int, tuple[Article, str, str]] = field(default_factory=dict)  # page, sig
    pages_context: tuple[object, ...] = ()

    def begin(self) -> None:
        self.earlier, self.filled = self.filled, {}

    def full(self, light: Article) -> Article | None:
        """The content-filled copy of ``light`` made in this or the last build."""
        kept = self.filled.get(id(light)) or self.earlier.get(id(light))
        if kept is None or kept[0] is not light:
            return None
        self.filled[id(light)] = kept
        return kept[1]
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
    link = f"{settings.base_url}articles/{identity.slug}/"
    return _article_from_stub(  # the fields the stub shares with Article (path, title) are copied
        stub, id=identity.id, slug=identity.slug, link=link,
        content_html=anchored(body.content_html, link), summary=body.summary,
        published=published, updated=max(updated, published), topics=slugs,
        author=stub.author or (settings.author or None),
        lang=stub.lang or settings.language,
    )


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


class Articles(Sequence[Article]):
    """Every article, newest first, whose content is fetched on first need.

    A feeds-only or incremental build reads the content of listed articles
    only; the first full read (the pages) fetches the rest in one go.
    """

    def __init__(self, light: list[Article], fetch: Fetch, reuse: Reuse | None = None) -> None:
        self._items = light
        self._fetch = fetch
        self._full = False
        self._reuse = reuse

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Article: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Article]: ...

    def __getitem__(self, index: int | slice) -> Article | Sequence[Article]:
        if not self._full:
            self._items = self._filled(self._items)
            self._full = True
        return self._items[index]

    def light(self) -> list[Article]:
        """Every article as known so far, without fetching any content (incremental pages)."""
        return list(self._items)

    def with_content(self, articles: list[Article]) -> list[Article]:
        """These articles with their content: one fetch for those not read yet."""
        return self._filled(articles)

    def _filled(self, articles: list[Article]) -> list[Article]:
        reuse = self._reuse
        done = [a if a.content_html is not UNREAD.content_html or reuse is None
                else reuse.full(a) or a for a in articles]
        wanted = [a.path for a in done if a.content_html is UNREAD.content_html]
        found = self._fetch(wanted) if wanted else {}
        return [a if a.content_html is not UNREAD.content_html else
                self._fill(a, found[a.path]) for a in done]

    def _fill(self, light: Article, body: Body) -> Article:
        full = replace(light, content_html=anchored(body.content_html, light.link),
                       summary=body.summary)
        if self._reuse is not None:
            self._reuse.filled[id(light)] = (light, full)
        return full

    def fill(self, channels: tuple[Channel, ...]) -> tuple[Channel, ...]:
        """The channels with every listed article's content (one fetch for all)."""
        listed = {a.id: a for c in channels for a in c.articles}
        full = {a.id: a for a in self._filled(list(listed.values()))}
        self._items = [full.get(a.id, a) for a in self._items]
        return tuple(replace(c, articles=tuple(full[a.id] for a in c.articles))
                     for c in channels)
