"""The parser's fast paths give what the plain definitions give, on hostile input.

Each fast path (one Aho-Corasick pass for topic phrases, one byte scan before
decoding, one character scan before cleaning, a .txt article's visible text
taken from its paragraphs rather than parsed back from its HTML, whitespace
folding skipped where it changes nothing, markdown-it's normalize rule done
with substring tests) is compared with
the straightforward code it replaced, written out here as the definition, over
seeded random texts full of the characters that break shortcuts: case
oddities re treats specially (ı, ſ, İ, K, final sigma), combining marks,
non-BMP letters, overlapping and repeated phrases.
"""

from __future__ import annotations

import random
import re
import unicodedata

import pytest
from markdown_it import MarkdownIt

from feedserver.config import Settings, TopicRule
from feedserver.core.errors import ArticleError
from feedserver.core.records import SourceFile
from feedserver.parse import text
from feedserver.parse.article import (
    _markdown,
    _normalized,
    _paragraphs,
    _same_folded,
    parse,
    plain_text,
)
from feedserver.topics.rules import matched_rules

TRICKY = ["İ", "ı", "ſ", "\u212a", "K", "k", "ß", "ẞ", "Σ", "σ", "ς", "\u0345", "ι", "µ", "μ",
          "e\u0301", "\u00e9", "ﬀ", "ﬆ", "st", "ǅ", "Ǆ", "ǆ", "_", "-", " ", "\n", "\xa0", "\u200b",
          "𝐎", "😀", "'", "ё", "Ё", "қ", "Қ", "2", "٣", ".", "i", "s", "I", "S"]
WORDS = ["oil", "Oil", "OIL", "toil", "oils", "gas", "gaz", "kazakh", "kazakhstan", "KAZAKH",
         "rail", "railway", "port", "report", "import", "imports", "nuclear", "power",
         "İstanbul", "istanbul", "ıstanbul", "ſun", "sun", "ΟΔΟΣ", "οδος", "Қазақстан",
         "қазақстан", "kelvin", "\u212aelvin", "straße", "STRASSE", "𝐎il", "re-port", "open",
         "source", "un", "charter"]
PHRASES = ["oil", "gas", "Kazakh", "Kazakhstan", "rail", "railway", "port", "import", "imports",
           "nuclear power", "open source", "UN Charter", "Istanbul", "İstanbul", "sun", "ſun",
           "οδος", "ΟΔΟΣ", "Қазақстан", "kelvin", "straße", "re-port", "-port", "port-",
           "𝐎il", "a", "ﬆ", "st", "ǆ", "oil", "x y"]


def _reference(title: str, text: str, rules: tuple[TopicRule, ...]) -> list[str]:
    """The definition: a whole-word case-insensitive regex per phrase, searched in full."""
    whole = f"{title}\n{text}"
    return [rule.slug for rule in rules
            if any(re.search(rf"\b{re.escape(p)}\b", whole, re.IGNORECASE) for p in rule.phrases)
            or any(re.search(p, whole, re.IGNORECASE) for p in rule.patterns)]


def _rules(rng: random.Random, count: int) -> tuple[TopicRule, ...]:
    return tuple(TopicRule(slug=f"t{i}", name=f"T{i}",
                           phrases=tuple(rng.sample(PHRASES, rng.randint(1, 4))),
                           patterns=(r"\bgr[ae]y\b",) if i == 0 else ())
                 for i in range(count))


def _text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 40)):
        pick = rng.random()
        if pick < 0.5:
            parts.append(rng.choice(WORDS))
        elif pick < 0.8:
            parts.append(rng.choice(TRICKY))
        else:
            parts.append(rng.choice(WORDS) + rng.choice(TRICKY) + rng.choice(WORDS))
        parts.append(rng.choice([" ", "", "\n", ", ", rng.choice(TRICKY)]))
    return "".join(parts)


@pytest.mark.parametrize("seed", range(4))
def test_topic_rules_match_as_the_plain_regexes_do(seed: int) -> None:
    rng = random.Random(seed)
    rules = _rules(rng, 12)
    hits = 0
    for _ in range(1500):
        title, text = _text(rng), _text(rng)
        want = _reference(title, text, rules)
        assert matched_rules(title, text, rules) == want, (title, text)
        hits += len(want)
    assert hits > 1000  # the texts do hit phrases, boundaries and misses alike


def test_topic_phrases_overlapping_and_repeated() -> None:
    rules = (TopicRule("a", "A", phrases=("rail", "railway")),
             TopicRule("b", "B", phrases=("way",)),
             TopicRule("c", "C", phrases=("Rail",)),
             TopicRule("d", "D", phrases=("ilw",)))
    assert matched_rules("", "the railway", rules) == ["a"]
    assert matched_rules("RAIL", "way", rules) == ["a", "b", "c"]
    assert matched_rules("railways", "", rules) == []


