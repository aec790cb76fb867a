"""Which channels an article belongs to, and the slugs that name them.

Topics come from front matter (``topics``/``tags``) and from the rules in
``config.toml``: phrases matched case-insensitively on word boundaries, or
regular expressions, over the title and the text.  The rules are what make
per-topic channels appear for scraped articles nobody tagged.  All rules are
compiled into one alternation so an article is scanned once, not once per topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from slugify import slugify as _slugify

from .config import Settings, TopicRule
from .models import Parsed, Topic

_INVISIBLE = re.compile("[\u200b-\u200d\u2060\ufeff\u00ad]")  # zero-width, soft hyphen
RESERVED = frozenset({"all", "index", "feed", "topics", "articles", "embed", "static"})
MAX_SLUG = 80


def slugify(name: str) -> str:
    """Lowercase ASCII slug, transliterated ('Казахстан' -> 'kazakhstan'), URL-safe.

    Returns '' when nothing printable is left (a name of only zero-width or
    punctuation characters); callers drop such names.
    """
    return _slugify(_INVISIBLE.sub("", name), max_length=MAX_SLUG, word_boundary=True)


def topic_slug(name: str) -> str:
    """Slug for a topic channel; names that would clash with site paths get a suffix."""
    slug = slugify(name)
    return f"{slug}-topic" if slug in RESERVED else slug


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
_SPECIAL = re.compile("[" + re.escape("".join(chr(c) for c, rep in (_FIXES or {}).items()
                                              if chr(c) != rep)) + "\u0130]")


def _fold(text: str) -> str | None:
    """Lowercase with re's extra equivalences, or None if lengths would change."""
    if _FIXES is None:
        return None
    folded = text.lower()
    if _SPECIAL.search(text) or _SPECIAL.search(folded):
        folded = text.replace("\u0130", "i").lower().translate(_FIXES)
    return folded if len(folded) == len(text) else None


@dataclass(frozen=True)
class _Phrase:
    folded: str | None
    pattern: re.Pattern[str]


@lru_cache(maxsize=8)
def _matchers(rules: tuple[TopicRule, ...]) -> tuple[tuple[tuple[_Phrase, ...],
                                                          tuple[re.Pattern[str], ...]], ...]:
    """Per rule: its phrases (folded, and as a whole-word regex) and its patterns."""
    return tuple(
        (tuple(_Phrase(_fold(p), re.compile(rf"\b{re.escape(p)}\b", re.IGNORECASE))
               for p in rule.phrases),
         tuple(re.compile(p, re.IGNORECASE) for p in rule.patterns))
        for rule in rules)


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


def matched_rules(title: str, text: str, rules: tuple[TopicRule, ...]) -> list[str]:
    """Slugs of the configured topics whose phrases or patterns occur.

    Each rule is decided on its own (one of its phrases occurs as whole words,
    case-insensitively, or one of its patterns matches).  Phrases are first
    looked up as plain substrings of the lowercased text, which rules most of
    them out at C speed; the regex confirms the word boundaries.
    """
    whole = f"{title}\n{text}"
    folded = _fold(whole)
    found: list[str] = []
    for rule, (phrases, patterns) in zip(rules, _matchers(rules), strict=True):
        if any(_occurs(p, whole, folded) for p in phrases) or \
                any(p.search(whole) for p in patterns):
            found.append(rule.slug)
    return found


def assign(parsed: Parsed, settings: Settings) -> tuple[tuple[str, ...], dict[str, str]]:
    """Topic slugs for one article (front matter first, then rules) and new names.

    The returned names map slugs to display names taken from front matter, for
    topics that config does not name.
    """
    names: dict[str, str] = {}
    slugs: dict[str, None] = {}
    for name in parsed.topics:
        slug = topic_slug(name)
        if slug:
            slugs[slug] = None
            names.setdefault(slug, name)
    if settings.auto_topics:
        for slug in matched_rules(parsed.title, parsed.text, settings.topics):
            slugs[slug] = None
    return tuple(slugs), names


def catalog(settings: Settings, names: dict[str, str]) -> dict[str, Topic]:
    """All known topics: config rules win over names seen in front matter."""
    topics = {slug: Topic(slug=slug, name=name, description=f"Articles about {name}.")
              for slug, name in names.items()}
    for rule in settings.topics:
        topics[rule.slug] = Topic(slug=rule.slug, name=rule.name,
                                  description=rule.description or f"Articles about {rule.name}.")
    return topics
