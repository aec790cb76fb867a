"""One article record family: conversions and the parse cache follow the dataclass fields.

Every check here walks ``dataclasses.fields``, so a field added to the model is
covered without touching this file; one test adds a field itself (by subclassing)
and shows storage and conversions carry it with no other change.
"""

from __future__ import annotations

import shutil
import sqlite3
import typing
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from feedserver.build import codeversion
from feedserver.build.articles import make_article
from feedserver.build.run import run_build
from feedserver.build.signatures import split
from feedserver.config import Settings
from feedserver.core.fieldwise import Codec, converter, to_record
from feedserver.core.records import Article, Body, Head, Identity, Parsed, Stub
from feedserver.identify.ledger import CachedFile, Ledger, Records
from feedserver.publish import codedigest
from tests.conftest import NOW

MOMENT = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone(timedelta(hours=5)))


def sample(kind: Any, name: str) -> Any:
    """A value of ``kind`` unlike any default (so a field lost on the way shows)."""
    if kind is str:
        return f"{name} é \u2028 \"q\" \x00"
    if kind is bool:
        return True
    if kind is int:
        return 7
    if kind is datetime:
        return MOMENT
    args = typing.get_args(kind)
    if type(None) in args:  # X | None: the X
        return sample(next(a for a in args if a is not type(None)), name)
    if typing.get_origin(kind) is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return (sample(args[0], f"{name}1"), sample(args[0], f"{name}2"))
        return tuple(sample(a, f"{name}{i}") for i, a in enumerate(args))
    raise AssertionError(f"no sample for {kind!r}: extend sample()")


def full(cls: type, **given: Any) -> Any:
    """A ``cls`` with every field set to a sample value."""
    hints = typing.get_type_hints(cls)
    values = {f.name: sample(hints[f.name], f.name) for f in fields(cls) if f.init}
    return cls(**{**values, **given})


def empty(cls: type) -> Any:
    """A ``cls`` with every optional field None and the others their samples."""
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: None if type(None) in typing.get_args(hints[f.name])
                  else sample(hints[f.name], f.name) for f in fields(cls) if f.init})


def round_trip(tmp_path: Path, stub: Stub, body: Body, records: Records | None = None,
               ) -> tuple[CachedFile, Body]:
    with Ledger(tmp_path / "ledger.sqlite3", records=records) as ledger:
        ledger.store_files([(stub.path, CachedFile(1, 2, "sha", "shaping", stub), body)])
    with Ledger(tmp_path / "ledger.sqlite3", records=records) as ledger:
        return ledger.cached_files()[stub.path], ledger.bodies([stub.path])[stub.path]


@pytest.mark.parametrize("make", [full, empty])
def test_every_field_of_a_stub_and_a_body_survives_the_parse_cache(
        tmp_path: Path, make: Any) -> None:
    stub, body = make(Stub), make(Body)
    cached, loaded = round_trip(tmp_path, stub, body)
    assert (cached.size, cached.mtime_ns, cached.sha256, cached.settings) == \
        (1, 2, "sha", "shaping")
    for record, back in ((stub, cached.stub), (body, loaded)):
        assert type(back) is type(record)
        for f in fields(record):
            value, stored = getattr(record, f.name), getattr(back, f.name)
            assert stored == value and type(stored) is type(value), f.name
    if make is full:
        assert cached.stub.date is not None and cached.stub.date.utcoffset() == timedelta(hours=5)


def test_all_bodies_are_read_by_their_fields_too(tmp_path: Path) -> None:
    stub, body = full(Stub), full(Body)
    round_trip(tmp_path, stub, body)
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        assert ledger.bodies() == {stub.path: body}


def test_parsed_is_a_head_and_a_body_and_splits_into_stub_and_body(settings: Settings) -> None:
    parsed = full(Parsed, topics=(), draft=False)
    stub, body = split(parsed, settings)
    assert isinstance(parsed, Head) and isinstance(parsed, Body) and isinstance(stub, Head)
    for f in fields(Body):
        assert getattr(body, f.name) == getattr(parsed, f.name)
    shared = {f.name for f in fields(Stub)} & {f.name for f in fields(Parsed)}
    assert shared == {f.name for f in fields(Head)}
    for name in shared:
        assert getattr(stub, name) == getattr(parsed, name), name
    for cls in (Parsed, Stub, Body):  # slotted: 10,000 of them stay small
        assert not hasattr(full(cls), "__dict__")


