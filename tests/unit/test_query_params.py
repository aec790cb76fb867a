"""The query string and combined paths of issue 14, table-driven (pure functions)."""

from __future__ import annotations

import html
import itertools
import random
import unicodedata
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from feedserver.core.records import Article
from feedserver.query.params import (
    WORD,
    BadRequest,
    Combination,
    Filters,
    canonical,
    combination,
    fold,
    parse,
)
from feedserver.query.records import encode_record, read_record, search_text


@pytest.mark.parametrize("path,found", [
    ("topics/b,a/feed.atom", Combination(",", ("b", "a"), "feed.atom")),
    ("topics/a+b+c/feed.json", Combination("+", ("a", "b", "c"), "feed.json")),
    ("topics/a/feed.atom", None), ("topics/a,b+c/feed.rss", None),
    ("topics/a,,b/feed.rss", None), ("topics/A,b/feed.rss", None),
    ("topics/a,b/index.html", None), ("a,b/feed.rss", None),
    ("topics/a,b/x/feed.rss", None), ("feed.rss", None),
])
def test_combination(path: str, found: Combination | None) -> None:
    assert combination(path) == found


def test_canonical_sorts_and_dedupes_and_caps() -> None:
    assert canonical(Combination(",", ("b", "a", "b"), "feed.rss")).slugs == ("a", "b")
    with pytest.raises(BadRequest, match="at most 8"):
        canonical(Combination("+", tuple("abcdefghi"), "feed.rss"))


@pytest.mark.parametrize("pairs,query", [
    ([], ""),
    ([("utm", "x")], ""),
    ([("since", "2026-01-02T03:04:05+02:00"), ("limit", "3"), ("q", "Café  STEPPE"),
      ("lang", "PT_br")], "lang=pt-br&limit=3&q=cafe+steppe&since=2026-01-02T01%3A04%3A05Z"),
    ([("q", "naïve naive")], "q=naive"),
])
def test_canonical_query(pairs: list[tuple[str, str]], query: str) -> None:
    assert parse(pairs, 50).query() == query


def test_the_canonical_query_is_what_urlencode_writes() -> None:
    """The canonical query is written by hand for speed; it must be byte for byte what
    ``urlencode`` writes for the same values (seeded random filters, words from several
    scripts and symbols)."""
    rng = random.Random(14)
    words = ["café", "steppe", "Ünïcode", "日本", "naïve", "a&b", "x=y", "50%", "c++", "ß",
             "Қазақстан", "emoji😀", "tab\tword", "ﬁ"]
    for _ in range(500):
        pairs = []
        if rng.random() < 0.5:
            pairs.append(("lang", rng.choice(["en", "pt-br", "KK", "zh_hant", "de-1996"])))
        if rng.random() < 0.5:
            pairs.append(("limit", str(rng.randint(1, 50))))
        if rng.random() < 0.7:
            pairs.append(("q", " ".join(rng.sample(words, rng.randint(1, 4)))))
        if rng.random() < 0.5:
            moment = datetime(rng.randint(1000, 2999), rng.randint(1, 12), rng.randint(1, 28),
                              rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))
            pairs.append(("since", moment.strftime("%Y-%m-%dT%H:%M:%S") +
                          rng.choice(["Z", "+05:30", "-11:00"])))
        try:
            found = parse(pairs, 50)
        except BadRequest:
            continue
        since = found.since and found.since.strftime("%Y-%m-%dT%H:%M:%SZ")
        expected = urlencode([(k, str(v)) for k, v in (
            ("lang", found.lang), ("limit", found.limit), ("q", found.q_text or None),
            ("since", since)) if v is not None])
        assert found.query() == expected, pairs


@pytest.mark.parametrize("pairs,reason", [
    ([("limit", "0")], "limit"), ([("limit", "51")], "limit"), ([("limit", "²")], "limit"),
    ([("limit", "-1")], "limit"), ([("limit", "1"), ("limit", "2")], "2 times"),
    ([("since", "2026-01-01")], "since"), ([("since", "2026-02-30T00:00:00Z")], "since"),
    ([("lang", "english!")], "lang"), ([("q", "")], "q"), ([("q", "...")], "q"),
    ([("q", " ".join(f"w{n}" for n in range(11)))], "q"), ([("q", "x" * 201)], "q"),
])
def test_bad_values_say_why(pairs: list[tuple[str, str]], reason: str) -> None:
    with pytest.raises(BadRequest, match=reason) as caught:
        parse(pairs, 50)
    assert "\n" not in str(caught.value)


