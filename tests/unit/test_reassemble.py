"""The last assembly with a few articles swapped in is the full assembly, or nothing.

A small site with everything that places an article (topics named and detected, rare
ones dropped, the topic limit, archive pages, a draft, an article due later, links,
an id two files claim) goes through random edits, a few files each round.  Whenever
:func:`reassembled` answers, its answer must equal :func:`assemble_site`'s on the same
inputs: the site (articles, channels, archive pages, signatures), the problems, the
articles made and the channels' signatures.  It must answer for edits that only change
what an article's items show, and must not for the ones that move something.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from feedserver.build.articles import Known
from feedserver.build.assemble import Assembled, assemble_site, parse_source
from feedserver.build.reassemble import Assembly, reassembled, shaping_of
from feedserver.build.signatures import split
from feedserver.config import Settings
from feedserver.core.media import MediaIndex
from feedserver.core.records import Identity, SourceFile, Stub
from feedserver.identify.rules import Book

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
CODE = "renderers"
TAGS = ("Rail", "Buses", "Ports", "Grain", "Wind", "Solar", "Banks", "Trade", "Water",
        "Roads", "Oil", "Gas", "Steel", "Tea")
PLACES = ("Astana", "Almaty", "Tashkent", "Bishkek", "Baku", "Tbilisi")
CONTENT = ("text", "title", "updated", "summary")  # edits that place nothing anew


def text_of(n: int, rng: random.Random, **over: str) -> str:
    """Article ``n``: front matter (a few tags, maybe a date) and a body naming places."""
    tags = over["tags"] if "tags" in over else ", ".join(rng.sample(TAGS, rng.randint(0, 3)))
    head = [f"title: {over.get('title', f'Article {n}')}", f"tags: [{tags}]"]
    if "date" in over or n % 3 == 0:
        head.append(f"date: {over.get('date', f'2026-01-{1 + n % 28:02d}T0{n % 10}:00:00Z')}")
    for key in ("updated", "lang", "draft", "id", "summary"):
        if key in over:
            head.append(f"{key}: {over[key]}")
    rare = " Samarkand is old. Samarkand." if n in (5, 21) else ""  # too few for a channel
    body = over.get("body") or (f"News from {PLACES[n % len(PLACES)]} and "
                                f"{PLACES[(n * 7) % len(PLACES)]}, number {n}.{rare}")
    return "---\n" + "\n".join(head) + "\n---\n" + body + "\n"


class Seeds:
    """The seeds as text, their stubs and the ledger's identities, in memory."""

    def __init__(self, settings: Settings, rng: random.Random) -> None:
        self.settings, self.rng = settings, rng
        self.texts = {f"a{n:03d}.md": text_of(n, rng) for n in range(48)}
        self.texts["draft.md"] = text_of(90, rng, draft="true")
        self.texts["later.md"] = text_of(91, rng, date="2026-12-01T00:00:00Z")
        self.texts["linking.md"] = text_of(92, rng, body="See [the other](a001.md) "
                                           "and [the draft](draft.md).")
        self.texts["claim1.md"] = text_of(93, rng, id="urn:x:claimed")
        self.texts["claim2.md"] = text_of(94, rng, id="urn:x:claimed")
        self.stubs: dict[str, Stub] = {}
        self.book = Book([])
        self.minute = 0
        for path in self.texts:
            self.parse(path)

    def parse(self, path: str) -> None:
        source = SourceFile(path, self.texts[path].encode(), NOW.timestamp())
        # Every seed is an article a link may name (the build's own index).
        parsed, problems = parse_source(source, self.settings,
                                        MediaIndex({}, frozenset(self.texts)))
        assert parsed is not None, problems
        self.stubs[path] = split(parsed, self.settings)[0]

    def identities(self) -> dict[str, Identity]:
        self.book.begin()
        at = NOW + timedelta(minutes=self.minute)
        return self.book.identify_all(dict(self.stubs), lambda path: at)

    def edit(self, path: str, kind: str) -> None:
        n = int(path[1:4]) if path.startswith("a") else 95
        over: dict[str, str] = {}
        old = self.texts[path]
        body = old.split("---\n", 2)[2].strip()
        title = old.split("title: ", 1)[1].split("\n", 1)[0]
        tags = old.split("tags: [", 1)[1].split("]", 1)[0]
        if kind == "text":
            over["body"] = body + f" A correction, minute {self.minute}."
        elif kind == "title":
            over["title"] = title + " (revised)"
        elif kind == "updated":
            over["updated"] = (NOW + timedelta(minutes=self.minute)).isoformat()
        elif kind == "summary":
            over["summary"] = f"In short, minute {self.minute}"
        elif kind == "tags":
            over["tags"] = ", ".join(self.rng.sample(TAGS, 2))
        elif kind == "date":
            over["date"] = f"2025-06-{1 + self.minute % 28:02d}T00:00:00Z"
        elif kind == "draft":
            over["draft"] = "true"
        elif kind == "lang":
            over["lang"] = "de"
        elif kind == "link":
            over["body"] = body + " See [more](a002.md)."
        elif kind == "place":
            over["body"] = body + " Also Samarkand and Bukhara."
        over.setdefault("title", title)
        over.setdefault("tags", tags)
        over.setdefault("body", body)
        self.texts[path] = text_of(n, self.rng, **over)
        self.parse(path)


def remember(known: Known, made: Assembled) -> Known:
    """What the build memory keeps for the next build (BuildMemory.remember_site)."""
    return Known({**known.articles, **made.articles}, made.channels, made.names)


def same(fast: Assembled, full: Assembled) -> None:
    assert fast.site == full.site
    assert fast.problems == full.problems
    assert fast.articles == full.articles
    assert fast.channels == full.channels
    assert fast.names == full.names