def test_the_content_digest_covers_every_field_an_article_shows(settings: Settings) -> None:
    parsed = full(Parsed, topics=(), draft=False)
    shown = ({f.name for f in fields(Parsed)} & {f.name for f in fields(Article)}) - {"path"}
    assert {"title", "content_html", "summary", "author", "lang"} <= shown
    digest = split(parsed, settings)[0].digest
    for name in shown - {"topics", "updated"}:
        value = getattr(parsed, name)  # text, or a tuple of rows (media)
        other = to_record(Parsed, parsed,
                          **{name: (*value, ("x",)) if isinstance(value, tuple) else value + "x"})
        assert split(other, settings)[0].digest != digest, name
    moved = to_record(Parsed, parsed, path="elsewhere.md")
    assert split(moved, settings)[0].digest == digest  # a rename shows nothing new


def test_an_article_takes_every_field_it_shares_with_the_stub(settings: Settings) -> None:
    stub = full(Stub, date=None, updated=None)
    identity = Identity("urn:x:1", "the-slug", NOW, NOW)
    article = make_article(stub, identity, stub.slugs, settings, full(Body))
    assert (article.path, article.title, article.author, article.lang) == \
        (stub.path, stub.title, stub.author, stub.lang)
    assert (article.id, article.slug, article.topics) == ("urn:x:1", "the-slug", stub.slugs)
    assert article.published == article.updated == NOW


def test_articles_share_one_string_for_each_topic_language_and_author(
        settings: Settings) -> None:
    """Equal topic slugs, language codes and authors are one object across articles (a
    forked render worker that reads them copies a few pages, not one per article)."""
    def fresh(text: str) -> str:  # an equal string that is another object
        return "".join(list(text))

    made = []
    for n in range(2):
        slugs = (fresh("kazakhstan"), fresh("energy-policy"))
        stub = full(Stub, date=None, updated=None, slugs=slugs, lang=fresh("kk"),
                    author=fresh("Aigerim Nurlanovna"), path=f"{n}.md")
        made.append(make_article(stub, Identity(f"urn:x:{n}", f"s{n}", NOW, NOW), slugs,
                                 settings, full(Body)))
    one, two = made
    assert one.topics == two.topics == ("kazakhstan", "energy-policy")
    assert all(a is b for a, b in zip(one.topics, two.topics, strict=True))
    assert one.lang == "kk" and one.lang is two.lang
    assert one.author == "Aigerim Nurlanovna" and one.author is two.author


# -- a field added to the model -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ImagedParsed(Parsed):
    image: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImagedStub(Stub):
    image: str | None = None


@dataclass(frozen=True, slots=True)
class ImagedArticle(Article):
    image: str | None = None


def test_a_new_field_is_carried_by_every_conversion_and_the_cache(tmp_path: Path) -> None:
    parsed = full(ImagedParsed, image="cover.jpg")
    stub = to_record(ImagedStub, parsed, digest="d", slugs=("a",), names=(("a", "A"),))
    assert stub.image == "cover.jpg" and stub.title == parsed.title
    article = to_record(ImagedArticle, stub, id="i", slug="s", link="l", content_html="",
                        summary="", published=NOW, updated=NOW)
    assert article.image == "cover.jpg" and article.path == parsed.path
    body = to_record(Body, parsed)
    imaged = Records(stub=ImagedStub)
    cached, loaded = round_trip(tmp_path, stub, body, imaged)
    assert cached.stub == stub and cached.stub.image == "cover.jpg" and loaded == body


