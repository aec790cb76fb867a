"""Which entries of the query index a combined or filtered answer looks at, kept per publish.

Every new URL is a new answer, and most are asked by programs: a poller's ``since`` is
its own last poll, a search is a new word.  Each such answer scanned the whole history
of its channel (the index lists every article ever published), so its cost grew with
the site: about 0.35 us an entry for ``since`` (3.5 ms at 10,000 articles) and about
4 us an entry for a ``q`` word few articles hold.  Here what a scan needs is found once
per publish (a new :class:`~feedserver.query.records.Index`) and per channel:

* :class:`Scope`: the channel's entries, newest first, with the latest ``updated`` from
  each position to the oldest, so a ``since`` scan ends where nothing left is newer;
* :class:`Haystack`: once a scan has checked every text of the channel in this publish,
  the texts end to end, so a word is looked for by Aho-Corasick (Rust) across all of
  them instead of one Python step per article, and their vocabulary, so a word no text
  holds is not looked for at all.

Neither changes what an answer lists (tests/unit/test_query_scopes.py compares them with
filtering the whole history by hand).
"""

from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from feedserver.core.freshness import channel_max_age
from feedserver.query.params import ALL, Combination
from feedserver.query.records import Entry, Index

# Entries the scopes of one index may hold in all: two references each, so about 16 MB
# at most; the 'all' scope of a 50,000-article site is 50,000.
SCOPE_ENTRIES = 1_000_000
# Bytes the haystacks of one index may hold in all (each is a copy of its channel's
# search texts, which the worker also keeps; a text with a character past Latin-1 makes
# its haystack two or four bytes a character).
HAYSTACK_BYTES = 32 * 1024 * 1024
# What ends each text in a haystack: a word holding it is never looked for there, so no
# match runs from one text into the next.
END = "\x00"
_END = END.encode()
# A search looks through a haystack this many bytes at a time at first (each stretch
# ending where a text ends), twice as many each time up to LAST_LOOK while a stretch
# holds fewer than DENSE matches (Haystack.holding).
FIRST_LOOK = 64 * 1024
LAST_LOOK = 1024 * 1024
DENSE = 256


def in_scope(index: Index, folder: str, combo: Combination | None) -> Iterator[Entry]:
    """The entries of ``folder`` (or of the combined channel ``combo``), newest first."""
    if combo is not None:
        wanted = set(combo.slugs)
        if combo.op == ALL:
            return (e for e in index.entries if wanted.issubset(e.topics))
        return (e for e in index.entries if not wanted.isdisjoint(e.topics))
    if folder == "":
        return iter(index.entries)
    kind, _, name = folder.partition("/")
    if kind == "languages":
        return (e for e in index.entries if e.lang == name)
    return (e for e in index.entries if name in e.topics)


@dataclass(frozen=True)
class Haystack:
    """A scope's search texts end to end in UTF-8, each followed by :data:`END`.

    A word is looked for by Aho-Corasick (``ahocorasick_rs``, Rust, with SIMD
    prefilters) a stretch of whole texts at a time: about 1 ms across 6.5 MB where
    ``str.find`` took 4.5-10 ms (benchmarks/README.md, "Envelopes drawn once; a
    search's haystack in UTF-8").  UTF-8 finds a word's bytes only where its characters
    are, so a text holds the word's bytes when it holds the word.  A stretch starts at
    :data:`FIRST_LOOK` bytes and doubles up to :data:`LAST_LOOK` while it finds fewer
    than :data:`DENSE` matches, so an answer that wants the first few texts of a
    common word never has every occurrence of it listed."""

    blob: bytes
    starts: tuple[int, ...]  # where each text starts, and where the last one ends
    # Every distinct word of the texts, each followed by END (see :meth:`lacks`).
    vocabulary: bytes = b""

    @classmethod
    def of(cls, texts: Iterable[str]) -> Haystack:
        pieces = [text.encode("utf-8", "surrogatepass") for text in texts]
        starts, at = [0], 0
        distinct: set[bytes] = set()
        for piece in pieces:
            at += len(piece) + 1
            starts.append(at)
            distinct.update(piece.split())
        return cls(_END.join(pieces) + _END, tuple(starts), _END.join(distinct) + _END)

    @property
    def size(self) -> int:
        """Bytes held: the texts and their vocabulary."""
        return sys.getsizeof(self.blob) + sys.getsizeof(self.vocabulary)

    def lacks(self, words: Iterable[str]) -> bool:
        """Whether no text can hold all of ``words``: one of them is in no word of any
        text.  A search text is its article's distinct words joined by spaces, and a word
        of ``q`` is a run of word characters (no space, no END), so a text holds it only
        inside one of its words, which the vocabulary holds too (END between them, so no
        match runs from one into the next).  About a tenth of the texts' bytes at 10,000
        articles: a word no article holds (a poller's search that finds nothing yet, a
        misspelling) is refused without the scan of every text, which cost about 1 ms
        there and left the processor's caches cold for the next request."""
        vocabulary = self.vocabulary
        return bool(vocabulary) and any(
            word.encode("utf-8", "surrogatepass") not in vocabulary for word in words)

    @staticmethod
    def searchable(words: Iterable[str]) -> bool:
        """Whether these words can be looked for here (none empty, none holding END)."""
        return all(word and END not in word for word in words)

    def text(self, at: int) -> str:
        """The ``at``-th text."""
        return self.blob[self.starts[at]:self.starts[at + 1] - 1].decode(
            "utf-8", "surrogatepass")

    def holding(self, word: str) -> Iterator[int]:
        """The positions of the texts that hold ``word``, in order, each once."""
        from ahocorasick_rs import BytesAhoCorasick

        blob, starts = self.blob, self.starts
        finder = BytesAhoCorasick([word.encode("utf-8", "surrogatepass")])
        whole = memoryview(blob)
        low, look, ends = 0, FIRST_LOOK, -1  # ends: where the last text found ends
        while low < len(blob):
            high = starts[min(bisect_left(starts, low + look), len(starts) - 1)]
            found = finder.find_matches_as_indexes(whole[low:high])
            for _, start, _ in found:
                if low + start >= ends:
                    at = bisect_right(starts, low + start) - 1
                    ends = starts[at + 1]
                    yield at
            low = high
            if len(found) < DENSE:
                look = min(2 * look, LAST_LOOK)


