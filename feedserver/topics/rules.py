"""Which channels an article belongs to, and the slugs that name them.

Topics come from front matter (``topics``/``tags``) and from the rules in
``config.toml``: phrases matched case-insensitively on word boundaries, or
regular expressions, over the title and the text.  The rules are what make
per-topic channels appear for scraped articles nobody tagged.  All rules are
compiled into one alternation so an article is scanned once, not once per topic.
A topic's slug (:func:`feedserver.core.slugs.topic_slug`) is shared with the settings,
which check each configured topic's key when they load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from ahocorasick_rs import AhoCorasick

from feedserver.config import Settings, TopicRule
from feedserver.core.records import Parsed, Topic
from feedserver.core.slugs import topic_slug
from feedserver.topics import detect


def _case_fixes() -> dict[int, str] | None:
    """Characters ``re.IGNORECASE`` treats as equal beyond ``str.lower`` (ı/i, ſ/s, ...).

    Folding them to one representative makes ``folded phrase in folded text``
    true wherever the case-insensitive regex could match.  Without the table
    (another Python) the prefilter is off and every rule runs its regex.
    """
    try:
        from re import _casefix  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - other Pythons
        return None
    table: dict[int, str] = {}
    for char, others in _casefix._EXTRA_CASES.items():
        group = sorted({char, *others})
        for member in group:
            table[member] = chr(group[0])
    return table


_FIXES = _case_fixes()
# The characters that folding changes (not 'i' or 's', which represent their groups).
_SPECIAL_CHARS = frozenset(chr(c) for c, rep in (_FIXES or {}).items() if chr(c) != rep)
_SPECIAL = re.compile("[" + re.escape("".join(sorted(_SPECIAL_CHARS))) + "\u0130]")
# Each of those lowercases to a string holding one of them again ('ſ' -> 'ſ'), so one
# search of the lowercased text finds what a search of both texts would; 'İ' (which
# lowercases to 'i' and a combining dot) is looked for on its own.  Checked, not assumed
# ('Σ' is the one letter whose lowercase depends on its neighbours).
_ONE_SEARCH = "\u03a3" not in _SPECIAL_CHARS and all(_SPECIAL.search(c.lower())
                                                      for c in _SPECIAL_CHARS)


def _fold(text: str) -> str | None:
    """Lowercase with re's extra equivalences, or None if lengths would change."""
    if _FIXES is None:
        return None
    folded = text.lower()
    if _ONE_SEARCH:
        special = "\u0130" in text or _SPECIAL.search(folded) is not None
    else:  # pragma: no cover - another Python's case table
        special = _SPECIAL.search(text) is not None or _SPECIAL.search(folded) is not None
    if special:
        folded = text.replace("\u0130", "i").lower().translate(_FIXES)
    return folded if len(folded) == len(text) else None


@dataclass(frozen=True)
class _Phrase:
    folded: str | None
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class _Compiled:
    """Every rule's phrases and patterns, and one automaton for all folded phrases.

    ``by_slot`` lists, for each automaton pattern, the rules (by position) and
    whole-word regexes of the phrases folding to it.  ``unslotted`` keeps per
    rule the phrases the automaton cannot stand for (their case folding changes
    their length), ``special`` the slots of the characters :func:`_fold`
    translates, so that the same pass tells whether the plain lowercase already
    is the folded text.
    """

    rules: tuple[tuple[tuple[_Phrase, ...], tuple[re.Pattern[str], ...]], ...]
    automaton: AhoCorasick | None = None
    by_slot: dict[int, tuple[tuple[int, re.Pattern[str]], ...]] = field(default_factory=dict)
    unslotted: tuple[tuple[_Phrase, ...], ...] = ()
    special: frozenset[int] = frozenset()