def test_since_is_utc() -> None:
    found = parse([("since", "2026-01-02T03:04:05Z")], 50)
    assert found == Filters(since=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


def test_fold() -> None:
    assert fold("  ÉNERGIE\tÅland  ") == "energie aland"


def test_a_record_gives_back_the_article() -> None:
    article = Article(id="urn:x", slug="s", path="seeds/s.md", title="Tëst <1>",
                      link="http://x/articles/s/", content_html="<p>Caf&eacute; <b>bold</b></p>",
                      summary="sum", published=datetime(2026, 1, 1, tzinfo=UTC),
                      updated=datetime(2026, 1, 2, tzinfo=UTC), topics=("a", "b"),
                      author=None, lang="fr", media=(("image", "http://x/i.png"),),
                      links=(("other.md", "http://x/articles/o/"),))
    back, search = read_record(encode_record(article))
    assert back.path == ""  # a renamed file keeps its record
    assert (back.id, back.title, back.content_html, back.media, back.links, back.topics) == (
        article.id, article.title, article.content_html, article.media, article.links,
        article.topics)
    assert back.published == article.published and back.updated == article.updated
    assert search == "test 1 cafe bold"  # each distinct word once (search_text)


def _fold_by_character(text: str) -> str:
    """``fold``'s definition, one character at a time (what it first was, and too slow:
    five million characters of a hostile article took 2.4 s)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


@pytest.mark.parametrize("text", [
    "", "plain ascii  text\n", "CAFÉ  Ünïcode", "Straße ﬁne ＦＵＬＬ", "Ǆemal ǅ ǆ",
    "русский Ёжик й", "Ελληνικά άέή ΐ", "ไทย ภาษา", "हिन्दी", "한국어 조선말", "中文 日本語",
    "e\u0301\u0302\u20dd", "\u0345\u0301 alone", "\U0001d400\U0001d7ce", "a\U0001e94a\U0001d167",
    "tab\tnbsp\u00a0ideo\u3000",
])
def test_fold_is_its_definition(text: str) -> None:
    assert fold(text) == _fold_by_character(text)


def test_fold_of_every_code_point_is_its_definition() -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for start in range(0, len(every), 4096):
        chunk = every[start:start + 4096]
        assert fold(chunk) == _fold_by_character(chunk), hex(ord(chunk[0]))


def _article(title: str, content_html: str) -> Article:
    return Article(id="urn:x", slug="s", path="", title=title, link="http://x/",
                   content_html=content_html, summary="",
                   published=datetime(2026, 1, 1, tzinfo=UTC),
                   updated=datetime(2026, 1, 1, tzinfo=UTC), topics=(), author=None,
                   lang=None, media=(), links=())


def test_each_word_once_answers_every_q_as_the_whole_text() -> None:
    """``search_text`` keeps each distinct run of word characters once: every word q may
    hold (a run of word characters) is in it exactly when it is in the whole folded text,
    the record's search text before (titles and texts over letters, digits, ``_``,
    accents, punctuation and spaces; every q word of up to three such characters, and
    every piece of the text's own runs)."""
    rng = random.Random(14)
    alphabet = "ab1_ -.,<>\u00e9E\u0301\t\u00df"
    letters = "ab1_e"
    short = ["".join(p) for n in (1, 2, 3) for p in itertools.product(letters, repeat=n)]
    for _ in range(1500):
        title = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(16)))
        whole = fold(f"{title} {text}")
        kept = search_text(_article(title, f"<p>{html.escape(text)}</p>"))
        pieces = {run[i:j] for run in WORD.findall(whole)
                  for i in range(len(run)) for j in range(i + 1, len(run) + 1)}
        for word in [*short, *pieces]:
            assert (word in whole) == (word in kept), (title, text, word)
        assert len(kept) <= len(whole)


def test_a_search_text_holds_each_word_once_in_first_order() -> None:
    assert search_text(_article("Gas, gas; GAS", "<p>the gas-pipe &amp; the Caf&eacute;</p>")) \
        == "gas the pipe cafe"


@pytest.mark.parametrize("query", [
    "limit=3&since=2020-01-01T00%3A00%3A00Z", "q=caf%C3%A9+bar&limit=2", "a=1&b=2&a=3",
    "limit=1&q=x&limit=2", "q=&lang=", "q=%ff%fe&limit=1", "x=1;y=2", "", "=&=1&q"])
def test_the_arguments_are_what_flask_gives(query: str) -> None:
    """The web view's own parse of a query string lists what ``request.args`` lists, in
    its order (a key given twice: its values together, where it first came)."""
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from feedserver.web.filtered import _arguments

    environ = EnvironBuilder(path="/feed.atom", query_string=query).get_environ()
    assert list(_arguments(environ)) == list(Request(environ).args.items(multi=True))
