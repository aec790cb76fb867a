"""Incremental builds with a fake clock: only the channels whose items changed move.

Each test builds the bundled seeds, changes the seeds folder the way a
publisher would (add, edit, rename, delete, break a file), builds again at a
later fake ``now`` and checks which feed files were rewritten: a channel
whose items did not change keeps byte-identical files with the same mtime,
ETag and Last-Modified.  ``run_build`` keeps no state between calls (the
ledger and the manifest are on disk), so every call here is also a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from feedserver.publish.manifest import load_manifest
from feedserver.publish.output import MANIFEST
from tests.conftest import NOW, parse_feed, write

Build = Callable[..., BuildReport]
FEEDS = ("feed.rss", "feed.atom", "feed.json")


def snapshot(out: Path) -> dict[str, tuple[bytes, int, str, str]]:
    """Every feed file: bytes, mtime and its manifest ETag and Last-Modified."""
    files = load_manifest(out)["files"]
    return {rel: ((out / rel).read_bytes(), (out / rel).stat().st_mtime_ns,
                  files[rel]["etag"], files[rel]["last_modified"])
            for rel in files if rel.rsplit("/", 1)[-1] in FEEDS}


def channel_of(rel: str) -> str:
    if rel.startswith("languages/"):
        return f"lang-{rel.split('/')[1]}"
    return rel.split("/")[1] if rel.startswith("topics/") else "all"


def moved(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """Channels with any feed file added, removed or different in any way."""
    return {channel_of(rel) for rel in before.keys() | after.keys()
            if before.get(rel) != after.get(rel)}


def titles(out: Path, rel: str = "feed.rss") -> list[str]:
    return [e.title for e in parse_feed(out / rel).entries]


def test_nothing_changed_renders_nothing(build: Build, settings: Settings) -> None:
    first = build()
    assert first.rendered_channels == first.channels > 3
    out = Path(settings.output_dir)
    before = snapshot(out)
    again = build(now=NOW + timedelta(hours=1))
    assert again.rendered_channels == 0 and again.parsed_files == 0
    assert snapshot(out) == before


def test_nothing_changed_leaves_the_manifest_alone(build: Build, settings: Settings) -> None:
    """Web workers reload the manifest when its file changes; a build that changed
    nothing must not make them (a site with pages has a manifest of megabytes)."""
    from feedserver.publish.output import PUBLISHING

    build()
    out = Path(settings.output_dir)
    before = (out / MANIFEST).stat()
    build(now=NOW + timedelta(hours=1))
    after = (out / MANIFEST).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not (out / PUBLISHING).exists()
    write(Path(settings.seeds_dir) / "new.md", "---\ntitle: New\n---\nNew.\n")
    build(now=NOW + timedelta(hours=2))
    assert (out / MANIFEST).stat().st_ino != before.st_ino
    assert "New" in titles(out)


def test_added_article_touches_only_its_channels(build: Build, settings: Settings) -> None:
    build()
    out = Path(settings.output_dir)
    before = snapshot(out)
    write(Path(settings.seeds_dir) / "new.md",
          "---\ntitle: Garden news\ntags: [Gardening]\ndate: 2026-11-20\n---\nRoses.\n")
    report = build(now=NOW + timedelta(minutes=1))
    after = snapshot(out)
    assert moved(before, after) == {"all", "gardening", "lang-en"}  # and its language's
    assert report.rendered_channels == 3
    assert "Garden news" in titles(out)
    assert "Garden news" in titles(out, "topics/gardening/feed.rss")


def test_edit_keeps_id_and_moves_updated_only(build: Build, settings: Settings) -> None:
    seeds, out = Path(settings.seeds_dir), Path(settings.output_dir)
    path = write(seeds / "story.md", "---\ntitle: Story\ntags: [Rail]\n---\nOne.\n", 1_700_000_000)
    build()
    first = parse_feed(out / "topics/rail/feed.atom").entries[0]
    before = snapshot(out)
    write(path, "---\ntitle: Story\ntags: [Rail]\n---\nOne, corrected.\n", 1_700_000_900)
    build(now=NOW + timedelta(minutes=1))
    entry = parse_feed(out / "topics/rail/feed.atom").entries[0]
    assert (entry.id, entry.published) == (first.id, first.published)
    assert entry.updated == "2023-11-14T22:28:20+00:00" != first.updated
    assert moved(before, snapshot(out)) == {"all", "rail", "lang-en"}


def test_whitespace_and_debris_edits_are_not_updates(build: Build, settings: Settings) -> None:
    seeds, out = Path(settings.seeds_dir), Path(settings.output_dir)
    path = write(seeds / "news.txt", "Quiet news\n\nA paragraph.\n", 1_700_000_000)
    build()
    before = snapshot(out)
    write(path, "Quiet news\n\n\nA paragraph.   \n\nAdvertisement\n\n", 1_700_000_500)
    report = build(now=NOW + timedelta(minutes=1))
    assert report.parsed_files == 1 and report.rendered_channels == 0
    assert snapshot(out) == before


def test_rename_with_same_content_changes_nothing(build: Build, settings: Settings) -> None:
    seeds, out = Path(settings.seeds_dir), Path(settings.output_dir)
    write(seeds / "a.md", "---\ntitle: Moving story\ntags: [Rail]\n---\nText.\n", 1_700_000_000)
    build()
    before = snapshot(out)
    (seeds / "a.md").rename(seeds / "notes" / "b.md")
    report = build(now=NOW + timedelta(minutes=1))
    assert report.rendered_channels == 0 and snapshot(out) == before
    assert titles(out).count("Moving story") == 1


def test_delete_leaves_every_channel(build: Build, settings: Settings) -> None:
    seeds, out = Path(settings.seeds_dir), Path(settings.output_dir)
    write(seeds / "gone.md", "---\ntitle: Short-lived\ntags: [Rail, Kazakhstan]\n---\nx\n")
    build()
    before = snapshot(out)
    (seeds / "gone.md").unlink()
    report = build(now=NOW + timedelta(minutes=1))
    for rel in ("feed.rss", "topics/kazakhstan/feed.rss"):
        assert "Short-lived" not in titles(out, rel)
    assert not (out / "topics/rail").exists()
    gone = load_manifest(out)["gone"]
    assert {f"topics/rail/{name}" for name in FEEDS} <= set(gone) and set(report.removed) >= {
        f"topics/rail/{name}" for name in FEEDS}
    assert moved(before, snapshot(out)) == {"all", "kazakhstan", "rail", "lang-en"}


def test_good_then_bad_keeps_last_good_and_its_files(build: Build, settings: Settings) -> None:
    seeds, out = Path(settings.seeds_dir), Path(settings.output_dir)
    path = write(seeds / "turns.md", "---\ntitle: Good once\ntags: [Rail]\n---\nText.\n")
    build()
    before = snapshot(out)
    write(path, b"---\ntitle: [broken\n---\n\xff\xfe\x00garbage")
    report = build(now=NOW + timedelta(minutes=1))
    assert any(p.where == "turns.md" and "last good" in p.reason for p in report.errors)
    assert report.rendered_channels == 0 and snapshot(out) == before
    write(path, "---\ntitle: Good again\ntags: [Rail]\n---\nText.\n")
    build(now=NOW + timedelta(minutes=2))
    assert "Good again" in titles(out, "topics/rail/feed.rss")


def test_config_change_renders_every_channel(build: Build, settings: Settings,
                                             site_dir: Path) -> None:
    first = build()
    from feedserver.build.run import run_build
    from feedserver.config import load_settings

    retitled = load_settings(site_dir / "config.toml", env={"FEEDSERVER_SITE_TITLE": "Renamed"})
    report = run_build(retitled, now=NOW)
    assert report.rendered_channels == first.channels
    assert parse_feed(Path(retitled.output_dir) / "feed.rss").feed.title == "Renamed"


def test_deleted_output_file_is_rendered_again(build: Build, settings: Settings) -> None:
    build()
    out = Path(settings.output_dir)
    (out / "topics/energy/feed.atom").unlink()
    report = build(now=NOW + timedelta(minutes=1))
    assert report.rendered_channels == 1 and (out / "topics/energy/feed.atom").is_file()


def test_warm_cache_gives_the_same_output_and_notices_other_writers(
        build: Build, settings: Settings, site_dir: Path, tmp_path: Path) -> None:
    from feedserver.build.run import BuildMemory, run_build
    from feedserver.config import load_settings

    def at(minutes: int) -> float:
        """A file's mtime as the fake clock has it: the two ledgers compared below
        must see every file at the same moment whatever the real date is."""
        return (NOW + timedelta(minutes=minutes)).timestamp()

    warm = BuildMemory.empty()
    seeds, out = Path(settings.seeds_dir), Path(settings.output_dir)
    build(memory=warm)
    write(seeds / "one.md", "---\ntitle: First extra\ntags: [Rail]\n---\nOne.\n", at(1))
    build(now=NOW + timedelta(minutes=1), memory=warm)
    write(seeds / "three.md", "---\ntitle: Third extra\ntags: [Rail]\n---\nThree.\n", at(2))
    build(now=NOW + timedelta(minutes=2))  # another process writes the ledger: no warm cache
    write(seeds / "two.md", "---\ntitle: Second extra\ntags: [Rail]\n---\nTwo.\n", at(3))
    (seeds / "one.md").unlink()
    report = build(now=NOW + timedelta(minutes=3), memory=warm)
    assert report.parsed_files == 1 and report.rendered_channels == 3  # all, rail, lang-en
    assert {"Second extra", "Third extra"} <= set(titles(out, "topics/rail/feed.rss"))
    cold = load_settings(site_dir / "config.toml", env={
        "FEEDSERVER_OUTPUT_DIR": str(tmp_path / "cold"),
        "FEEDSERVER_STATE_DIR": str(tmp_path / "coldstate")})
    run_build(cold, now=NOW + timedelta(minutes=3))
    assert {k: v[0] for k, v in snapshot(out).items()} == \
        {k: v[0] for k, v in snapshot(tmp_path / "cold").items()}
    write(seeds / "two.md", "---\ntitle: Second extra\ntags: [Rail]\n---\nTwo, revised.\n",
          at(4))
    build(now=NOW + timedelta(minutes=4), memory=warm)  # kept content must not be reused
    assert b"Two, revised." in (out / "topics/rail/feed.json").read_bytes()
