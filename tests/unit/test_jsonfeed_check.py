"""The JSON Feed gate reads a document as a strict JSON parser does (RFC 8259).

Readers parse JSON Feed with strict parsers (JavaScript's ``JSON.parse`` in the embed
widget and in browsers; orjson, serde and the like elsewhere): a document such a parser
refuses must not pass the gate, even where Python's lenient ``json`` reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feedserver.core.records import Article, Channel
from feedserver.render import feeds
from feedserver.render.formats import FORMATS

WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CTX = feeds.Context("S", "https://x.example/", "en", "Ana", 30, {"t": "T"})
JSON = FORMATS["json"]


def article(n: int) -> Article:
    return Article(f"urn:x:{n}", f"s{n}", f"s{n}.txt", f"Story {n} \u00e9\u2603",
                   f"https://x.example/articles/s{n}/", f"<p>Body {n}</p>", f"Body {n}",
                   WHEN, WHEN, topics=("t",))


CHANNEL = Channel("all", "All", "Everything", "", "https://x.example/",
                  (article(1), article(2)), WHEN)


def drawn() -> bytes:
    return feeds.render(CHANNEL, JSON, CTX)


def test_a_drawn_document_passes_with_its_items_read_back() -> None:
    read = JSON.check(CHANNEL, drawn())
    assert read.findings == []
    assert read.items is not None
    assert [(s.id, s.title, s.link) for s in read.items] == \
        [(a.id, a.title, a.link) for a in CHANNEL.articles]


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-Infinity"])
def test_what_a_strict_parser_refuses_is_refused(value: bytes) -> None:
    body = drawn().replace(b'"version":', b'"x":' + value + b',"version":', 1)
    read = JSON.check(CHANNEL, body)
    assert read.items is None
    assert read.findings[0].reason.startswith("not valid JSON")


@pytest.mark.parametrize("corrupt", [
    lambda body: body[:-3],  # cut short
    lambda body: body.replace(b"Story 1", b"Story \xff1"),  # not UTF-8
    lambda body: b"\xef\xbb\xbf" + body,  # a byte order mark
    lambda body: body.replace(b"]}", b",]}"),  # a trailing comma
])
def test_broken_documents_are_refused(corrupt: object) -> None:
    read = JSON.check(CHANNEL, corrupt(drawn()))  # type: ignore[operator]
    assert read.items is None and read.findings
