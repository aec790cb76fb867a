"""Articles from stubs and identities, with their content fetched only when needed.

Pure.  An :class:`Article` is made from a stub (no content) for ordering,
channel membership and signatures; :class:`Articles` fetches content for the
articles the channels list, and for every other one only when something
iterates the whole site (the pages).  Split from :mod:`feedserver.pipeline`,
which assembles the site from these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from operator import attrgetter
from typing import overload

from .config import Settings
from .incremental import Body, Stub
from .models import Article, Channel, Identity

Fetch = Callable[[list[str]], Mapping[str, Body]]
Memo = dict[str, tuple[Stub, Identity, Article]]
# Placeholder content of an article whose content was not fetched yet (compared by
# identity: a real article never holds this very string object).
UNREAD = Body("".join(["\x00", "unread"]), "")


def _second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def make_article(stub: Stub, identity: Identity, slugs: tuple[str, ...], settings: Settings,
                 body: Body) -> Article:
    """Combine content and identity; explicit dates win over the ledger's."""
    published = _second(stub.date or identity.first_seen)
    updated = _second(stub.updated or max(identity.changed, published))
    return Article(
        id=identity.id, slug=identity.slug, path=stub.path, title=stub.title,
        link=f"{settings.base_url}articles/{identity.slug}/",
        content_html=body.content_html, summary=body.summary,
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
        if known is not None and known[0] == stub and known[1] == identity:
            return known[2]
    article = make_article(stub, identity, stub.slugs, settings, UNREAD)
    if memo is not None:
        memo[stub.path] = (stub, identity, article)
    return article


class Articles(Sequence[Article]):
    """Every article, newest first, whose content is fetched on first need.

    A feeds-only or incremental build reads the content of listed articles
    only; the first full read (the pages) fetches the rest in one go.
    """

    def __init__(self, light: list[Article], fetch: Fetch) -> None:
        self._items = light
        self._fetch = fetch
        self._full = False

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
        wanted = [a.path for a in articles if a.content_html is UNREAD.content_html]
        found = self._fetch(wanted) if wanted else {}
        return [a if a.content_html is not UNREAD.content_html else
                replace(a, content_html=found[a.path].content_html,
                        summary=found[a.path].summary) for a in articles]

    def fill(self, channels: tuple[Channel, ...]) -> tuple[Channel, ...]:
        """The channels with every listed article's content (one fetch for all)."""
        listed = {a.id: a for c in channels for a in c.articles}
        full = {a.id: a for a in self._filled(list(listed.values()))}
        self._items = [full.get(a.id, a) for a in self._items]
        return tuple(replace(c, articles=tuple(full[a.id] for a in c.articles))
                     for c in channels)