@lru_cache(maxsize=8)
def _matchers(rules: tuple[TopicRule, ...]) -> _Compiled:
    """Phrases (folded, and as a whole-word regex) and patterns of every rule."""
    compiled = tuple(
        (tuple(_Phrase(_fold(p), re.compile(rf"\b{re.escape(p)}\b", re.IGNORECASE))
               for p in rule.phrases),
         tuple(re.compile(p, re.IGNORECASE) for p in rule.patterns))
        for rule in rules)
    if not _ONE_SEARCH:  # pragma: no cover - another Python's case table
        return _Compiled(compiled)
    slots: dict[str, list[tuple[int, re.Pattern[str]]]] = {}
    for number, (phrases, _) in enumerate(compiled):
        for phrase in phrases:
            if phrase.folded:
                slots.setdefault(phrase.folded, []).append((number, phrase.pattern))
    if not slots:
        return _Compiled(compiled)
    by_slot = {slot: tuple(users) for slot, users in enumerate(slots.values())}
    unslotted = tuple(tuple(p for p in phrases if not p.folded) for phrases, _ in compiled)
    names = [*slots, *sorted(_SPECIAL_CHARS - slots.keys())]
    special = frozenset(names.index(c) for c in _SPECIAL_CHARS)
    return _Compiled(compiled, AhoCorasick(names), by_slot, unslotted, special)


def _starts(automaton: AhoCorasick, folded: str) -> dict[int, list[int]] | None:
    """Where each folded phrase starts in the folded text, overlaps included, in one pass.

    These are exactly the offsets ``folded.find(phrase, at + 1)`` would step
    through for every phrase, found by Aho-Corasick instead of one scan per
    phrase (the scans were most of an article's parse time).  None when the
    text cannot be handed over (lone surrogates).
    """
    try:
        found = automaton.find_matches_as_indexes(folded, overlapping=True)
    except UnicodeError:
        return None
    starts: dict[int, list[int]] = {}
    for slot, start, _ in found:
        starts.setdefault(slot, []).append(start)
    return starts


def _fold_and_find(text: str, compiled: _Compiled
                   ) -> tuple[str | None, dict[int, list[int]] | None]:
    """``_fold(text)`` and the phrase starts in it (None: look phrases up one by one).

    The plain lowercase is searched first; only when it holds a character
    folding translates (or the text an 'İ') is the folded text made and
    searched again, which is what :func:`_fold` decides with its own search.
    """
    automaton = compiled.automaton
    if automaton is None:
        return _fold(text), None
    lowered = text.lower()
    starts = _starts(automaton, lowered)
    if starts is None:
        return _fold(text), None
    if "\u0130" in text or not compiled.special.isdisjoint(starts):
        folded = _fold(text)
        return folded, None if folded is None else _starts(automaton, folded)
    return (lowered, starts) if len(lowered) == len(text) else (None, None)


def _occurs(phrase: _Phrase, text: str, folded: str | None) -> bool:
    """Whole-word, case-insensitive occurrence; regex tried only where the text has it."""
    if phrase.folded is None or folded is None:
        return phrase.pattern.search(text) is not None
    at = folded.find(phrase.folded)
    while at >= 0:
        if phrase.pattern.match(text, at):
            return True
        at = folded.find(phrase.folded, at + 1)
    return False


def _found_phrases(text: str, compiled: _Compiled, starts: dict[int, list[int]]) -> set[int]:
    """Rules (by position) one of whose slotted phrases occurs at a place found."""
    found: set[int] = set()
    for slot, places in starts.items():
        for number, pattern in compiled.by_slot.get(slot, ()):
            if number not in found and any(pattern.match(text, at) for at in places):
                found.add(number)
    return found


def matched_rules(title: str, text: str, rules: tuple[TopicRule, ...]) -> list[str]:
    """Slugs of the configured topics whose phrases or patterns occur.

    Each rule is decided on its own (one of its phrases occurs as whole words,
    case-insensitively, or one of its patterns matches).  Phrases are first
    looked up as plain substrings of the lowercased text, all of them in one
    Aho-Corasick pass, which rules most of them out at C speed; the regex
    confirms the word boundaries at each place found.
    """
    whole = f"{title}\n{text}"
    compiled = _matchers(rules)
    folded, starts = _fold_and_find(whole, compiled)
    if starts is None:
        found: set[int] = set()
        unslotted = tuple(phrases for phrases, _ in compiled.rules)
    else:
        found = _found_phrases(whole, compiled, starts)
        unslotted = compiled.unslotted
    for number, (_, patterns) in enumerate(compiled.rules):
        if number not in found and (any(_occurs(p, whole, folded) for p in unslotted[number])
                                    or any(p.search(whole) for p in patterns)):
            found.add(number)
    return [rule.slug for number, rule in enumerate(rules) if number in found]


