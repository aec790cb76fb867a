"""Organisations and people named often in a text, and its key phrases.

No model: capitalization and repetition, which is what a reader goes by too.

- A *name* is a run of capitalized words (Latin or Cyrillic) inside a sentence,
  less the function words and titles that start it ("President", "The").
- An *organisation* is a name of two or more words holding an organisation word
  ("Agency", "Ministry", "Bank", "Министерство", ...), or an acronym (``NATO``,
  ``ОДКБ``; not those ``data/stopwords.txt`` lists, such as ``RSS`` or ``GDP``).
- A *person* is a name of two or three words that is no place and no
  organisation; each later mention by the last name alone ("Tokayev",
  "Токаева") counts for the person.
- A *key phrase* is a pair of content words repeated in the text
  ("wind farm", "солнечной станции"), counted by word stems.

Each needs :data:`MIN_MENTIONS` mentions, so one passing name makes nothing.  The
result depends on the text alone, in a fixed order (count, then name).
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from importlib import resources

MIN_MENTIONS = 3  # mentions a name or phrase needs to become a topic
MAX_PHRASES = 2  # key phrases kept per article
_TOKEN = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*|[.!?;:\n]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def _words(name: str) -> frozenset[str]:
    text = resources.files("feedserver.topics").joinpath(f"data/{name}").read_text("utf-8")
    return frozenset(w for line in text.splitlines() if not line.startswith("#")
                     for w in line.split())


@cache
def stopwords() -> frozenset[str]:
    """Function words and titles (``data/stopwords.txt``)."""
    return _words("stopwords.txt")


@cache
def organisation_words() -> frozenset[str]:
    """Words that make a name an organisation's (``data/organisation-words.txt``)."""
    return _words("organisation-words.txt")


def _stem(word: str) -> str:
    """A crude stem: Cyrillic words lose their case ending, English ones a plural 's'."""
    lower = word.lower()
    if _CYRILLIC.match(lower):
        return lower[:-2] if len(lower) > 5 else lower
    return lower[:-1] if len(lower) > 4 and lower.endswith("s") and not lower.endswith("ss") \
        else lower


def _capitalized(word: str) -> bool:
    return word[:1].isupper()


def _acronym(word: str) -> bool:
    return 2 <= len(word) <= 6 and word.isupper() and word.isalpha()


def _runs(tokens: list[str]) -> list[list[str]]:
    """Capitalized runs inside sentences, less leading function words and titles."""
    stop = stopwords()
    runs: list[list[str]] = []
    current: list[str] = []
    for token in [*tokens, "."]:
        if token[0].isupper() or (current and token in ("of", "for")):
            current.append(token)
            continue
        if not current:
            continue
        while current and (current[-1] in ("of", "for")):
            current.pop()
        while current and current[0].lower() in stop:
            current.pop(0)
        if current:
            runs.append(current)
        current = []
    return runs


def names(tokens: list[str], places: frozenset[str]) -> list[tuple[str, str, int]]:
    """(name, kind, mentions) of the organisations and people named often enough.

    ``places``: the lowercased words of the places found, never part of a person's name.
    """
    org_words = organisation_words()
    stop = stopwords()
    orgs: Counter[str] = Counter()
    people: Counter[str] = Counter()
    singles: Counter[str] = Counter()
    for run in _runs(tokens):
        lowered = [w.lower() for w in run]
        if len(run) > 1 and any(w in org_words for w in lowered):
            orgs[" ".join(run)] += 1  # one word ("Ministry") names no one organisation
        elif len(run) == 1:
            word = run[0]
            if _acronym(word) and lowered[0] not in places and lowered[0] not in stop:
                orgs[word] += 1
            else:
                singles[_stem(word)] += 1
        elif 2 <= len(run) <= 3 and not any(w in places for w in lowered) \
                and not any(_acronym(w) for w in run):
            people[" ".join(run)] += 1
    found: dict[str, tuple[str, int]] = {}
    last_names: dict[str, str] = {}
    for person in sorted(people, key=lambda p: (-people[p], p)):
        last = _stem(person.split()[-1])
        if last not in last_names:
            last_names[last] = person
    for last, person in last_names.items():
        found[person] = ("person", sum(people[p] for p in people
                                       if _stem(p.split()[-1]) == last) + singles[last])
    for org, count in orgs.items():
        found[org] = ("organisation", count)
    return sorted(((n, kind, count) for n, (kind, count) in found.items()
                   if count >= MIN_MENTIONS), key=lambda t: (-t[2], t[0]))


def phrases(tokens: list[str], taken: frozenset[str]) -> list[tuple[str, int]]:
    """(phrase, mentions) of the repeated pairs of lower-case content words, best first.

    ``taken``: lowercased words already part of a place or name topic.
    """
    stop = stopwords()
    # Which words may start or end a phrase, decided once per distinct word (most repeat):
    # the lowercased word and its first four letters, or None.  A second word must be
    # lower case ("wind Farm" is no phrase).
    heads: dict[str, str | None] = {}
    tails: dict[str, str | None] = {}
    head4: dict[str, str | None] = {}
    tail4: dict[str, str | None] = {}
    for token in set(tokens):
        lower = token.lower()
        usable = (len(token) >= 3 and token[0].isalpha() and lower not in stop
                  and lower not in taken)
        tail = usable and not token[0].isupper()
        heads[token], head4[token] = (lower, lower[:4]) if usable else (None, None)
        tails[token], tail4[token] = (lower, lower[:4]) if tail else (None, None)
    # Words of one stem share their first four letters: only pairs whose four-letter group
    # is repeated enough can make a phrase.  The neighbouring pairs are counted in C (a
    # per-token Python loop was a third of detection's time).
    rest = tokens[1:]
    groups = Counter(zip(map(head4.__getitem__, tokens), map(tail4.__getitem__, rest),
                         strict=False))
    good: set[tuple[str | None, str | None]] = set()
    for group, count in groups.most_common():
        if count < MIN_MENTIONS:
            break
        if None not in group:
            good.add(group)
    if not good:
        return []
    pairs = Counter(zip(map(heads.__getitem__, tokens), map(tails.__getitem__, rest),
                        strict=False))
    counts: Counter[tuple[str, str]] = Counter()  # by stems: inflected forms count together
    shown: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for (a, b), count in pairs.items():
        if a is None or b is None or (a[:4], b[:4]) not in good:
            continue
        key = (_stem(a), _stem(b))
        counts[key] += count
        shown.setdefault(key, []).append((-count, f"{a} {b}"))
    best = sorted((k for k, n in counts.items() if n >= MIN_MENTIONS),
                  key=lambda k: (-counts[k], k))[:MAX_PHRASES]
    return [(min(shown[k])[1], counts[k]) for k in best]


def tokens(text: str) -> list[str]:
    """Words (hyphenated ones whole) and sentence breaks, in order."""
    return _TOKEN.findall(text)
