"""Pure, standard library only: what a combined path and a feed URL's query string ask for.

The web app imports this eagerly (it costs nothing); the renderers behind a computed
answer (:mod:`feedserver.query.answer`) only when a request needs them.  Every bad
value is a :class:`BadRequest` with a one-line reason a person can act on.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, cached_property
from urllib.parse import quote_plus

KNOWN = ("lang", "limit", "q", "since")  # the canonical order of a filtered URL's parameters
MAX_TOPICS = 8
MAX_WORDS = 10
MAX_Q = 200
ANY, ALL = ",", "+"  # topics/a,b: in either; topics/a+b: in both
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
_LANG = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
WORD = re.compile(r"\w+")  # what one word of q is, in folded text


def fold(text: str) -> str:
    """Text as ``q`` matches it: case and accents ignored, whitespace collapsed.

    The combining marks go in regular-expression passes (:func:`_marks`): a Python
    loop over every character took 2.4 s for five million of them, and a build folds
    every article's whole text.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    if not decomposed.isascii():
        basic, astral = _marks()
        decomposed = basic.sub("", decomposed)
        if max(decomposed, default="") > "\uffff":
            decomposed = astral.sub("", decomposed)
    return " ".join(decomposed.split())


@cache
def _marks() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Every character with a nonzero combining class: those of the Basic Multilingual
    Plane, then those above it.

    Two classes because ``re`` matches a class of BMP characters by a bitmap and any
    other by a list of ranges, four times slower.  Unicode puts every mark between
    U+0300 and the end of plane 1 (a test folds every code point both ways, so a Python
    whose Unicode adds one elsewhere fails it); the scan costs about 20 ms, once per
    process, and only when non-ASCII text comes.
    """
    marks = [c for c in range(0x300, 0x20000) if unicodedata.combining(chr(c))]
    return (_char_class(c for c in marks if c <= 0xFFFF),
            _char_class(c for c in marks if c > 0xFFFF))


def _char_class(codes: Iterable[int]) -> re.Pattern[str]:
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return re.compile("[" + "".join(
        re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges) + "]")


class BadRequest(ValueError):
    """A value the client sent that cannot be answered (the message says why)."""


@dataclass(frozen=True)
class Filters:
    """The known parameters of one request, checked; None/() where not given."""

    lang: str | None = None
    limit: int | None = None
    q: tuple[str, ...] = ()  # the words, folded (:func:`fold`)
    q_text: str = ""  # as it goes into the canonical URL: those words joined by one space
    since: datetime | None = None

    @property
    def empty(self) -> bool:
        """No known parameter was given (each field as it is left when it was not)."""
        return self.lang is None and self.limit is None and not self.q \
            and not self.q_text and self.since is None

    def query(self) -> str:
        """The canonical query string (fixed order, canonical values; '' when empty)."""
        return self._canonical

    @cached_property
    def _canonical(self) -> str:
        """Written as HTML forms, JavaScript's URLSearchParams and Python's ``urlencode``
        write a query (a space as '+', ':' as %3A): what programs send is canonical.

        Each value is written as ``urlencode`` would write it, but only ``q`` can hold
        a character to escape (``lang`` is letters, digits and '-', ``limit`` digits,
        ``since`` a fixed pattern): ``urlencode`` and ``strftime`` over all four took
        31 µs, asked for at every filtered request (tests/unit/test_query_params.py
        compares the two)."""
        parts = []
        if self.lang is not None:
            parts.append(f"lang={self.lang}")
        if self.limit is not None:
            parts.append(f"limit={self.limit}")
        if self.q_text:
            parts.append(f"q={quote_plus(self.q_text)}")
        if (at := self.since) is not None:
            parts.append(f"since={at.year:04}-{at.month:02}-{at.day:02}T{at.hour:02}%3A"
                         f"{at.minute:02}%3A{at.second:02}Z")
        return "&".join(parts)


@dataclass(frozen=True)
class Combination:
    """A combined channel's path: its operator, its slugs, its feed file name."""

    op: str
    slugs: tuple[str, ...]
    filename: str

    @property
    def folder(self) -> str:
        return f"topics/{self.op.join(self.slugs)}"

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.filename}"


def combination(path: str) -> Combination | None:
    """``topics/b,a/feed.atom`` -> its parts as written, or None when the path is not a
    combined channel's feed (then it is an ordinary path: a file or a 404)."""
    parts = path.split("/")
    if len(parts) != 3 or parts[0] != "topics" or not parts[2].startswith("feed."):
        return None
    spec = parts[1]
    ops = [op for op in (ANY, ALL) if op in spec]
    if len(ops) != 1:
        return None
    slugs = tuple(spec.split(ops[0]))
    if not all(_SLUG.fullmatch(s) for s in slugs):
        return None
    return Combination(ops[0], slugs, parts[2])


def canonical(combo: Combination) -> Combination:
    """The one URL of a set of topics: slugs sorted, each once; raises BadRequest past
    :data:`MAX_TOPICS`."""
    slugs = tuple(sorted(set(combo.slugs)))
    if len(slugs) > MAX_TOPICS:
        raise BadRequest(f"at most {MAX_TOPICS} topics may be combined, "
                         f"{len(slugs)} were given")
    return Combination(combo.op, slugs, combo.filename)


def _one(values: list[str], name: str) -> str:
    if len(values) > 1:
        raise BadRequest(f"{name} was given {len(values)} times; give it once")
    return values[0]


def _limit(text: str, max_items: int) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= max_items:
        raise BadRequest(f"limit must be a whole number from 1 to {max_items}")
    return int(text)


def _since(text: str) -> datetime:
    if not _RFC3339.fullmatch(text.strip()):
        raise BadRequest("since must be an RFC 3339 date and time, like 2026-01-31T09:00:00Z")
    try:
        moment = datetime.fromisoformat(text.strip().upper().replace(" ", "T")
                                        .replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest("since is not a real date and time (RFC 3339)") from None
    return moment.astimezone(UTC).replace(microsecond=0) if moment.microsecond == 0 \
        else moment.astimezone(UTC)


def _lang(text: str) -> str:
    code = text.strip().lower().replace("_", "-")
    if not _LANG.fullmatch(code):
        raise BadRequest("lang must be a language code, like en or pt-br")
    return code


def _words(text: str) -> tuple[tuple[str, ...], str]:
    if len(text) > MAX_Q:
        raise BadRequest(f"q may be at most {MAX_Q} characters long")
    words = tuple(dict.fromkeys(WORD.findall(fold(text))))
    if not words:
        raise BadRequest("q must hold at least one word")
    if len(words) > MAX_WORDS:
        raise BadRequest(f"q may hold at most {MAX_WORDS} words")
    return words, " ".join(words)


def parse(pairs: Iterable[tuple[str, str]], max_items: int) -> Filters:
    """The known parameters among ``pairs`` (unknown ones are ignored), checked."""
    given: dict[str, list[str]] = {}
    for key, value in pairs:
        if key in KNOWN:
            given.setdefault(key, []).append(value)
    values = {key: _one(found, key) for key, found in given.items()}
    limit = _limit(values["limit"], max_items) if "limit" in values else None
    since = _since(values["since"]) if "since" in values else None
    lang = _lang(values["lang"]) if "lang" in values else None
    words, text = _words(values["q"]) if "q" in values else ((), "")
    return Filters(lang, limit, words, text, since)