def assign(parsed: Parsed, settings: Settings) -> tuple[tuple[str, ...], dict[str, str]]:
    """Topic slugs for one article and the names front matter gives (see :func:`assign_all`)."""
    slugs, names, _ = assign_all(parsed, settings)
    return slugs, names


@lru_cache(maxsize=8)
def _renames(rules: tuple[TopicRule, ...], exclude: tuple[str, ...]
             ) -> tuple[dict[str, str], frozenset[str]]:
    """Detected slug -> configured slug (``also``, and the rule's own name), and the
    slugs never to detect (``auto_topics_exclude``, by name or slug)."""
    renames: dict[str, str] = {}
    for rule in rules:
        for alias in (rule.name, *rule.also):
            slug = topic_slug(alias)
            if slug:
                renames.setdefault(slug, rule.slug)
    return renames, frozenset(filter(None, map(topic_slug, exclude)))


def detected_topics(parsed: Parsed, settings: Settings) -> tuple[detect.Found, ...]:
    """The topics found in the text, renamed and merged by config, banned ones left out."""
    renames, banned = _renames(settings.topics, settings.auto_topics_exclude)
    found: dict[str, detect.Found] = {}
    for slug, name, kind in detect.detect(parsed.title, parsed.text):
        if slug in banned:
            continue
        slug = renames.get(slug, slug)
        if slug not in banned:
            found.setdefault(slug, (slug, name, kind))
    return tuple(found.values())


def assign_all(parsed: Parsed, settings: Settings
               ) -> tuple[tuple[str, ...], dict[str, str], tuple[detect.Found, ...]]:
    """Topic slugs for one article (front matter first, then rules, then detection),
    the names front matter gives, and what detection found.

    The returned names map slugs to display names taken from front matter, for
    topics that config does not name.  Detected topics come as (slug, name, kind),
    after config renamed (``also``) and banned (``auto_topics_exclude``) them; those
    that config or front matter also name wait for no ``min_topic_articles``.
    """
    names: dict[str, str] = {}
    slugs: dict[str, None] = {}
    renames = _renames(settings.topics, settings.auto_topics_exclude)[0]
    for name in parsed.topics:
        slug = topic_slug(name)
        if slug in renames:  # a name config gathers under one of its topics ('also')
            slugs[renames[slug]] = None
        elif slug:
            slugs[slug] = None
            names.setdefault(slug, name)
    if settings.auto_topics:
        for slug in matched_rules(parsed.title, parsed.text, settings.topics):
            slugs[slug] = None
    found = detected_topics(parsed, settings) if settings.detect_topics else ()
    for slug, _, _ in found:
        slugs[slug] = None
    return tuple(slugs), names, found


def catalog(settings: Settings, names: dict[str, str],
            detected: dict[str, tuple[str, str]] | None = None) -> dict[str, Topic]:
    """All known topics: config rules win over names seen in front matter, which win
    over names detection found.  ``detected`` maps slugs to (name, kind); a topic
    detection also found takes its kind (a configured 'kazakhstan' is a place)."""
    detected = detected or {}
    topics = {slug: Topic(slug=slug, name=name, description=f"Articles about {name}.",
                          kind=kind) for slug, (name, kind) in detected.items()}
    for slug, name in names.items():
        topics[slug] = Topic(slug=slug, name=name, description=f"Articles about {name}.",
                             kind=detected.get(slug, ("", detect.SUBJECT))[1])
    for rule in settings.topics:
        topics[rule.slug] = Topic(slug=rule.slug, name=rule.name,
                                  description=rule.description or f"Articles about {rule.name}.",
                                  kind=detected.get(rule.slug, ("", detect.SUBJECT))[1])
    return topics
