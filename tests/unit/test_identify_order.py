"""A kept ledger book goes through the paths in order, build after build.

The identity rules depend on the order (of two new files with one title, the first
path gets the plain slug); the book keeps the last build's sorted paths and must
notice every path added or gone.
"""

from __future__ import annotations

from datetime import UTC, datetime

from feedserver.build.assemble import parse_source
from feedserver.build.signatures import split
from feedserver.config import Settings
from feedserver.core.records import SourceFile, Stub
from feedserver.identify.rules import Book

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def stubs(settings: Settings, files: dict[str, str]) -> dict[str, Stub]:
    out = {}
    for path, title in files.items():
        source = SourceFile(path, f"---\ntitle: {title}\n---\nText of {path}.\n".encode(),
                            NOW.timestamp())
        parsed, problems = parse_source(source, settings)
        assert parsed is not None, problems
        out[path] = split(parsed, settings)[0]
    return out


def test_paths_added_and_gone_are_taken_in_order(settings: Settings) -> None:
    book = Book([])
    files = {"m.md": "Middle", "b.md": "Before"}
    first = book.identify_all(stubs(settings, files), lambda path: NOW)
    assert list(first) == ["b.md", "m.md"]
    book.begin()
    again = book.identify_all(stubs(settings, files), lambda path: NOW)
    assert list(again) == ["b.md", "m.md"] and again == first
    # Two new files with one title: the first in path order gets the plain slug.
    files.update({"z.md": "Twins", "c.md": "Twins"})
    book.begin()
    grown = book.identify_all(stubs(settings, files), lambda path: NOW)
    assert list(grown) == ["b.md", "c.md", "m.md", "z.md"]
    assert (grown["c.md"].slug, grown["z.md"].slug) == ("twins", "twins-2")
    del files["b.md"]
    files["a.md"] = "After"
    book.begin()
    book.depart(set(files), NOW.isoformat())
    moved = book.identify_all(stubs(settings, files), lambda path: NOW)
    assert list(moved) == ["a.md", "c.md", "m.md", "z.md"]