def test_a_row_stored_before_a_field_was_added_is_a_miss(tmp_path: Path) -> None:
    """Rows of the old layout are left out (the file is parsed again), never an error,
    and the next write deletes them."""
    db = tmp_path / "ledger.sqlite3"
    with Ledger(db) as ledger:  # today's records: no image
        ledger.store_files([("a.md", CachedFile(1, 2, "h", "s", full(Stub, path="a.md")),
                             full(Body))])
    imaged = Records(stub=ImagedStub)
    assert imaged.layout != Records().layout
    with Ledger(db, records=imaged) as ledger:
        assert ledger.cached_files() == {} and ledger.bodies(["a.md"]) == {}
        assert ledger.bodies() == {}
        new = full(ImagedStub, path="b.md")
        ledger.store_files([("b.md", CachedFile(1, 2, "h", "s", new), full(Body))])
        assert set(ledger.cached_files()) == {"b.md"}
    assert [row[0] for row in sqlite3.connect(db).execute("SELECT path FROM sources")] == \
        ["b.md"]


def test_a_damaged_row_is_a_miss(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    with Ledger(db) as ledger:
        ledger.store_files([(p, CachedFile(1, 2, "h", "s", full(Stub, path=p)), full(Body))
                            for p in ("a.md", "b.md", "c.md")])
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE sources SET stub = '[1, 2' WHERE path = 'a.md'")
        raw.execute("UPDATE sources SET stub = '[\"too\", \"short\"]' WHERE path = 'b.md'")
    with Ledger(db) as ledger:
        assert set(ledger.cached_files()) == {"c.md"}


def test_a_cache_of_the_earlier_positional_format_is_dropped(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(db) as raw:
        raw.executescript(
            "CREATE TABLE sources (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns "
            "INTEGER NOT NULL, sha256 TEXT NOT NULL, settings TEXT NOT NULL, stub TEXT NOT "
            "NULL, content_html TEXT NOT NULL, summary TEXT NOT NULL); PRAGMA user_version = 2;")
        raw.execute("INSERT INTO sources VALUES ('a.md', 1, 2, 'h', 's', "
                    "'[\"a.md\", \"T\", \"f\", \"d\", [], [], null, null, null, null, null, "
                    "null, false]', '<p>x</p>', 'x')")
    with Ledger(db) as ledger:
        assert ledger.cached_files() == {} and ledger.bodies() == {}


def test_a_build_over_rows_of_another_layout_parses_those_files_again(
        settings: Settings, tmp_path: Path) -> None:
    first = run_build(settings, now=NOW)
    assert first.parsed_files > 0 and not first.errors
    out = Path(settings.output_dir)
    published = {p: p.read_bytes() for p in out.rglob("*.rss")}
    with sqlite3.connect(settings.ledger_file) as raw:
        raw.execute("UPDATE sources SET layout = 'older/older'")
    again = run_build(settings, now=NOW)
    assert again.parsed_files == first.parsed_files and not again.errors
    assert {p: p.read_bytes() for p in out.rglob("*.rss")} == published
    assert run_build(settings, now=NOW).parsed_files == 0  # the rows were replaced


def test_codecs_refuse_a_field_type_they_cannot_store() -> None:
    @dataclass(frozen=True)
    class Odd:
        value: complex

    with pytest.raises(TypeError, match="no storage"):
        Codec(Odd)


# -- a model change reaches the cache key ---------------------------------------------------


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    copy = tmp_path / "code"
    shutil.copytree(codedigest.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codedigest, "PACKAGE", copy)
    codeversion.parse_version.cache_clear()
    yield copy
    codeversion.parse_version.cache_clear()


def test_adding_a_field_to_the_model_changes_the_parse_cache_key(code: Path) -> None:
    before = codeversion.parse_version()
    records = code / "core" / "records.py"
    text = records.read_text(encoding="utf-8")
    records.write_text(text.replace("    draft: bool = False\n",
                                    "    draft: bool = False\n    image: str | None = None\n", 1),
                       encoding="utf-8")
    assert records.read_text(encoding="utf-8") != text
    codeversion.parse_version.cache_clear()
    assert codeversion.parse_version() != before


def test_moments_keep_their_offset_and_microseconds() -> None:
    codec = Codec(Stub)
    stub = full(Stub, updated=datetime(2026, 1, 2, tzinfo=UTC))
    assert codec.load(codec.dump(stub)) == stub
    assert codec.load(b"not json") is None and codec.load(b"{}") is None


def test_a_converter_refuses_a_field_its_target_does_not_have() -> None:
    with pytest.raises(TypeError, match="no field image"):
        converter(Stub, Article, "id", "image")
