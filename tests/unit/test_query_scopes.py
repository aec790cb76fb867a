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

from feedserver.query.answer import Engine, Words
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


def _engine(texts: dict[str, str] | None = None) -> Engine:
    """An engine whose records are the entries' slugs and ``texts`` (no files)."""
    engine = Engine()
    engine.record = lambda read, slug, index=None, folder=None: (  # type: ignore[method-assign,assignment]
        slug, (texts or {}).get(slug, ""))
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


WORDS = ("gas", "rail", "steppe", "caf", "pipe", "line", "zz", "a")


def _texts(entries: tuple[Entry, ...], seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    return {e.slug: " ".join(rng.sample(("gas", "pipeline", "railway", "steppe", "cafe",
                                         "bank", "solar", "trade"), k=rng.randrange(1, 4)))
            for e in entries}


def _kept(engine: Engine, index: Index, texts: dict[str, str]) -> None:
    """Every text checked in this publish, as a scan leaves them."""
    for slug, text in texts.items():
        engine.words.of(index, slug, lambda: 1, lambda text=text: text)


@pytest.mark.parametrize(("folder", "combo"), SCOPES[:3])
def test_a_search_lists_what_filtering_every_text_lists_before_and_after_its_haystack(
        folder: str, combo: Combination | None) -> None:
    entries = _entries(400, seed=11)
    texts = _texts(entries, seed=12)
    index, engine = _index(entries), _engine(texts)

    def search(words: tuple[str, ...], **given: Any) -> list[str]:
        return engine.select(index, lambda name: None, folder, combo,
                             Filters(q=words, **given), identify=lambda name: 1)

    def want(words: tuple[str, ...], limit: int | None = None,
             since: datetime | None = None, lang: str | None = None) -> list[str]:
        return [e.slug for e in entries if _in(e, folder, combo)
                and all(w in texts[e.slug] for w in words)
                and (since is None or e.updated > since)
                and (lang is None or e.lang == lang)][:limit or index.max_items]

    _kept(engine, index, texts)
    scope = engine.scopes.of(index, folder, combo)
    assert search(("nowhere",)) == []  # a scan over every text: the haystack is made
    assert scope.haystack is not None
    middle = entries[200].updated
    for words in [(w,) for w in WORDS] + [("gas", "rail"), ("steppe", "cafe", "a"),
                                          ("line", "pipe"), ("zz", "gas")]:
        for given in ({}, {"limit": 2}, {"since": middle}, {"lang": "fr", "limit": 3}):
            assert search(words, **given) == want(words, **given), (words, given)
    assert search(("a\x00g",)) == []  # never across two texts


def test_a_haystack_is_made_only_of_texts_checked_in_this_publish() -> None:
    entries = _entries(50, seed=3)
    texts = _texts(entries, seed=4)
    index, engine = _index(entries), _engine(texts)
    engine.words = Words(limit=sum(map(len, texts.values())) - 1)  # one text left out
    _kept(engine, index, texts)
    scope = engine.scopes.of(index, "", None)
    wanted = [e.slug for e in entries if "gas" in texts[e.slug]][:index.max_items]
    for _ in range(2):
        assert engine.select(index, lambda name: None, "", None, Filters(q=("zz",)),
                             identify=lambda name: 1) == []
        assert engine.select(index, lambda name: None, "", None, Filters(q=("gas",)),
                             identify=lambda name: 1) == wanted
        assert scope.haystack is None  # a text this worker does not keep
    again = _index(entries)  # the next publish: nothing is trusted
    engine.words = Words()
    _kept(engine, again, texts)
    assert engine.scopes.of(again, "", None).haystack is None
    assert engine.select(again, lambda name: None, "", None, Filters(q=("zz",)),
                         identify=lambda name: 1) == []
    assert engine.scopes.of(again, "", None).haystack is not None


def test_haystacks_are_counted_in_bytes() -> None:
    """A text with a character past Latin-1 makes the whole haystack two bytes a
    character: the bound is on what it holds in memory, not on its length."""
    from feedserver.query.scopes import Scopes

    index = _index(_entries(10, seed=5))
    latin = ["steppe gas"] * 10
    chars = sum(len(t) + 1 for t in latin)
    for texts, made in ((latin, True), (["степь газ!"] * 10, False)):
        scopes = Scopes(room=chars + 100)  # the characters' count and an object's header
        scope = scopes.of(index, "", None)
        scopes.stack(scope, texts)
        assert (scope.haystack is not None) is made
        assert scope.tried


@pytest.mark.parametrize(("first", "last"), [(1, 1), (7, 40), (64, 4096)])
def test_a_haystack_finds_every_text_holding_a_word_however_far_each_look_reaches(
        monkeypatch: pytest.MonkeyPatch, first: int, last: int) -> None:
    """The haystack is looked through a stretch at a time (each ending where a text
    ends, growing while matches are few): every text holding the word is found once, in
    order, as ``in`` finds it, over texts of one, two, three and four bytes a character
    and words that occur densely, rarely, across texts' ends or nowhere."""
    from feedserver.query import scopes

    monkeypatch.setattr(scopes, "FIRST_LOOK", first)
    monkeypatch.setattr(scopes, "LAST_LOOK", last)
    monkeypatch.setattr(scopes, "DENSE", 3)
    rng = random.Random(21)
    vocabulary = ("gas", "steppe", "газ", "степь", "草原", "ガス", "🚂", "e", "ee", "a", "",
                  "pipeline", "bank")
    texts = [" ".join(rng.choices(vocabulary, k=rng.randrange(0, 12))) for _ in range(300)]
    stack = scopes.Haystack.of(texts)
    words = {*vocabulary, "zz", "s g", "e e", "аз", "原", "\U0001f682 e", "ee ee ee", "x" * 50,
             *(t[i:i + n] for t in texts[:40] for i in range(0, len(t), 5) for n in (1, 3, 8))}
    for word in sorted(w for w in words if scopes.Haystack.searchable((w,))):
        assert list(stack.holding(word)) == [i for i, t in enumerate(texts) if word in t], word
    assert [stack.text(i) for i in range(len(texts))] == texts


def test_a_word_no_text_holds_is_refused_without_a_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """A haystack keeps its texts' vocabulary: a search with a word that is in no word of
    any text (alone or beside words that are) lists nothing without the haystack being
    looked through; a word inside another (``pipe`` in ``pipeline``), or not ASCII, is
    found as before."""
    from feedserver.query.scopes import Haystack

    texts = ["steppe gas pipeline", "cafe rail", "степь газ"]
    stack = Haystack.of(texts)
    assert not stack.lacks(("pipe",)) and not stack.lacks(("gas", "rail"))
    assert not stack.lacks(("газ",)) and not stack.lacks(("eppe",))
    assert stack.lacks(("zzq",)) and stack.lacks(("gas", "zzq"))
    assert stack.lacks(("gas rail",))  # a space: never inside one word
    assert stack.lacks(("railsteppe",)) and stack.lacks(("pipelinecafe",))  # across words
    assert stack.size > len(b"\0".join(t.encode() for t in texts))

    entries = _entries(60, seed=21)
    made = _texts(entries, seed=22)
    index, engine = _index(entries), _engine(made)
    _kept(engine, index, made)
    assert engine.select(index, lambda name: None, "", None, Filters(q=("nowhere",)),
                         identify=lambda name: 1) == []  # the haystack is made
    looked: list[str] = []
    real = Haystack.holding

    def holding(self: Haystack, word: str) -> Any:
        looked.append(word)
        return real(self, word)

    monkeypatch.setattr(Haystack, "holding", holding)
    for words in (("zzq",), ("gas", "zzq")):
        assert engine.select(index, lambda name: None, "", None, Filters(q=words),
                             identify=lambda name: 1) == []
    assert looked == []
    found = engine.select(index, lambda name: None, "", None, Filters(q=("gas",)),
                          identify=lambda name: 1)
    assert looked == ["gas"] and found == [e.slug for e in entries
                                           if "gas" in made[e.slug]][:index.max_items]
