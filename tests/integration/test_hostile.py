"""Hostile files in seeds/: every case has its promised outcome, and nothing leaks.

The corpus and each case's outcome live in :mod:`tests.hostile_corpus`.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from feedserver.build.run import BuildReport, run_build
from feedserver.config import load_settings
from tests.conftest import NOW, ROOT, parse_feed
from tests.hostile_corpus import (
    CASES,
    CLEANED,
    IGNORED,
    PUBLISHED,
    SKIPPED,
    write_bad_name,
    write_corpus,
)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildReport, Path, str]:
    """One build over the bundled seeds plus the whole hostile corpus."""
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(ROOT / "seeds", root / "seeds")
    write_corpus(root / "seeds")
    bad_name = write_bad_name(root / "seeds")
    settings = load_settings(ROOT / "config.toml", env={
        "FEEDSERVER_SEEDS_DIR": str(root / "seeds"), "FEEDSERVER_OUTPUT_DIR": str(root / "out"),
        "FEEDSERVER_STATE_DIR": str(root / "state"), "FEEDSERVER_MAX_ITEMS": "500"})
    report = run_build(settings, now=NOW)
    return report, root / "out", bad_name


def _titles(out: Path) -> list[str]:
    doc = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    return [item["title"] for item in doc["items"]]


def _all_feed_text(out: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in out.rglob("feed.*")
                     if p.suffix in {".rss", ".atom", ".json"})


def test_build_survives_and_every_channel_validates(hostile: tuple[BuildReport, Path, str]
                                                    ) -> None:
    report, out, _ = hostile
    assert report.published
    assert not [p for p in report.problems if p.where.startswith("channel")]
    for feed in out.rglob("feed.rss"):
        assert not parse_feed(feed).bozo
    for feed in out.rglob("feed.atom"):
        assert not parse_feed(feed).bozo


@pytest.mark.parametrize("case", [c for c in CASES if c.outcome in (PUBLISHED, CLEANED)],
                         ids=lambda c: c.name)
def test_good_articles_are_published(hostile: tuple[BuildReport, Path, str], case) -> None:
    report, out, _ = hostile
    assert case.title in _titles(out)
    if case.outcome == PUBLISHED:
        assert not [p for p in report.errors if p.where == case.path]


@pytest.mark.parametrize("case", [c for c in CASES if c.outcome == SKIPPED], ids=lambda c: c.name)
def test_skipped_files_are_named_with_the_reason(hostile: tuple[BuildReport, Path, str],
                                                 case) -> None:
    report, _, _ = hostile
    reasons = [p.reason for p in report.errors if p.where == case.path]
    assert reasons and case.reason in reasons[0], (case.path, reasons)


@pytest.mark.parametrize("case", [c for c in CASES if c.outcome == IGNORED], ids=lambda c: c.name)
def test_ignored_files_are_passed_over_silently(hostile: tuple[BuildReport, Path, str],
                                                case) -> None:
    report, out, _ = hostile
    assert not [p for p in report.problems if p.where == case.path]
    if case.title:
        assert case.title not in _titles(out)


def test_nothing_hostile_reaches_a_feed(hostile: tuple[BuildReport, Path, str]) -> None:
    _, out, _ = hostile
    items = {i["title"]: i for i in json.loads((out / "feed.json").read_text())["items"]}
    for case in CASES:
        if case.absent:
            shown = json.dumps(items[case.title], ensure_ascii=False)
            for needle in case.absent:
                assert needle not in shown, (case.name, needle)
    for item in items.values():
        for needle in ("<script", "onerror=", "javascript:", "vbscript:", "<iframe",
                       "<!ENTITY", " on"):
            assert needle not in re.sub(r">[^<]*<", "><", item["content_html"]), needle
    text = _all_feed_text(out)
    assert re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\u202a-\u202e]", text) is None
    assert not Path("/tmp/feedserver-pwned").exists()
    assert _titles(out).count("Grüße aus Köln") == 1  # a link inside seeds is no duplicate


def test_topic_slugs_are_safe(hostile: tuple[BuildReport, Path, str]) -> None:
    _, out, _ = hostile
    slugs = [p.name for p in (out / "topics").iterdir() if p.is_dir()]  # not index.html
    assert slugs and all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", s) for s in slugs)
    assert {"etc-passwd", "con-topic", "a-b", "zerowidth"} <= set(slugs)  # no device name
    assert len(slugs) < 120  # 10,000 tags were cut to 50


def test_bad_file_name_is_reported(hostile: tuple[BuildReport, Path, str]) -> None:
    report, _, bad_name = hostile
    assert any(p.where == bad_name and "not valid UTF-8" in p.reason for p in report.problems)


def test_duplicates_get_distinct_ids_and_slugs(hostile: tuple[BuildReport, Path, str]) -> None:
    _, out, _ = hostile
    items = json.loads((out / "feed.json").read_text())["items"]
    assert len({i["id"] for i in items}) == len(items)
    assert len({i["url"] for i in items}) == len(items)
    same = [i["url"] for i in items if i["title"] == "Same title twice"]
    assert len(same) == 2 and same[0] != same[1]


def test_hostile_dates(hostile: tuple[BuildReport, Path, str]) -> None:
    _, out, _ = hostile
    items = {i["title"]: i for i in json.loads((out / "feed.json").read_text())["items"]}
    assert items["Far past"]["date_published"] == "1901-01-01T00:00:00+00:00"
    assert items["Naive date"]["date_published"] == "2020-05-05T10:00:00+00:00"
    assert items["Aware date"]["date_published"] == "2020-05-05T05:00:00+00:00"
