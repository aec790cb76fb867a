"""Which articles a combined or filtered answer lists (``Engine.select``), over an index
of known entries: the same as filtering the whole history by hand, for every scope,
``since``, ``lang`` and ``limit``; and a ``since`` later than what is left of a scope ends
the scan (pollers ask for what changed since their last poll: at 10,000 articles a scan
of every entry for each new ``since`` was about 3.5 ms)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feedserver.query.answer import Engine
from feedserver.query.params import ALL, ANY, Combination, Filters
from feedserver.query.records import Entry, Index

START = datetime(2026, 1, 1, tzinfo=UTC)
TOPICS = ("a", "b", "c", "d")


@dataclass(frozen=True)
class Counted(Entry):
    """An entry that counts how often its ``updated`` is read."""

    def __getattribute__(self, name: str) -> Any:
        if name == "updated":
            READS[0] += 1
        return super().__getattribute__(name)


READS = [0]


def _entries(count: int, seed: int) -> tuple[Entry, ...]:
    """Newest published first; updated at or after published, now and then much later
    (an edit), so ``updated`` is not in order."""
    rng = random.Random(seed)
    found = []
    for n in range(count):
        published = START - timedelta(hours=n)
        later = timedelta(days=rng.choice((0, 0, 0, 1, 30))) + timedelta(minutes=rng.randrange(60))
        topics = tuple(t for t in TOPICS if rng.random() < 0.4)
        found.append(Counted(f"s{n}", published, published + later, topics,
                             rng.choice(("en", "en", "fr"))))
    return tuple(found)


def _index(entries: tuple[Entry, ...]) -> Index:
    return Index(None, {}, {}, entries, 5, 30, 86400)  # type: ignore[arg-type]


def _engine() -> Engine:
    engine = Engine()
    engine.record = lambda read, slug, index=None: (slug, "")  # type: ignore[method-assign,assignment,return-value]
    return engine


def _in(entry: Entry, folder: str, combo: Combination | None) -> bool:
    if combo is not None:
        hits = [s in entry.topics for s in combo.slugs]
        return all(hits) if combo.op == ALL else any(hits)
    if folder.startswith("languages/"):
        return entry.lang == folder.partition("/")[2]
    return folder == "" or folder.partition("/")[2] in entry.topics


SCOPES = [("", None), ("topics/a", None), ("topics/d", None), ("languages/fr", None),
          ("", Combination(ANY, ("a", "b"), "feed.atom")),
          ("", Combination(ALL, ("b", "c"), "feed.atom"))]


@pytest.mark.parametrize(("folder", "combo"), SCOPES)
def test_an_answer_lists_what_filtering_the_whole_history_lists(
        folder: str, combo: Combination | None) -> None:
    entries = _entries(300, seed=len(folder) + (len(combo.slugs) if combo else 0))
    index, engine = _index(entries), _engine()
    times = [None, START + timedelta(days=60), START - timedelta(days=400)] + \
        [e.updated for e in entries[::17]] + [e.updated - timedelta(seconds=1)
                                              for e in entries[5::23]]
    for since in times:
        for lang in (None, "fr"):
            for limit in (None, 1, 3):
                filters = Filters(limit=limit, since=since, lang=lang)
                want = [e.slug for e in entries if _in(e, folder, combo)
                        and (since is None or e.updated > since)
                        and (lang is None or e.lang == lang)][:limit or index.max_items]
                got = engine.select(index, lambda name: None, folder, combo, filters)
                assert got == want, (folder, combo, since, lang, limit)


def test_a_since_later_than_every_article_left_reads_no_entry() -> None:
    entries = _entries(2000, seed=7)
    index, engine = _index(entries), _engine()
    later = max(e.updated for e in entries)
    folders = ("", "topics/a", "languages/en")
    for folder in folders:  # each scope found once per publish
        engine.select(index, lambda name: None, folder, None, Filters(since=later))
    READS[0] = 0
    for folder in folders:
        for minutes in range(1, 20):  # each poller's own last time: a new URL each
            since = later + timedelta(minutes=minutes)
            assert engine.select(index, lambda name: None, folder, None,
                                 Filters(since=since)) == []
    assert READS[0] == 0
    recent = sorted(e.updated for e in entries)[-4]  # three updated after it
    want = [e.slug for e in entries if e.updated > recent]
    READS[0] = 0
    assert engine.select(index, lambda name: None, "", None, Filters(since=recent)) == want
    assert READS[0] < len(entries) // 4  # the scan ended well before the oldest
