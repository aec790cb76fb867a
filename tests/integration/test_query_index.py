"""The query index lists every article with its dates as RFC 3339 UTC strings and its
topics as lists: the bytes ``isoformat`` made before orjson wrote the datetimes itself."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from feedserver.build import run
from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.core import layout
from feedserver.query import records
from feedserver.render.site import Site
from tests.conftest import write


def test_the_index_writes_dates_and_topics_as_isoformat_and_lists(
        site_dir: Path, settings: Settings, build: Callable[..., BuildReport],
        monkeypatch: pytest.MonkeyPatch) -> None:
    sites: list[Site] = []

    def index_file(site: Site, *args: Any) -> Any:
        sites.append(site)
        return records.index_file(site, *args)

    monkeypatch.setattr(run, "index_file", index_file)
    seeds = site_dir / "seeds"
    write(seeds / "offset.md", "---\ntitle: Offset\ndate: 2026-03-04T05:06:07.890+05:00\n"
          "updated: 2026-03-05T23:30:00-03:00\ntags: [Rail, Buses]\n---\nBody.\n")
    write(seeds / "plain.md", "---\ntitle: Plain\ndate: 2026-01-02\n---\nBody.\n")
    report = build()
    assert not report.errors
    index: dict[str, Any] = orjson.loads(
        (Path(settings.output_dir) / layout.QUERY_INDEX).read_bytes())
    rows = {row[0]: row for row in index["articles"]}
    assert len(rows) == report.articles
    offset = next(row for slug, row in rows.items() if slug.startswith("offset"))
    assert offset[1:4] == ["2026-03-04T00:06:07+00:00", "2026-03-06T02:30:00+00:00",
                           ["rail", "buses"]]  # in the order the file names them
    plain = next(row for slug, row in rows.items() if slug.startswith("plain"))
    assert plain[1] == plain[2] == "2026-01-02T00:00:00+00:00"
    for row in rows.values():  # every date: UTC, whole seconds, as isoformat writes it
        assert len(row[1]) == len(row[2]) == 25 and row[1].endswith("+00:00")
        assert isinstance(row[3], list) and row[4] == "en"
    # The very bytes of the rows as they were written before (isoformat, list).
    before = orjson.dumps([[a.slug, a.published.isoformat(), a.updated.isoformat(),
                            list(a.topics), "en"] for a in sites[-1].articles])
    assert before[1:-1] in (Path(settings.output_dir) / layout.QUERY_INDEX).read_bytes()


def plain_index(site: Site, default_language: str) -> bytes:
    """The index as one ``orjson.dumps`` of the whole dictionary (no row kept)."""
    codes = layout.language_codes((a.lang for a in site.articles), default_language)
    return orjson.dumps({
        "version": records.VERSION, "context": records._context(site.context),
        "channels": {c.path: records._head(c) for c in site.channels},
        "kinds": {slug: topic.kind for slug, topic in site.topics.items()},
        "articles": [[a.slug, a.published, a.updated, a.topics, codes[a.lang]]
                     for a in site.articles],
        "max_items": 50, "refresh": 300, "ceiling": 86400}) + b"\n"


def built_site_with_new_rows(build: Callable[..., BuildReport],
                             monkeypatch: pytest.MonkeyPatch) -> tuple[Site, records._Rows]:
    """The site a build indexed, and an empty row cache in the place of the module's."""
    sites: list[Site] = []
    monkeypatch.setattr(run, "index_file", lambda site, *args: sites.append(site)
                        or records.index_file(site, *args))
    build()
    kept = records._Rows()
    monkeypatch.setattr(records, "_ROWS", kept)
    return sites[-1], kept


def test_kept_rows_give_the_bytes_of_one_encoding(
        settings: Settings, build: Callable[..., BuildReport],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows kept by article object: the same bytes when every object is the last one,
    when one article is a new object, when the article list changes, and under another
    default language (the codes a row holds)."""
    site, kept = built_site_with_new_rows(build, monkeypatch)
    edited = replace(site.articles[3], title="Edited", updated=site.articles[3].updated
                     + timedelta(hours=1), topics=("energy",), lang="de")
    shorter = replace(site, articles=site.articles[:-2])
    # A language tag of None takes the default's code: the same object, another row.
    untagged = replace(site, articles=(replace(site.articles[0], lang=None),
                                       *site.articles[1:]))
    for case, language in ((site, "en"), (site, "en"),
                           (replace(site, articles=(*site.articles[:3], edited,
                                                    *site.articles[4:])), "en"),
                           (shorter, "en"), (untagged, "en"), (untagged, "fr"),
                           (site, "fr")):
        made = records.index_file(case, 50, 300, 86400, language)
        assert made.body == plain_index(case, language)
    assert len(kept.rows) == len(site.articles)  # only the last index's rows are held


def test_kept_rows_hold_their_own_size(
        build: Callable[..., BuildReport], monkeypatch: pytest.MonkeyPatch) -> None:
    """A kept row is bytes of its own length: each ``orjson.dumps`` result holds a
    buffer of at least 4 KiB, whatever it wrote (about 4 KiB a row: 40 MiB at 10,000
    articles, kept by a lasting build: benchmarks/README.md, "A kept row, 4 KiB")."""
    site, kept = built_site_with_new_rows(build, monkeypatch)
    tracemalloc.start()
    try:
        records.index_file(site, 50, 300, 86400, "en")
        holding = tracemalloc.get_traced_memory()[0]
        written = sum(len(row) for _, row in kept.rows.values())
        kept.rows.clear()
        held = holding - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(site.articles) >= 3
    # Each row: its bytes, a bytes object's header (33) and the (article, row) tuple.
    assert 0 < held < written + 200 * len(site.articles)
