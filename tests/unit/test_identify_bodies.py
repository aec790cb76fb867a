"""A kept ledger book recognises a file renamed and retitled by its text (body print).

The long-lived processes (serve, watch) keep the book between builds; an editor that
saves a renamed, retitled copy and deletes the original makes no rename the watcher
sees, so the book must find the article by its text alone, and only when that is
unambiguous.
"""

from __future__ import annotations

from datetime import UTC, datetime

from feedserver.build.assemble import parse_source
from feedserver.build.signatures import split
from feedserver.config import Settings
from feedserver.core.records import SourceFile, Stub
from feedserver.identify.rules import Book
from feedserver.parse.article import MIN_BODY_PRINTED, body_print

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
TEXT = ("Flooding closed the river road for a third day while engineers inspected the "
        "bridge supports and the council opened two schools as shelters for residents.")


def stub(settings: Settings, path: str, title: str, text: str = TEXT) -> Stub:
    source = SourceFile(path, f"---\ntitle: {title}\n---\n{text}\n".encode(), NOW.timestamp())
    parsed, problems = parse_source(source, settings)
    assert parsed is not None, problems
    return split(parsed, settings)[0]


def build(book: Book, files: dict[str, Stub]) -> dict[str, str]:
    book.begin()
    book.depart(set(files), NOW.isoformat())
    return {path: found.id for path, found in book.identify_all(files, lambda p: NOW).items()}


def test_body_print_is_the_text_alone_and_only_for_texts_long_enough() -> None:
    assert body_print(TEXT) == body_print("  " + TEXT.replace(" ", "\n  ")) != ""
    assert body_print(TEXT) != body_print(TEXT + " Updated.")
    assert body_print("x" * (MIN_BODY_PRINTED - 1)) == ""


def test_kept_book_follows_a_rename_and_retitle(settings: Settings) -> None:
    book = Book([])
    first = build(book, {"a.md": stub(settings, "a.md", "River road closed")})
    second = build(book, {"b.md": stub(settings, "b.md", "Floods close river road")})
    assert second == {"b.md": first["a.md"]}
    slug = book.rows[first["a.md"]][3]
    assert slug == "river-road-closed"  # the URL stays with the id
    # Renamed, retitled and its text edited in one build: nothing is left to match.
    third = build(book, {"c.md": stub(settings, "c.md", "Road reopens", TEXT + " It reopened.")})
    assert third["c.md"] != first["a.md"]


def test_two_articles_with_one_text_leaving_at_once_are_not_guessed(settings: Settings) -> None:
    book = Book([])
    first = build(book, {"a.md": stub(settings, "a.md", "One"),
                         "b.md": stub(settings, "b.md", "Two")})
    later = build(book, {"c.md": stub(settings, "c.md", "Three")})
    assert later["c.md"] not in first.values()
