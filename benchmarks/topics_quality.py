"""``python -m benchmarks.topics_quality``: precision and recall of automatic topics.

Runs the labelled set (``tests/data/topics_labelled.toml``: 44 articles written for
this, English, Russian and Kazakh, some with scraper debris) through the real
parser (debris removal included) and topic detection, and prints:

- places: micro precision and recall against the labels, with every miss;
- languages: how many articles were detected in their labelled language;
- cost: detection and language detection per article (median of repeats), and
  the one-off loading of the gazetteer and the language model.

The quality figures are asserted loosely by ``tests/unit/test_topics_quality.py``;
the timings are only printed (speed is never asserted by a test).
"""

from __future__ import annotations

import statistics
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from feedserver.config import Settings
from feedserver.core.records import Parsed, SourceFile
from feedserver.parse import article as article_parser
from feedserver.parse import language
from feedserver.topics import detect

LABELLED = Path(__file__).resolve().parent.parent / "tests" / "data" / "topics_labelled.toml"


@dataclass(frozen=True)
class Score:
    """How detection did on the labelled set."""

    true_positives: int
    false_positives: int
    false_negatives: int
    languages_right: int
    articles: int
    misses: tuple[str, ...]

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else 1.0


def labelled() -> list[dict[str, object]]:
    """The labelled articles: ``text`` (a .txt file's content), ``places``, ``lang``."""
    return tomllib.loads(LABELLED.read_text("utf-8"))["article"]


def parsed(number: int, text: str, settings: Settings) -> Parsed:
    """One labelled article through the real parser, as a scraped ``.txt`` file."""
    source = SourceFile(f"labelled-{number:02}.txt", text.strip().encode(), 0.0)
    return article_parser.parse(source, settings)


def score(settings: Settings | None = None) -> Score:
    """Places and languages of every labelled article against its labels."""
    settings = settings or Settings()
    tp = fp = fn = right = 0
    misses: list[str] = []
    articles = labelled()
    for number, item in enumerate(articles):
        article = parsed(number, str(item["text"]), settings)
        found = {slug for slug, _, kind in detect.detect(article.title, article.text)
                 if kind == detect.PLACE}
        wanted = set(item["places"])  # type: ignore[arg-type]
        tp += len(found & wanted)
        fp += len(found - wanted)
        fn += len(wanted - found)
        if found != wanted:
            misses.append(f"#{number:02} {article.title[:50]!r}: extra {sorted(found - wanted)}"
                          f", missed {sorted(wanted - found)}")
        if article.lang == item["lang"]:
            right += 1
        else:
            misses.append(f"#{number:02} language {article.lang!r}, labelled {item['lang']!r}")
    return Score(tp, fp, fn, right, len(articles), tuple(misses))


def _timed(work: list[Parsed], call: object, repeats: int = 5) -> float:
    """Median seconds per article of ``call(title, text)`` over the set."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for article in work:
            call(article.title, article.text)  # type: ignore[operator]
        runs.append((time.perf_counter() - start) / len(work))
    return statistics.median(runs)


def main() -> int:
    start = time.perf_counter()
    detect.warm()
    gazetteer_load = time.perf_counter() - start
    start = time.perf_counter()
    language.warm()
    model_load = time.perf_counter() - start
    result = score()
    settings = Settings()
    work = [parsed(n, str(item["text"]), settings) for n, item in enumerate(labelled())]
    per_topics = _timed(work, detect.detect)
    per_language = _timed(work, language.detect)
    print(f"labelled articles: {result.articles}")
    print(f"places: precision {result.precision:.3f}, recall {result.recall:.3f} "
          f"(tp {result.true_positives}, fp {result.false_positives}, "
          f"fn {result.false_negatives})")
    print(f"languages: {result.languages_right}/{result.articles} right")
    print(f"topic detection: {per_topics * 1000:.2f} ms per article "
          f"(gazetteer loaded once in {gazetteer_load:.2f} s)")
    print(f"language detection: {per_language * 1000:.2f} ms per article "
          f"(model loaded once in {model_load:.2f} s)")
    for miss in result.misses:
        print(f"  {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
