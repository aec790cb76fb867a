"""The labelled set's precision and recall, asserted loosely (the figures themselves are
printed by ``python -m benchmarks.topics_quality``)."""

from __future__ import annotations

from benchmarks.topics_quality import labelled, score


def test_the_labelled_set_is_big_and_mixed() -> None:
    articles = labelled()
    assert len(articles) >= 40
    assert {a["lang"] for a in articles} == {"en", "ru", "kk"}
    assert sum("Still image" in str(a["text"]) or "Advertisement" in str(a["text"])
               for a in articles) >= 3


def test_places_are_found_with_good_precision_and_recall() -> None:
    result = score()
    assert result.precision >= 0.85, result.misses
    assert result.recall >= 0.8, result.misses
    assert result.languages_right >= 0.95 * result.articles, result.misses
