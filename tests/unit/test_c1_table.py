"""The gate's feedparser maps C1 controls to cp1252 exactly as feedparser's own table does,
through a table it can look characters up in without an exception per character."""

from __future__ import annotations

import sys

import feedparser.html
import feedparser.mixin
import pytest

from feedserver.render.formats import gate_parser, rss_atom

ALL = range(sys.maxunicode + 1)
CHUNK = 1 << 16


def _text(start: int) -> str:
    return "".join(map(chr, range(start, min(start + CHUNK, len(ALL)))))


@pytest.mark.parametrize("start", range(0, len(ALL), CHUNK * 4))
def test_the_table_maps_every_character_as_feedparser_does(start: int) -> None:
    table = gate_parser.c1_table()
    for first in range(start, min(start + CHUNK * 4, len(ALL)), CHUNK):
        text = _text(first)
        assert text.translate(table) == text.translate(feedparser.html._cp1252)


def test_the_gate_s_feedparser_looks_up_a_list_not_a_dict() -> None:
    """A dict raises and clears a KeyError for each character it lacks: the slow path of
    ``str.translate`` for any text that is not ASCII (benchmarks/README.md)."""
    parser = gate_parser.feedparser()
    assert parser.mixin._cp1252 is gate_parser.c1_table()
    assert isinstance(feedparser.mixin._cp1252, list)


def test_feedparser_still_reads_c1_controls_as_cp1252() -> None:
    """What a reader's feedparser shows is what the gate's shows: U+0093/U+0094 in a title
    and in content come back as curly quotes, Cyrillic and text past the BMP unchanged."""
    title = "\x93Астана\x94 \U0001F600 caf\u00e9"
    body = ("<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>t"
            "</title><link>http://127.0.0.1/</link><description>d</description><item>"
            f"<title>{title}</title><link>http://127.0.0.1/a</link><guid>a</guid>"
            f"<description>&lt;p&gt;{title}&lt;/p&gt;</description></item></channel></rss>")
    parsed = rss_atom._parse(body.encode("utf-8"), "application/rss+xml")
    entry = parsed.entries[0]
    shown = "\u201cАстана\u201d \U0001F600 caf\u00e9"
    assert entry.title == shown == rss_atom.as_feedparser_shows(title)
    assert entry.summary == f"<p>{shown}</p>"
