"""The filtered answers' cache (web/filtered.py): bounded in bytes, compressed copies
included, the least recently used answer out first."""

from __future__ import annotations

from datetime import UTC, datetime

from feedserver.publish.manifest import etag_of
from feedserver.web.filtered import AnswerCache, Cached


def answer(size: int) -> Cached:
    """An answer as the app caches it: its plain body and ETag made, nothing compressed."""
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    made = Cached(body, "application/atom+xml", datetime(2026, 1, 1, tzinfo=UTC), 60,
                  "http://127.0.0.1/feed.atom?limit=1", size=len(body))
    made.bodies[""] = (etag_of(body), body)
    return made


def test_the_least_recently_used_answers_leave_first_and_the_bound_holds() -> None:
    cache = AnswerCache(10_000)
    for n in range(5):
        cache.put(("feed.atom", f"limit={n}"), answer(3_000))
    kept = [n for n in range(5) if cache.get(("feed.atom", f"limit={n}")) is not None]
    assert kept == [2, 3, 4]
    assert cache.get(("feed.atom", "limit=2")) is not None  # now the most recent
    cache.put(("feed.atom", "limit=9"), answer(3_000))
    assert cache.get(("feed.atom", "limit=3")) is None
    assert cache.held() == 9_000


def test_compressed_copies_count_against_the_bound() -> None:
    cache = AnswerCache(10_000)
    first, second = answer(4_000), answer(4_000)
    cache.put(("a",), first)
    cache.put(("b",), second)
    assert cache.get(("a",)) is first  # asked for again: now the most recently used
    for encoding in ("gzip", "br", ""):
        etag, body = cache.variant(("a",), first, encoding)
        assert etag.startswith('"') and body
    assert first.size > 4_000  # its gzip and br copies
    assert cache.held() == first.size + second.size
    cache.put(("c",), answer(2_000))  # over the bound: 'b' (least recent) leaves, 'a' stays
    assert cache.get(("b",)) is None and cache.get(("a",)) is first
    assert cache.held() == first.size + 2_000 <= 10_000


def test_a_copy_made_for_an_answer_already_gone_is_not_counted() -> None:
    cache = AnswerCache(10_000)
    gone = answer(4_000)
    cache.put(("a",), gone)
    cache.put(("a",), answer(2_000))  # replaced while 'gone' was being served
    cache.variant(("a",), gone, "gzip")
    assert cache.held() == 2_000


def test_a_replaced_answer_is_counted_once() -> None:
    cache = AnswerCache(10_000)
    cache.put(("a",), answer(4_000))
    cache.put(("a",), answer(5_000))
    assert cache.held() == 5_000


def test_an_answer_bigger_than_the_bound_is_still_kept_alone() -> None:
    cache = AnswerCache(1_000)
    cache.put(("a",), answer(500))
    cache.put(("b",), answer(5_000))  # served now, and kept until the next answer
    assert cache.get(("a",)) is None and cache.get(("b",)) is not None
    assert cache.held() == 5_000
