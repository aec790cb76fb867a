"""page_signatures.stale_articles: the articles whose page or item record is not fresh,
read from the build's signed paths (a pass in C) or spelled again, with the answer of the
rule applied one article at a time."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

from feedserver.build.page_signatures import PageSignatures, Stale, stale_articles
from feedserver.core import layout


def reference(articles: list[Any], fresh: set[str], html: bool) -> Stale:
    """The rule, one article at a time (the code before)."""
    return Stale(frozenset(a.id for a in articles
                           if html and layout.article_page(a.slug) not in fresh),
                 frozenset(a.id for a in articles if layout.item_record(a.slug) not in fresh))


def test_stale_articles_follow_the_rule_on_random_sites() -> None:
    rng = random.Random(11)
    for _ in range(200):
        articles = [SimpleNamespace(id=f"urn:{n}", slug=f"s-{n}")
                    for n in rng.sample(range(1000), rng.randint(0, 40))]
        rows = {id(a): (a, layout.article_page(a.slug), "p", layout.item_record(a.slug), "r")
                for a in articles}
        every = [path for row in rows.values() for path in (row[1], row[3])]
        fresh = {path for path in every if rng.random() < 0.7} | {"topics/x/index.html"}
        html = rng.random() < 0.7
        site = SimpleNamespace(articles=articles, fresh=fresh)
        signed = PageSignatures({}, rows, ())  # type: ignore[arg-type]
        expected = reference(articles, fresh, html)
        assert stale_articles(site, html, signed) == expected  # type: ignore[arg-type]
        assert stale_articles(site, html) == expected  # type: ignore[arg-type]
        ids = expected.pages | expected.records
        assert list(Stale.among(articles, ids)) == [a for a in articles if a.id in ids]  # type: ignore[arg-type]