@pytest.fixture
def small(settings: Settings) -> Settings:
    """Tiny channels and pages, a topic limit and rare topics: every pass has work."""
    return replace(settings, max_items=5, archive_size=4, max_channels=14,
                   min_topic_articles=3)


def first(site: Seeds) -> tuple[Assembly, Known]:
    identities = site.identities()
    made = assemble_site(site.stubs, identities, site.settings, NOW, Known(), render_code=CODE)
    assert made.site.archives and made.site.next_due is not None  # the passes have work
    assert any("already used" in p.reason for p in made.problems)
    assert any("left out" in p.reason for p in made.problems)
    assert any("shown as text" in p.reason for p in made.problems)  # a link to a draft
    assert made.rare and any(a.links for a in made.site.articles)
    return (Assembly(dict(site.stubs), identities, NOW, shaping_of(site.settings, CODE, ""),
                     made), remember(Known(), made))


@pytest.mark.parametrize("seed", range(6))
def test_random_edits_give_the_full_assembly(small: Settings, seed: int) -> None:
    rng = random.Random(seed)
    site = Seeds(small, rng)
    last, known = first(site)
    answered = {kind: 0 for kind in CONTENT}
    asked = dict(answered)
    paths = sorted(site.texts)
    for minute in range(1, 41):
        site.minute = minute
        kinds = rng.choices((*CONTENT, "tags", "date", "draft", "lang", "link", "place"),
                            weights=(4, 2, 2, 1, 1, 1, 1, 1, 1, 1), k=rng.choice((1, 1, 2, 3)))
        for kind in kinds:
            site.edit(rng.choice(paths), kind)
        now = NOW + timedelta(minutes=minute)
        identities = site.identities()
        stubs = dict(site.stubs)
        full = assemble_site(stubs, identities, small, now, known, render_code=CODE)
        fast = reassembled(last, stubs, identities, small, now, known, render_code=CODE)
        if len(kinds) == 1 and kinds[0] in CONTENT:
            asked[kinds[0]] += 1
            answered[kinds[0]] += fast is not None
        if fast is not None:
            same(fast.made, full)
            last = fast
        else:
            last = Assembly(stubs, identities, now, shaping_of(small, CODE, ""), full)
        known = remember(known, full)
    # Most edits of what items show are reassembled (a draft's, or one of an article
    # whose id another claims, or that is trimmed of a rare topic, is not).
    assert sum(answered.values()) >= 0.6 * sum(asked.values()) > 0, (answered, asked)


def test_what_moves_an_article_is_assembled_in_full(small: Settings) -> None:
    site = Seeds(small, random.Random(7))
    last, known = first(site)
    for minute, kind in enumerate(("date", "tags", "lang", "link", "draft"), 1):
        site.minute = minute
        path = "a010.md"
        site.edit(path, kind)
        identities = site.identities()
        now = NOW + timedelta(minutes=minute)
        assert reassembled(last, dict(site.stubs), identities, small, now, known,
                           render_code=CODE) is None, kind
        full = assemble_site(dict(site.stubs), identities, small, now, known, render_code=CODE)
        last = Assembly(dict(site.stubs), identities, now, shaping_of(small, CODE, ""), full)
        known = remember(known, full)


def test_a_new_day_settings_or_code_are_assembled_in_full(small: Settings) -> None:
    site = Seeds(small, random.Random(8))
    last, known = first(site)
    site.minute = 1
    site.edit("a011.md", "text")
    identities, stubs = site.identities(), dict(site.stubs)
    later = NOW + timedelta(minutes=1)
    assert reassembled(last, stubs, identities, small, later, known, render_code=CODE)
    due = last.made.site.next_due
    assert due is not None
    assert reassembled(last, stubs, identities, small, due, known, render_code=CODE) is None
    assert reassembled(last, stubs, identities, small, later, known, render_code="other") \
        is None
    assert reassembled(last, stubs, identities, replace(small, max_items=6), later, known,
                       render_code=CODE) is None
    assert reassembled(last, stubs, identities, small, later, known, render_code=CODE,
                       artwork="/media/cover.png") is None
    assert reassembled(last, stubs, identities, small, NOW - timedelta(minutes=1), known,
                       render_code=CODE) is None
    fewer = {path: stub for path, stub in stubs.items() if path != "a012.md"}
    assert reassembled(last, fewer, {p: i for p, i in identities.items() if p in fewer},
                       small, later, known, render_code=CODE) is None


def test_trimmed_articles_are_swapped_trimmed_the_same_way(small: Settings) -> None:
    """An article that lost a rare topic, or one past the topic limit, is edited: the
    new one loses the same topics, through the same memo (its entries made alike)."""
    site = Seeds(small, random.Random(9))
    last, known = first(site)
    rare = [a for a in last.made.site.articles if set(site.stubs[a.path].slugs) & last.made.rare]
    limited = [a for a in last.made.site.articles
               if a.topics != tuple(t for t in site.stubs[a.path].slugs
                                    if t not in last.made.rare)]
    assert rare and limited
    for minute, article in enumerate((rare[0], limited[0], rare[-1], limited[-1]), 1):
        site.minute = minute
        site.edit(article.path, "text")
        identities, stubs = site.identities(), dict(site.stubs)
        now = NOW + timedelta(minutes=minute)
        fast = reassembled(last, stubs, identities, small, now, known, render_code=CODE)
        full = assemble_site(stubs, identities, small, now, known, render_code=CODE)
        assert fast is not None, article.path
        same(fast.made, full)
        assert fast.made.articles.keys() - {article.path}  # a trimmed copy was made too
        last, known = fast, remember(known, full)
