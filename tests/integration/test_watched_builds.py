"""Builds told which paths changed (the watcher's events) agree with full scans.

A long-lived process keeps its last scan (:class:`feedserver.build.scan.Listing` in
:class:`feedserver.build.memory.BuildMemory`) and re-stats only the paths events named.  A
series of such builds (files added, edited, renamed, deleted, broken, fixed)
must publish exactly what one full build of the final folder publishes; a
path no event named is not looked at until the next full scan, which is why
the scheduler still scans everything every ``refresh_interval``.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

from benchmarks.corpus import generate
from feedserver.build.run import BuildMemory, run_build
from feedserver.schedule.watcher import Writes
from tests.conftest import NOW, write
from tests.integration.test_speed_equivalence import etags, feeds, site


def test_watched_series_publishes_what_full_scans_publish(tmp_path: Path) -> None:
    """The same series of changes, built twice: with the events' paths, and with a
    full scan each time (a new process each time, too); every step, the same bytes."""
    seeds = tmp_path / "seeds"
    generate(seeds, 60, seed=5)
    names = sorted(str(p.relative_to(seeds)) for p in seeds.rglob("*") if p.is_file())
    watched, scanned = site(tmp_path / "w", 1, seeds), site(tmp_path / "s", 1, seeds)
    warm = BuildMemory.empty()
    later = NOW.timestamp() + 3600

    def step(changed: set[str] | None, hours: int) -> None:
        now = NOW + timedelta(hours=hours)
        report = run_build(watched, now=now, memory=warm, changes=changed)
        assert report.parsed_files <= len(changed if changed is not None else names)
        assert report.problems == run_build(scanned, now=now).problems
        assert feeds(Path(watched.output_dir)) == feeds(Path(scanned.output_dir))
        assert etags(Path(watched.output_dir)) == etags(Path(scanned.output_dir))

    step(None, 0)  # the full scan a watched process starts from
    write(seeds / names[0], "A new title for an old article\n\nIts body is new too.\n", later)
    write(seeds / "sub" / "new.txt", "An article that just arrived\n\nWith a body.\n", later)
    step({names[0], "sub/new.txt"}, 1)
    os.rename(seeds / names[1], seeds / "renamed.txt")
    (seeds / names[2]).unlink()
    write(seeds / names[3], b"", later)  # broken: its last good version stays
    step({names[1], "renamed.txt", names[2], names[3]}, 2)
    shutil.copy2(seeds / names[4], seeds / names[3])  # fixed (a duplicate of another)
    step({names[3]}, 3)
    step(set(), 4)


def test_a_change_no_event_named_waits_for_the_full_scan(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    generate(seeds, 12, seed=3)
    settings, warm = site(tmp_path / "s", 1, seeds), BuildMemory.empty()
    run_build(settings, now=NOW, memory=warm)
    write(seeds / "unseen.txt", "Nobody told the watcher\n\nAbout this article.\n")
    quiet = run_build(settings, now=NOW + timedelta(hours=1), memory=warm, changes=set())
    assert quiet.parsed_files == 0 and quiet.rendered_channels == 0
    full = run_build(settings, now=NOW + timedelta(hours=2), memory=warm, changes=None)
    assert full.parsed_files == 1 and full.rendered_channels >= 1


def test_writes_name_paths_only_while_watching() -> None:
    writes = Writes(close_events=True)
    writes.touched("a.txt")
    assert writes.changes() is None  # no watcher: only a full scan can tell
    writes.watching = True  # what Watcher.start does once its observer runs
    writes.rescan()
    assert writes.changes() is None  # what changed before it started: no event says
    writes.touched("a.txt")
    writes.touched("b/c.md")
    assert writes.changes() == {"a.txt", "b/c.md"}
    assert writes.changes() == set()
    writes.touched("d.txt")
    writes.rescan()  # a folder moved: events cannot say which files
    assert writes.changes() is None
    assert writes.changes() == set()


def test_kept_identities_follow_another_process_and_keep_ids(tmp_path: Path) -> None:
    """The identities book a long-lived process keeps is dropped when another process
    wrote the ledger; a rename made there keeps its id here."""
    seeds = tmp_path / "seeds"
    generate(seeds, 20, seed=9)
    settings, warm = site(tmp_path / "s", 1, seeds), BuildMemory.empty()
    run_build(settings, now=NOW, memory=warm)
    book = warm.identities.book
    run_build(settings, now=NOW + timedelta(hours=1), memory=warm)
    assert book is not None and warm.identities.book is book  # nothing else wrote: reused
    before = feeds(Path(settings.output_dir))["feed.json"]
    victim = sorted(p for p in seeds.rglob("*.txt"))[0]
    os.rename(victim, seeds / "moved-elsewhere.txt")
    run_build(settings, now=NOW + timedelta(hours=2))  # another process: no warm state
    write(seeds / "late.txt", "A late article\n\nWritten after the rename.\n")
    run_build(settings, now=NOW + timedelta(hours=3), memory=warm)
    assert warm.identities.book is not book  # read again: the other process wrote
    after = feeds(Path(settings.output_dir))["feed.json"]
    old = {i["title"]: i["id"] for i in json.loads(before)["items"]}
    new = {i["title"]: i["id"] for i in json.loads(after)["items"]}
    assert new.pop("A late article") not in old.values()
    assert new == old  # the renamed article among them, with its id


def test_a_topic_renamed_elsewhere_reaches_channels_whose_items_did_not_change(
        tmp_path: Path) -> None:
    """A topic's display name comes from the first file naming it; when that file
    renames it, a channel listing only other articles still shows the new name."""
    seeds = tmp_path / "seeds"
    write(seeds / "a.md", "---\ntitle: Alpha\ntags: [Rail Freight]\n---\nAlpha body.\n")
    write(seeds / "b.md", "---\ntitle: Beta\ntags: [Rail Freight, Deep Sea]\n---\nBeta.\n")
    warm_site, cold_site = site(tmp_path / "w", 1, seeds), site(tmp_path / "c", 1, seeds)
    warm = BuildMemory.empty()
    run_build(warm_site, now=NOW, memory=warm)
    run_build(cold_site, now=NOW)  # another process each time: nothing kept
    write(seeds / "a.md", "---\ntitle: Alpha\ntags: [RAIL freight]\n---\nAlpha body.\n",
          NOW.timestamp() + 60)  # same size: a new mtime tells the stat it changed
    run_build(warm_site, now=NOW + timedelta(hours=1), memory=warm, changes={"a.md"})
    run_build(cold_site, now=NOW + timedelta(hours=1))
    deep = feeds(Path(warm_site.output_dir))["topics/deep-sea/feed.json"]
    assert b"RAIL freight" in deep
    assert feeds(Path(warm_site.output_dir)) == feeds(Path(cold_site.output_dir))


def test_a_kept_manifest_gives_way_to_one_another_process_published(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    generate(seeds, 12, seed=4)
    settings, warm = site(tmp_path / "s", 1, seeds), BuildMemory.empty()
    run_build(settings, now=NOW, memory=warm)
    assert run_build(settings, now=NOW, memory=warm, changes=set()).rendered_channels == 0
    write(seeds / "other.txt", "Published by another process\n\nWhile this one slept.\n")
    assert run_build(settings, now=NOW + timedelta(hours=1)).rendered_channels >= 1
    # This process reads the manifest the other one wrote: nothing is left to render.
    later = run_build(settings, now=NOW + timedelta(hours=1), memory=warm, changes={"other.txt"})
    assert later.rendered_channels == 0 and later.written == []
