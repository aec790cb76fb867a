"""Reading articles: the seed's debris, front matter, encodings, sanitizing."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedserver.config import Settings
from feedserver.core.errors import ArticleError
from feedserver.core.records import SourceFile
from feedserver.parse.article import parse
from feedserver.parse.frontmatter import MAX_TOPICS
from tests.conftest import ROOT, SEED

DEBRIS = ["Still image", "Currently reading", "Kazakhstan and Russia<", "\xa0"]


def source(path: str, data: str | bytes) -> SourceFile:
    return SourceFile(path, data.encode() if isinstance(data, str) else data, 0.0)


def test_seed_title_is_first_line_and_debris_is_gone(settings: Settings) -> None:
    raw = (ROOT / "seeds" / SEED).read_bytes()
    parsed = parse(source(SEED, raw), settings)
    first_line = raw.decode().split("\n", 1)[0].strip()
    assert parsed.title == first_line
    assert parsed.content_html.startswith("<p>President of Kazakhstan Kassym-Jomart Tokayev")
    assert parsed.text.startswith("President of Kazakhstan Kassym-Jomart Tokayev")
    for junk in DEBRIS:
        assert junk not in parsed.content_html
    assert first_line not in parsed.content_html  # the title repeated mid-text is removed
    assert "<p></p>" not in parsed.content_html
    assert parsed.content_html.endswith("restore peace, he added.</p>")
    assert len(parsed.summary) <= 301 and parsed.summary.endswith("…")


def test_repeated_tags_count_once_in_their_first_order(settings: Settings) -> None:
    names = ["b", "a", "b", " a ", "c", "a"] + [f"t{i % 5000}" for i in range(10_000)]
    text = f"---\ntitle: Tags\ntags: [{', '.join(names)}]\n---\nBody.\n"
    warnings: list[str] = []
    parsed = parse(source("tags.md", text), settings, warnings)
    assert parsed.topics == ("b", "a", "c", *(f"t{i}" for i in range(5000)))[:MAX_TOPICS]
    assert any(f"first {MAX_TOPICS}" in w for w in warnings), warnings


def test_markdown_yaml_front_matter(settings: Settings) -> None:
    text = """---
title: Hello <world>
date: 2024-05-01T10:00:00+02:00
updated: 2024-05-02
author: Ann
tags: [Energy, "Kazakhstan"]
id: tag:example.org,2024:hello
slug: hello-there
lang: kk
summary: Short.
---
Body with [a link](/x/y) and ![img](pic.png).
"""
    warnings: list[str] = []
    parsed = parse(source("a/hello.md", text), settings, warnings)
    assert parsed.title == "Hello"  # <world> is a tag to a browser: removed (issue 12)
    assert parsed.date is not None and parsed.date.isoformat() == "2024-05-01T08:00:00+00:00"
    assert parsed.updated is not None and parsed.updated.isoformat() == "2024-05-02T00:00:00+00:00"
    assert parsed.topics == ("Energy", "Kazakhstan")
    assert (parsed.author, parsed.lang, parsed.summary) == ("Ann", "kk", "Short.")
    assert parsed.explicit_id == "tag:example.org,2024:hello"
    assert parsed.explicit_slug == "hello-there"
    assert 'href="http://127.0.0.1:8000/x/y"' in parsed.content_html
    # A picture that is not beside the article is its alt text, not a broken <img> (issue 20)
    assert "<img" not in parsed.content_html and "and img." in parsed.content_html
    assert warnings == ["image 'pic.png': no file a/pic.png in the seeds folder; shown as text"]


def test_markdown_toml_front_matter_and_draft(settings: Settings) -> None:
    text = '+++\ntitle = "T"\ndraft = true\ntopics = ["A", "B"]\n+++\n\nText.\n'
    parsed = parse(source("t.md", text), settings)
    assert (parsed.title, parsed.draft, parsed.topics) == ("T", True, ("A", "B"))


def test_markdown_title_from_heading(settings: Settings) -> None:
    parsed = parse(source("h.md", "# The heading\n\nParagraph one.\n"), settings)
    assert parsed.title == "The heading"
    assert "The heading" not in parsed.content_html
    assert parsed.content_html == "<p>Paragraph one.</p>"


@pytest.mark.parametrize("encoding", ["cp1251", "utf-16", "utf-8-sig", "latin-1"])
def test_encodings_are_detected(settings: Settings, encoding: str) -> None:
    title = "Ça coûte très cher à Genève" if encoding == "latin-1" else "Новости Казахстана"
    body = {"latin-1": "Le prix de l'électricité a augmenté cette année à Genève, dit-on."}.get(
        encoding, "Президент Казахстана встретился с президентом России в Москве сегодня.")
    parsed = parse(source("e.txt", f"{title}\n\n{body}\n".encode(encoding)), settings)
    assert parsed.title == title
    assert body in parsed.text


def test_hostile_html_is_sanitized_and_text_survives(settings: Settings) -> None:
    text = """---
title: "<script>alert(1)</script> a<b"
---
<script>alert(1)</script><img src=x onerror=alert(1)>
<a href="javascript:alert(1)">j</a> <a href="vbscript:x">v</a> < Verizon > and a<b
<iframe src="https://evil.example/"></iframe><p onclick="x()">p</p>
"""
    parsed = parse(source("x.md", text), settings)
    html = parsed.content_html
    for bad in ("<script", "onerror", "javascript:", "vbscript:", "<iframe", "onclick"):
        assert bad not in html
    assert parsed.title == "a<b"  # tags removed (issue 12); a lone '<' is text
    assert "&lt; Verizon &gt;" in html and "a&lt;b" in html


def test_xml_forbidden_characters_and_nfc(settings: Settings) -> None:
    raw = "Ti\x00tle\x07 cafe\u0301\n\nBody\ufffe with\x1b controls and e\u0301.\n"
    parsed = parse(source("c.txt", raw), settings)
    assert parsed.title == "Title café"
    assert "\ufffe" not in parsed.text and "\x1b" not in parsed.text
    assert "é" in parsed.text


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b"   \n\n\t\n", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8, "binary"),
    (b"---\ntitle: x\n", "never closed"),
    (b"---\ntitle: [unclosed\n---\nbody\n", "invalid YAML"),
    (b"---\n!!python/object/apply:os.system ['true']\n---\nbody\n", "invalid YAML"),
])
def test_bad_files_raise_clear_errors(settings: Settings, data: bytes, reason: str) -> None:
    suffix = ".md" if data.startswith(b"---") else ".txt"
    with pytest.raises(ArticleError, match=reason):
        parse(source("bad" + suffix, data), settings)


@pytest.mark.parametrize("front,warning", [
    ("date: [1, 2]", "'date' must be a date"),
    ("tags: {a: 5}", "'tags' must be a list"),  # "tags: 5" is the tag "5" (YAML as text)
    ("date: 2024-02-30", "'date' is not a valid date"),
    ("date: 9999-12-31T23:59-23:59", "'date' is out of range"),
    ("date: 0100-01-01", "out of range"),
    ("title: {a: 1}", "'title' must be text"),
])
def test_bad_fields_are_dropped_with_a_warning(settings: Settings, front: str,
                                               warning: str) -> None:
    warnings: list[str] = []
    parsed = parse(source("f.md", f"---\n{front}\n---\n# Heading\n\nbody\n"), settings,
                   warnings)
    assert parsed.title == "Heading" and parsed.text.strip() == "body"
    assert any(warning in w and "ignored" in w for w in warnings), warnings


def test_unsupported_suffix(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ArticleError, match="unsupported"):
        parse(source("x.html", "hi"), settings)
