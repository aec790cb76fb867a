"""Which channels an article belongs to, and the slugs that name them.

Topics come from front matter (``topics``/``tags``) and from the rules in
``config.toml``: phrases matched case-insensitively on word boundaries, or
regular expressions, over the title and the text.  The rules are what make
per-topic channels appear for scraped articles nobody tagged.  All rules are
compiled into one alternation so an article is scanned once, not once per topic.
"""

from __future__ import annotations

import re
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


@lru_cache(maxsize=8)
def _matcher(rules: tuple[TopicRule, ...]) -> tuple[re.Pattern[str] | None, tuple[str, ...]]:
    """One regex with a named group per rule; group order maps back to slugs."""
    branches: list[str] = []
    for index, rule in enumerate(rules):
        alternatives = [rf"\b{re.escape(p)}\b" for p in rule.phrases] + list(rule.patterns)
        if alternatives:
            branches.append(f"(?P<t{index}>{'|'.join(alternatives)})")
    slugs = tuple(rule.slug for rule in rules)
    if not branches:
        return None, slugs
    return re.compile("|".join(branches), re.IGNORECASE), slugs


def matched_rules(title: str, text: str, rules: tuple[TopicRule, ...]) -> list[str]:
    """Slugs of the configured topics whose phrases or patterns occur."""
    pattern, slugs = _matcher(rules)
    if pattern is None:
        return []
    found: dict[str, None] = {}
    for match in pattern.finditer(f"{title}\n{text}"):
        group = match.lastgroup
        if group is not None:
            found[slugs[int(group[1:])]] = None
            if len(found) == len(rules):
                break
    return [slug for slug in (r.slug for r in rules) if slug in found]


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
