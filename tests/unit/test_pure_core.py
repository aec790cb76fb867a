"""The pure stages take values and return values: no disk, database, fork or shared memo.

Every stage of a build between reading the seeds and publishing (parse, identify,
assign topics, assemble the site, sign channels and pages, decide which content is
needed, render and validate the feeds) is called here on in-memory values with the
file system, sqlite3 and fork made to raise.  What a long-lived process reuses
comes in read-only (``Known``) and goes out as values: the caller's is never changed.
"""

from __future__ import annotations

import builtins
import copy
import io
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from feedserver.build.articles import Known
from feedserver.build.assemble import Assembled, assemble_site, parse_source, with_content
from feedserver.build.page_signatures import content_wanted, page_signatures
from feedserver.build.render_gate import render_channels
from feedserver.build.signatures import split
from feedserver.config import Settings
from feedserver.core.records import SourceFile
from feedserver.identify.rules import Book
from feedserver.render.site import Site

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
VERSION = "templates-and-renderers"


def sources() -> list[SourceFile]:
    texts = [
        ("news/a.md", "---\ntitle: Alpha\ntags: [Rail, Buses]\n---\nThe *first* one.\n"),
        ("news/b.md", "---\ntitle: Beta\ntags: [Rail]\ndate: 2026-02-01\n---\nSecond.\n"),
        ("c.txt", "Gamma arrives\n\nA scraped article with a <b>tag</b> in it.\n"),
        ("later.md", "---\ntitle: Not yet\ndate: 2026-12-01\n---\nFuture.\n"),
    ]
    return [SourceFile(path, text.encode(), NOW.timestamp() - 3600 * n)
            for n, (path, text) in enumerate(texts)]


class Forbidden(AssertionError):
    """What the pure stages would meet if they reached for the outside world."""


@pytest.fixture
def sealed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No file, no database, no process: each raises while the test body runs."""
    def refuse(name: str) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            raise Forbidden(f"a pure stage called {name}{args[:1]}")
        return call

    with monkeypatch.context() as patch:
        for target, name in ((sqlite3, "connect"), (os, "stat"), (os, "lstat"), (os, "open"),
                             (os, "scandir"), (os, "listdir"), (os, "fork"),
                             (builtins, "open"), (io, "open"), (subprocess, "Popen")):
            patch.setattr(target, name, refuse(f"{target.__name__}.{name}"))
        yield


def stage_all(settings: Settings, known: Known) -> tuple[Assembled, Site, list[str]]:
    """Every pure stage of a build, in order, on in-memory values."""
    halves = {}
    for source in sources():
        parsed, problems = parse_source(source, settings)
        assert parsed is not None, problems
        halves[source.path] = split(parsed, settings)
    stubs = {path: pair[0] for path, pair in halves.items()}
    book = Book([])  # a ledger's rows, in memory: the identity rules never write SQL
    identities = book.identify_all(stubs, lambda path: NOW - timedelta(days=1))
    assert len(book.changes()[1]) == len(stubs)  # rows to write: a value the ledger takes
    made = assemble_site(stubs, identities, settings, NOW, known, render_code="code")
    signed = page_signatures(made.site, stubs, settings.fingerprint(), VERSION, known)
    site = Site(made.site.articles, made.site.topics, made.site.channels, made.site.context,
                made.site.next_due, {**made.site.signatures, **signed.signatures})
    wanted = content_wanted(site, pages=True)
    site = with_content(site, {a.id: halves[a.path][1] for a in wanted})
    output = render_channels(site, site.channels)
    assert not output.problems and not output.staged
    return made, site, sorted(f.path for f in output.files)


def warm_up(settings: Settings) -> None:
    """Lazy imports and compiled patterns load outside the seal (they are code, not input)."""
    stage_all(settings, Known())


def test_the_stages_run_without_disk_database_or_fork(sealed: None) -> None:
    made, site, files = stage_all(Settings(), Known())
    assert [c.slug for c in site.channels] == ["all", "buses", "rail", "lang-en"]
    assert {"feed.rss", "topics/rail/feed.json"} <= set(files)
    assert made.site.next_due is not None  # the future article waits, found without a clock
    assert "scraped article" in next(a for a in site.articles if a.path == "c.txt").content_html


def test_the_seal_holds(sealed: None) -> None:
    """The seal itself: reading a file or opening a database raises under it."""
    with pytest.raises(Forbidden):
        open(__file__, "rb")  # noqa: SIM115 - it must raise before anything is opened
    with pytest.raises(Forbidden):
        sqlite3.connect(":memory:")


@pytest.fixture(autouse=True)
def _loaded() -> None:
    warm_up(Settings())


def test_what_was_known_is_only_read() -> None:
    settings = Settings()
    first, _, files = stage_all(settings, Known())
    known = Known(dict(first.articles), first.channels, first.names)
    before = copy.copy(dict(known.articles)), dict(known.channels), dict(known.names)
    again, _, files_again = stage_all(settings, known)
    assert (dict(known.articles), dict(known.channels), dict(known.names)) == before
    assert files_again == files
    assert again.site.signatures == first.site.signatures
    # Fresh parses: new stub objects, equal to the old ones, reuse the articles made then.
    assert again.articles == {}
    assert all(a is first.articles[a.path][2] for a in again.site.articles)


def test_a_site_carries_no_executor() -> None:
    """Parallel rendering is the shell's: a Site is data only."""
    assert "executor" not in Site.__dataclass_fields__


@pytest.mark.parametrize("settings", [Settings(), replace(Settings(), max_channels=3),
                                      replace(Settings(), min_topic_articles=2)],
                         ids=["all topics", "past max_channels", "rare topics dropped"])
def test_a_second_build_of_the_same_stubs_makes_no_article(settings: Settings) -> None:
    """Articles trimmed of topics (too many channels, too rare) are the very objects made
    last time, so every channel listing them keeps its signature without hashing again
    (at 50,000 articles past ``max_channels`` every build re-hashed 4,600 channels)."""
    first, _, files = stage_all(settings, Known())
    known = Known(dict(first.articles), first.channels, first.names)
    again, _, files_again = stage_all(settings, known)
    assert files_again == files and again.site.signatures == first.site.signatures
    assert again.articles == {}
    assert all(again.channels[slug] is first.channels[slug] for slug in first.channels)
