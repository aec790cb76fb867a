"""A small site for the combined and filtered feed tests: articles whose topics,
languages, dates and words are known, so every expected item set is computed here from
what the seeds say (never from what the server answers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

TOPICS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota")
BASE = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)  # long before any clock a test runs on
MAX_ITEMS = 4
# Words some texts hold, some with accents (q is case- and accent-insensitive).
WORDS = ("Café", "pipeline", "STEPPE")


@dataclass(frozen=True)
class Seed:
    """One article as its file says it."""

    name: str
    title: str
    topics: tuple[str, ...]
    lang: str
    date: datetime
    words: tuple[str, ...]

    @property
    def text(self) -> str:
        """The file's text."""
        extra = " ".join(self.words)
        return (f"---\ntitle: {self.title}\ndate: {self.date.isoformat()}\n"
                f"topics: [{', '.join(self.topics)}]\nlang: {self.lang}\n---\n"
                f"Report number {self.name} about {', '.join(self.topics)}. {extra}\n")


def seeds() -> list[Seed]:
    """Twenty articles, one a day: topics, language and words vary with the number.

    ``alpha`` and ``beta`` share articles 0 and 6 only: with MAX_ITEMS = 4 the
    newest four of each topic hold none of them, so only the whole history finds them.
    """
    made = []
    for n in range(20):
        topics = {TOPICS[2 + n % 7]}
        if n % 2 == 0 and n < 14:
            topics.add("alpha")
        if n % 3 == 0 and n < 12:
            topics.add("beta")
        if n >= 14:
            topics.add("alpha" if n % 2 else "beta")
        made.append(Seed(f"a{n:02d}", f"Story {n:02d}", tuple(sorted(topics)),
                         "de" if n % 4 == 1 else "en", BASE + timedelta(days=n),
                         tuple(w for i, w in enumerate(WORDS) if n % (i + 2) == 0)))
    return made


def newest_first(items: list[Seed]) -> list[Seed]:
    return sorted(items, key=lambda s: s.date, reverse=True)


def write_site(root: Path, base_url: str = "http://127.0.0.1:8000/") -> Path:
    """Seeds and a config at ``root``; returns the config's path."""
    (root / "seeds").mkdir(parents=True, exist_ok=True)
    for seed in seeds():
        (root / "seeds" / f"{seed.name}.md").write_text(seed.text, encoding="utf-8")
    (root / "config.toml").write_text(
        f'site_title = "Query test"\nbase_url = "{base_url}"\nmax_items = {MAX_ITEMS}\n'
        'poll_budget = 0\ndetect_topics = false\ndetect_language = false\n'
        'auto_topics = false\nseeds_dir = "seeds"\noutput_dir = "public"\n'
        'state_dir = "state"\n', encoding="utf-8")
    return root / "config.toml"
