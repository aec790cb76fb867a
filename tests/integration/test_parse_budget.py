"""Each file's parse has a hard time budget (``parse_timeout``) enforced by the build.

The stuck parse here is a real one: a debris pattern with nested quantifiers
(``(a+)+b``, which the config loader refuses, so it is set on the Settings
directly) against a line of forty ``a``: 2^40 steps inside the C regex engine,
where no signal handler can run.  Only a parent that kills the child doing
the parse can stop it; the build must go on, publish every other article, name
the file and the budget, and not read the file again until it changes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from feedserver.build import forkcost
from feedserver.build.run import BuildMemory, BuildReport, run_build
from feedserver.build.sources import ParseWork
from feedserver.config import Debris, Settings
from feedserver.core.media import NO_MEDIA
from tests.conftest import NOW, parse_feed, write

STUCK = "Stuck article\n\n" + "a" * 40 + "\n\nNever published.\n"


def _hanging(settings: Settings, **more: object) -> Settings:
    return replace(settings, parse_timeout=1.0, debris=Debris(lines=(r"(a+)+b",)), **more)


def _problems_of(report: BuildReport, rel: str) -> list[str]:
    return [p.reason for p in report.problems if p.where == rel]


def _titles(out: Path, rel: str = "feed.rss") -> list[str]:
    return [entry.title for entry in parse_feed(out / rel).entries]


def test_a_parse_over_budget_is_skipped_and_not_retried_until_it_changes(
        settings: Settings) -> None:
    hanging = _hanging(settings)
    seeds, out = Path(hanging.seeds_dir), Path(hanging.output_dir)
    write(seeds / "stuck.txt", STUCK)
    first = run_build(hanging, now=NOW)
    reasons = _problems_of(first, "stuck.txt")
    assert first.published and len(reasons) == 1
    assert "1 s" in reasons[0] and "parse_timeout" in reasons[0]
    published = _titles(out)
    assert "Stuck article" not in published and len(published) == first.articles >= 5

    again = run_build(hanging, now=NOW + timedelta(minutes=1))
    assert again.parsed_files == 0  # remembered: not read, so not stuck again
    assert _problems_of(again, "stuck.txt") == reasons

    write(seeds / "stuck.txt", STUCK.replace("a" * 40, "A normal line."))
    mended = run_build(hanging, now=NOW + timedelta(minutes=2))
    assert mended.parsed_files == 1 and not _problems_of(mended, "stuck.txt")
    assert "Stuck article" in _titles(out)


def test_a_bigger_budget_tries_the_file_again(settings: Settings) -> None:
    hanging = _hanging(settings)
    write(Path(hanging.seeds_dir) / "stuck.txt", STUCK)
    assert _problems_of(run_build(hanging, now=NOW), "stuck.txt")
    report = run_build(replace(hanging, parse_timeout=1.5), now=NOW + timedelta(minutes=1))
    assert report.parsed_files == 1
    assert "1.5 s" in _problems_of(report, "stuck.txt")[0]


def test_the_budget_holds_in_a_many_file_build_and_the_rest_of_the_chunk_is_read(
        settings: Settings) -> None:
    """Many files: parsed over forked workers in ranges; the killed worker's range
    goes on elsewhere, so every other article is published."""
    hanging = _hanging(settings, build_processes=2)
    seeds = Path(hanging.seeds_dir)
    for n in range(90):
        write(seeds / f"bulk/{n:03d}.txt", f"Bulk article {n}\n\nBody of article {n}.\n")
    write(seeds / "bulk/010-stuck.txt", STUCK)  # early in a range: the rest must still be read
    write(seeds / "bulk/077-stuck.txt", STUCK)
    report = run_build(hanging, now=NOW)
    assert report.published
    assert {p.where for p in report.errors} == {"bulk/010-stuck.txt", "bulk/077-stuck.txt"}
    assert report.articles == 5 + 90
    feed = parse_feed(Path(hanging.output_dir) / "feed.atom")
    assert len(feed.entries) == 50 and all(e.title.startswith("Bulk article") for e in feed.entries)


@pytest.mark.parametrize("big", [False, True], ids=["forked", "helper"])
def test_a_watched_one_file_build_has_the_budget_too(
        settings: Settings, big: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-lived process told which path changed parses one file: still killed,
    whether it forks for the parse or (a process too big to fork: every process is, at a
    limit of one byte) hands it to its parse helper, which forks from its own heap."""
    if big:
        monkeypatch.setattr(forkcost, "RESIDENT_MAX", 1)
    hanging = _hanging(settings)
    warm = BuildMemory.empty()
    run_build(hanging, now=NOW, memory=warm)
    write(Path(hanging.seeds_dir) / "stuck.txt", STUCK)
    report = run_build(hanging, now=NOW + timedelta(minutes=1), memory=warm,
                       changes=["stuck.txt"])
    assert report.published and report.parsed_files == 1
    assert "parse_timeout" in _problems_of(report, "stuck.txt")[0]
    first = warm.helpers["parse"].pid if big else None
    write(Path(hanging.seeds_dir) / "fine.txt", "Fine article\n\nText.\n")
    report = run_build(hanging, now=NOW + timedelta(minutes=2), memory=warm, changes=["fine.txt"])
    assert "Fine article" in _titles(Path(hanging.output_dir))
    helper = warm.helpers.get("parse")
    assert (helper is not None and helper.pid is not None) == big
    if helper is not None:  # the helper whose child was killed at the budget is the one
        assert helper.pid == first  # that read the next file
    if helper is not None:
        helper.close()


def test_huge_valid_markdown_stays_within_the_budget(settings: Settings) -> None:
    """A huge but valid Markdown file (markdown-it-py renders ~0.4 MB per CPU second:
    8 MB took minutes) is skipped at the budget like any other, naming it."""
    budgeted = replace(settings, parse_timeout=0.3)
    para = ("Lorem ipsum *dolor* sit amet, [consectetur](https://example.org/a) adipiscing "
            "elit, sed do `eiusmod` tempor.\n\n")
    write(Path(budgeted.seeds_dir) / "huge.md", "# Huge\n\n" + para * (2_000_000 // len(para)))
    report = run_build(budgeted, now=NOW)
    assert report.published and report.articles >= 5
    reasons = _problems_of(report, "huge.md")
    assert len(reasons) == 1 and "0.3 s" in reasons[0] and "parse_timeout" in reasons[0]
    assert "Huge" not in _titles(Path(budgeted.output_dir))


def test_a_parse_helper_started_again_refuses_a_request_for_an_index_it_never_had(
        settings: Settings) -> None:
    """The build sends the media index only when the helper it looked at holds it; a
    helper started again in between holds none and says so (the build then reads the
    files itself) rather than parse without it."""
    work = ParseWork()
    assert work.handle(("parse", [], settings, None))[0] == "failed"
    assert work.handle(("parse", [], settings, NO_MEDIA)) == ("read", [])
    assert work.handle(("parse", [], settings, None)) == ("read", [])  # the one it holds
