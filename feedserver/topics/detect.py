"""Topics found in an article's text with no configuration: places, organisations,
people and key phrases, each with its kind.

Thresholds keep a passing mention from making a topic: a place must be named
at least twice (its name in the title counts two) and at least a quarter as
often as the place named most; a name or phrase :data:`entities.MIN_MENTIONS`
times.  The caller (:func:`feedserver.topics.rules.assign_all`) renames, bans
and merges what comes out, and the build makes a channel only for a detected
topic that :setting:`min_topic_articles` articles share.  Deterministic: the
same title and text give the same topics in the same order.  What it costs
(about 2.5 ms per 4 KB article; the gazetteer's index, under 0.1 s, once per
process) is measured by ``benchmarks/topics_quality.py``.
"""

from __future__ import annotations

from feedserver.core.slugs import topic_slug
from feedserver.topics import entities, gazetteer

PLACE, ORGANISATION, PERSON, SUBJECT = "place", "organisation", "person", "subject"
KINDS = (PLACE, ORGANISATION, PERSON, SUBJECT)
MIN_PLACE = 2  # mentions of a place (title counts two)
PLACE_SHARE = 4  # ... and at least 1/PLACE_SHARE of the most-named place's
MOST = {PLACE: 4, ORGANISATION: 2, PERSON: 2, SUBJECT: 2}  # kept per article, per kind

SAMPLE = 20_000  # characters of the text read
Found = tuple[str, str, str]  # (slug, name, kind)


def warm() -> None:
    """Build the gazetteer's index now (before forking workers, so they share it)."""
    gazetteer.index()
    entities.stopwords()
    entities.organisation_words()


def is_warm() -> bool:
    """Whether this process holds the gazetteer's index."""
    return gazetteer.index.cache_info().currsize > 0


def release() -> None:
    """Forget the gazetteer's index (built again when next needed)."""
    gazetteer.index.cache_clear()


def places(title: str, text: str, seen: set[str] | None = None) -> list[tuple[str, str, int]]:
    """(slug, name, score) of the places the article is about, best first."""
    in_title = gazetteer.mentions(gazetteer.WORD.findall(title), seen)
    in_text = gazetteer.mentions(gazetteer.WORD.findall(text), seen)
    scores = {place: in_text[place] + 2 * (place in in_title)
              for place in (*in_title, *in_text)}
    if not scores:
        return []
    top = max(scores.values())
    kept = [(p.slug, p.name, n) for p, n in scores.items()
            if n >= MIN_PLACE and n * PLACE_SHARE >= top]
    return sorted(kept, key=lambda t: (-t[2], t[0]))[:MOST[PLACE]]


def detect(title: str, text: str) -> tuple[Found, ...]:
    """Every topic found in the title and the first :data:`SAMPLE` characters of the text,
    places first, with its kind (what an article is about is said early; a 5 MB file
    costs what its beginning costs)."""
    text = text[:SAMPLE]
    seen: set[str] = set()
    found: dict[str, Found] = {}
    for slug, name, _ in places(title, text, seen):
        found.setdefault(slug, (slug, name, PLACE))
    tokens = entities.tokens(f"{title}.\n{text}")
    kept = {PERSON: 0, ORGANISATION: 0}
    named: set[str] = set(seen)
    for name, kind, _ in entities.names(tokens, frozenset(seen)):
        slug = topic_slug(name)
        if slug and slug not in found and kept[kind] < MOST[kind]:
            kept[kind] += 1
            found[slug] = (slug, name, kind)
            named.update(w.lower() for w in name.split())
    for phrase, _ in entities.phrases(tokens, frozenset(named)):
        slug = topic_slug(phrase)
        if slug and slug not in found:
            found[slug] = (slug, phrase, SUBJECT)
    return tuple(found.values())
