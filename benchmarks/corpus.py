"""A deterministic, seeded corpus of articles shaped like a real news archive.

About 70% are scraped ``.txt`` news (a title line, 5-15 paragraphs of about
600 words, some Russian and Kazakh text, scraper debris such as "Still image"
and "Currently reading") and 30% are ``.md`` files with front matter (date,
author, 1-5 topics drawn from a Zipf-like vocabulary of about 200 topics).
Some files sit in subfolders.  The same seed always gives the same bytes and
the same modification times, so two builds of "the same corpus" really are.
"""

from __future__ import annotations

import itertools
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2022, 1, 1, tzinfo=UTC)
_PROSE = (
    "the government said on monday that new rules would apply from next year while officials "
    "in the capital warned about rising costs and the region's economy faced pressure from "
    "weak demand higher prices and a shortage of workers analysts expect growth to slow but "
    "sales of grain and metals remain strong as companies build new plants and warehouses "
    "the ministry announced talks with neighbours about water roads schools and hospitals "
    "residents complained about delays farmers asked for support banks raised interest rates "
    "and the central bank kept its forecast unchanged after a meeting of the board"
)
WORDS = _PROSE.split()
# Themes: words the sample config's topic rules look for.  A news article has 0-2
# themes and mentions their words now and then, as real articles do.
THEMES = (("Kazakhstan", "Astana", "Tokayev"), ("Russia", "Moscow", "Kremlin"),
          ("gas", "oil", "pipeline", "energy"), ("summit", "diplomats", "bilateral"),
          ("trade", "tariffs", "exports", "investment"), ("railway", "corridor", "logistics"),
          ("software", "open source", "RSS"))
RUSSIAN = ("Правительство заявило, что новые правила вступят в силу со следующего года, "
           "а экономика региона испытывает давление из-за высоких цен.")
KAZAKH = ("Үкімет жаңа ережелер келесі жылдан бастап күшіне енетінін мәлімдеді, ал "
          "Қазақстан экономикасы бағаның өсуіне байланысты қысымға ұшырап отыр.")
DEBRIS = ("Still image", "Currently reading", "Advertisement", "Share this article",
          "Read more", "Skip to content")
FIRST = ("Steppe", "Caspian", "Northern", "Urban", "Rural", "Digital", "Regional", "Public",
         "Foreign", "Green", "Mining", "Water", "Border", "Youth", "Health", "Grain", "Labour",
         "Coastal", "Mountain", "Space")
SECOND = ("Energy", "Trade", "Transport", "Politics", "Culture", "Schools", "Banking",
          "Farming", "Housing", "Science")
TOPICS = [f"{a} {b}" for a, b in itertools.product(FIRST, SECOND)]  # 200 topics
AUTHORS = ("Aliya Nurlanovna", "Daniyar Seitkali", "Maria Petrova", "John Carter",
           "Saule Akhmetova", "Ivan Sokolov", None)


def _zipf_weights(count: int, exponent: float = 1.05) -> list[float]:
    return [1 / (rank ** exponent) for rank in range(1, count + 1)]


class Generator:
    """Article texts from one seeded random stream."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.topic_weights = _zipf_weights(len(TOPICS))
        self.theme_weights = _zipf_weights(len(THEMES), 0.8)
        self.signals: tuple[str, ...] = ()

    def pick_themes(self) -> None:
        """This article's theme words (none for about a fifth of the articles)."""
        count = self.rng.choices((0, 1, 2), (2, 5, 3))[0]
        themes = self.rng.choices(THEMES, self.theme_weights, k=count)
        self.signals = tuple(word for theme in themes for word in theme)

    def sentence(self) -> str:
        words = self.rng.choices(WORDS, k=self.rng.randint(8, 22))
        if self.signals and self.rng.random() < 0.15:
            words.insert(self.rng.randrange(len(words)), self.rng.choice(self.signals))
        text = " ".join(words)
        return text[0].upper() + text[1:] + "."

    def paragraph(self, words: int) -> str:
        if self.rng.random() < 0.06:
            return self.rng.choice((RUSSIAN, KAZAKH))
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < words:
            parts.append(self.sentence())
        return " ".join(parts)

    def paragraphs(self) -> list[str]:
        count = self.rng.randint(5, 15)
        return [self.paragraph(600 // count) for _ in range(count)]

    def title(self, index: int) -> str:
        words = self.rng.choices(WORDS, k=self.rng.randint(5, 10))
        if self.signals and self.rng.random() < 0.3:
            words.append(self.rng.choice(self.signals))
        title = " ".join(words)
        if self.rng.random() < 0.05:
            title = f"Казахстан: {title}"
        return f"{title[0].upper()}{title[1:]} ({index})"

    def text_article(self, index: int) -> str:
        title = self.title(index)
        lines = [title, ""]
        if self.rng.random() < 0.3:
            lines += ["Photo of the day", "Still image", ""]
        for paragraph in self.paragraphs():
            lines += [paragraph, ""]
            if self.rng.random() < 0.08:
                lines += [self.rng.choice(DEBRIS), ""]
        if self.rng.random() < 0.2:
            lines += ["Currently reading", title, ""]
        return "\n".join(lines)

    def markdown_article(self, index: int, date: datetime) -> str:
        topics = sorted(set(self.rng.choices(TOPICS, self.topic_weights,
                                             k=self.rng.randint(1, 5))))
        author = self.rng.choice(AUTHORS)
        head = [f"title: \"{self.title(index)}\"", f"date: {date.isoformat()}",
                "topics: [" + ", ".join(topics) + "]"]
        if author:
            head.append(f"author: {author}")
        body = self.paragraphs()
        if self.rng.random() < 0.3:
            body.insert(1, "## Background")
        if self.rng.random() < 0.2:
            body.append("- first point\n- second point with [a link](/about/)")
        return "---\n" + "\n".join(head) + "\n---\n" + "\n\n".join(body) + "\n"


def article_path(index: int, rng: random.Random, markdown: bool) -> str:
    suffix = ".md" if markdown else ".txt"
    name = f"{index:06d}_{rng.getrandbits(32):08x}{suffix}"
    roll = rng.random()
    if roll < 0.15:
        return f"archive/{2020 + index % 3}/{name}"
    if roll < 0.25:
        return f"desk/{('world', 'economy', 'culture')[index % 3]}/{name}"
    return name


def generate(root: Path, count: int, seed: int = 1) -> list[Path]:
    """Write ``count`` articles under ``root`` (which must be empty or absent)."""
    gen = Generator(seed)
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for index in range(count):
        markdown = gen.rng.random() < 0.3
        gen.pick_themes()
        moment = START + timedelta(minutes=37 * index + gen.rng.randint(0, 30))
        path = root / article_path(index, gen.rng, markdown)
        text = gen.markdown_article(index, moment) if markdown else gen.text_article(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        stamp = moment.timestamp()
        os.utime(path, (stamp, stamp))
        written.append(path)
    return written


def extra_article(seed: int) -> str:
    """One more news article (the benchmark's 'one file added')."""
    gen = Generator(seed)
    gen.pick_themes()
    return gen.text_article(999_999)