@dataclass
class Scope:
    """A channel's entries over its whole history, newest first, and at each position the
    latest ``updated`` from there to the oldest: an answer with ``since`` stops where
    nothing left can be newer (entries are in ``published`` order, and an edit makes an
    old article's ``updated`` recent, so that is not the entries' own order).  Its
    :class:`Haystack`, once made (see :meth:`Scopes.search`)."""

    entries: tuple[Entry, ...]
    latest: tuple[datetime, ...]
    haystack: Haystack | None = None
    tried: bool = False  # a haystack was tried in this publish (made, or not to be)
    # (arguments, max_age) of pace(): worked out once, never given
    _pace: tuple[tuple[int, int, int], int] | None = field(default=None, init=False,
                                                           repr=False, compare=False)

    def pace(self, max_items: int, floor: int, ceiling: int) -> int:
        """The channel's max-age as the build reckons a channel's
        (:func:`~feedserver.core.freshness.channel_max_age` over the updates of the
        newest ``max_items``, what its subscription document lists), worked out once.

        What a combined channel's answers carry, whatever they list: a filtered answer
        of a published channel carries its channel's, and a combined one took it from
        its own items, so ``limit=1`` (one update: no pace) said the floor, and answers
        of one channel differed in their heads (each drawn anew, its ``ttl`` read again
        by the gate)."""
        asked = (max_items, floor, ceiling)
        if self._pace is None or self._pace[0] != asked:
            listed = self.entries[:max_items]
            self._pace = (asked, channel_max_age((e.updated for e in listed), floor, ceiling))
        return self._pace[1]

    @property
    def newest(self) -> datetime | None:
        """The latest ``updated`` of the whole history (None: no entry)."""
        return self.latest[0] if self.latest else None

    @classmethod
    def of(cls, entries: Iterator[Entry]) -> Scope:
        listed = tuple(entries)
        latest: list[datetime] = []
        for entry in reversed(listed):
            latest.append(entry.updated if not latest or entry.updated > latest[-1]
                          else latest[-1])
        return cls(listed, tuple(reversed(latest)))


class Scopes:
    """The scopes answers asked for, per index (a publish starts afresh), the least
    recently used going first past :data:`SCOPE_ENTRIES` entries in all."""

    def __init__(self, limit: int = SCOPE_ENTRIES, room: int = HAYSTACK_BYTES) -> None:
        self._index: Index | None = None
        self._kept: OrderedDict[tuple[str, Combination | None], Scope] = OrderedDict()
        self._size = 0
        self._held = 0  # bytes of the haystacks
        self._limit = limit
        self._room = room

    def of(self, index: Index, folder: str, combo: Combination | None) -> Scope:
        if index is not self._index:
            self._index, self._kept, self._size, self._held = index, OrderedDict(), 0, 0
        key = (folder, combo)
        found = self._kept.get(key)
        if found is not None:
            self._kept.move_to_end(key)
            return found
        found = self._kept[key] = Scope.of(in_scope(index, folder, combo))
        self._size += len(found.entries)
        while len(self._kept) > 1 and self._size > self._limit:  # the newest stays
            gone = self._kept.popitem(last=False)[1]
            self._size -= len(gone.entries)
            self._held -= gone.haystack.size if gone.haystack else 0
        return found

    def stack(self, scope: Scope, texts: Iterable[str | None]) -> None:
        """Make ``scope``'s haystack of ``texts`` (its entries' search texts as checked in
        this publish, None for one that is not), once per publish: not when a text is
        missing (the worker does not keep it) or past :data:`HAYSTACK_BYTES`."""
        if scope.tried:
            return
        scope.tried = True
        found: list[str] = []
        size = 0
        for text in texts:
            if text is None:
                return
            found.append(text)
            size += len(text) + 1  # a byte a character at least
            if self._held + size > self._room:
                return
        made = Haystack.of(found)
        size = made.size
        if self._held + size <= self._room:
            scope.haystack = made
            self._held += size