def test_topic_text_with_lone_surrogates_is_still_matched() -> None:
    rules = (TopicRule("oil", "Oil", phrases=("oil",)),)
    assert matched_rules("\ud800 oil", "", rules) == ["oil"]
    assert matched_rules("\ud800 toil", "", rules) == []


def _clean_reference(value: str) -> str:
    """clean() as four passes: newlines, ANSI escapes, forbidden characters, C1 controls;
    then NFC."""
    value = text._NEWLINES.sub("\n", value)
    value = text._ANSI.sub("", value)
    value = text._FORBIDDEN.sub("", value)
    return unicodedata.normalize("NFC", value.translate(text._C1_TABLE))


def _code_points() -> list[str]:
    """Every BMP character (surrogates too) and every 61st astral one, plus U+1FFFE/F."""
    return [chr(c) for c in [*range(0x10000), *range(0x10000, 0x110000, 61), 0x1FFFE, 0x1FFFF]]


def test_clean_fast_path_matches_the_passes_for_every_character() -> None:
    for char in _code_points():
        for sample in (f"a{char}b", f"{char}e\u0301{char}"):
            assert text.clean(sample) == _clean_reference(sample), hex(ord(char))


def _decoded(data: bytes) -> str:
    try:
        return text.clean(text.decode(data))
    except ArticleError as exc:
        return f"error: {exc}"


def _decode_cleaned(data: bytes) -> str:
    try:
        return text.decode_clean(data)
    except ArticleError as exc:
        return f"error: {exc}"


def test_decode_clean_matches_decode_then_clean_for_every_character() -> None:
    for char in _code_points():
        data = f"Title\n{char} body e\u0301 {char}".encode("utf-8", "surrogatepass")
        assert _decode_cleaned(data) == _decoded(data), hex(ord(char))


def test_decode_clean_matches_on_marked_and_broken_bytes() -> None:
    body = "Заголовок\nTitle — “quoted” \u2028 line\r\nend \x85 é"
    samples = [body.encode(enc) for enc in ("utf-8-sig", "utf-16", "utf-32", "utf-16-be")]
    samples += [body.encode("cp1251", "replace"), b"\xff\xfeT\x00", b"\xfe\xff\x00T", b"",
                b"plain\x00text", b"\x1b[0m", b"A\xc3", b"\xed\xa0\x80 lone surrogate"]
    rng = random.Random(7)
    for _ in range(120):
        raw = bytearray(body.encode())
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        samples.append(bytes(raw))
    for data in samples:
        assert _decode_cleaned(data) == _decoded(data), data


def test_text_article_plain_text_is_what_parsing_its_html_gives(settings: Settings) -> None:
    chars = [chr(c) for c in [*range(0, 0x10000, 3), *range(0x10000, 0x110000, 997)]]
    for char in chars:
        raw = f"Title {char}\n\na{char}b & <i>x</i> &amp; &lt; {char}\n{char}  x\n\n{char}\n"
        data = raw.encode("utf-8", "surrogatepass")
        try:
            parsed = parse(SourceFile(f"a{ord(char)}.txt", data, 0.0), settings)
        except ArticleError:
            continue
        seen = plain_text(parsed.content_html)
        assert parsed.text == seen, hex(ord(char))
        assert parsed.summary == text.summarize(seen, settings.summary_length), hex(ord(char))


def test_paragraphs_fold_whitespace_as_split_and_join_do() -> None:
    spaces = [chr(c) for c in range(0x3100) if chr(c).isspace()]
    pieces = ["word", "слово", "\u200b", "\xad", "x", *spaces, "  ", " "]
    rng = random.Random(3)
    for _ in range(3000):
        lines = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
                 for _ in range(rng.randint(0, 6))]
        for given in (lines, [line.strip() for line in lines]):
            runs, current = [], []
            for line in [*given, ""]:
                if line:
                    current.append(line)
                elif current:
                    runs.append(" ".join(" ".join(current).split()))
                    current = []
            assert _paragraphs(given) == runs, given


def test_repeated_title_check_is_casefold_equality() -> None:
    for char in _code_points():
        line = f"a{char}"
        folded = line.casefold()
        for title in (folded, folded[:-1], folded + "x", "a", line):
            assert _same_folded(line, title) == (line.casefold() == title), hex(ord(char))


def test_markdown_without_its_normalize_rule_renders_the_same() -> None:
    full = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    pieces = ["\r", "\r\n", "\n", "\r\r\n", "\x00", "\n\n", "# h", "> q", "- i", "1. i",
              "    code", "```", "| a | b |", "|---|---|", "~~s~~", "*e*", "[l](/x)", "<b>", " ",
              "x"]
    rng = random.Random(5)
    for _ in range(2000):
        source = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        assert _markdown().render(_normalized(source)) == full.render(source), source
