"""Pure: each article's links to other articles, resolved against what this build publishes.

``[next](other.md)`` is parsed into a marker (:mod:`feedserver.parse.links`),
because the other article's page is known only once the ledger gave it a slug
and the build knows whether it is published at all.  Its parse names the
articles it links to in its ``needs`` (stamp ``'article'``).  What the link
shows depends on the *other* file: published or not (a draft, due later, not
parsed) and under which slug.  So the resolved targets are put into the
article itself (:attr:`Article.links`): every cache and signature keyed by the
article (channel and page signatures, rendered items, filled copies in the
build memory) then follows a linked article's publication or slug, and
re-renders exactly the articles that link to it.  An article whose targets did
not change keeps its very object (long-lived builds compare by identity).

A link to an article that is not published loses its ``href`` (its text
stays): a warning names the linking file, the link and why.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from feedserver.core.records import Article, Identity, Problem, Stub

ARTICLE_STAMP = "article"  # what feedserver.core.media.MediaIndex.stamp says of an article


def linked_paths(stub: Stub) -> tuple[str, ...]:
    """The article files the parse of ``stub`` linked to (seeds paths)."""
    return tuple(path for path, stamp in stub.needs if stamp == ARTICLE_STAMP)


def _why(path: str, stubs: Mapping[str, Stub], later: Mapping[str, datetime]) -> str:
    stub = stubs.get(path)
    if stub is None:
        return "could not be read or parsed"
    if stub.draft:
        return "is a draft"
    if path in later:
        return f"is due at {later[path].isoformat()}"
    return "is not published"


def _page(path: str, by_id: Mapping[str, Article], identities: Mapping[str, Identity]
          ) -> Article | None:
    """The published article of the file at ``path``, if it is published."""
    identity = identities.get(path)
    article = by_id.get(identity.id) if identity is not None else None
    return article if article is not None and article.path == path else None


def resolve_links(by_id: dict[str, Article], stubs: Mapping[str, Stub],
                  identities: Mapping[str, Identity], later: Mapping[str, datetime],
                  made: dict[str, tuple[Stub, Identity, Article]]) -> list[Problem]:
    """Give every published article in ``by_id`` (changed in place) the page URLs of the
    articles it links to; one whose targets changed is a new object, also put in ``made``
    (the memo of articles a long-lived build reuses).  ``later``: paths of articles due
    later, with their date.  Returns a warning per link to an unpublished article.

    Only files whose parse looked something up are visited (an article made from a
    stub without links has none): a few milliseconds for 10,000 articles.
    """
    problems: list[Problem] = []
    for path in sorted(path for path, stub in stubs.items() if stub.needs):
        targets = linked_paths(stubs[path])
        article = _page(path, by_id, identities) if targets else None
        if article is None:
            continue
        links = tuple((target, found.link if (found := _page(target, by_id, identities))
                       else "") for target in targets)
        if links != article.links:
            article = by_id[article.id] = replace(article, links=links)
            made[path] = (stubs[path], identities[path], article)
        for target, url in links:
            if not url:
                folder = posixpath.dirname(path) or "."
                problems.append(Problem(
                    path, f"link {posixpath.relpath(target, folder)!r}: the article "
                          f"{target} {_why(target, stubs, later)}; shown as text", "warning"))
    return problems
