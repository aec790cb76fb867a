"""Whole builds: round trips, determinism, stable ids, broken files, the gate."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedserver.build.run import BuildReport
from feedserver.cli import main
from feedserver.config import Settings, load_settings
from feedserver.publish.manifest import load_manifest
from feedserver.render.formats import FORMATS, Finding, ReadBack
from tests.conftest import NOW, SEED, parse_feed, write

Build = Callable[..., BuildReport]


def feed_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("feed.*"))
            if p.suffix in {".rss", ".atom", ".json"}}


def source_titles(seeds: Path) -> set[str]:
    """Titles read straight from the source files (first line / front matter)."""
    titles = set()
    for path in seeds.rglob("*"):
        if path.suffix == ".txt":
            titles.add(path.read_text(encoding="utf-8").split("\n", 1)[0].strip())
        elif path.suffix == ".md":
            text = path.read_text(encoding="utf-8")
            if "draft: true" in text:
                continue
            line = next(ln for ln in text.splitlines() if ln.startswith("title"))
            titles.add(line.split("=", 1)[-1].split(":", 1)[-1].strip().strip('"'))
    return titles


def test_every_channel_round_trips_in_every_format(build: Build, settings: Settings) -> None:
    report = build()
    assert report.published and not report.errors, report.problems
    out = Path(settings.output_dir)
    seeds = Path(settings.seeds_dir)
    rss, atom = parse_feed(out / "feed.rss"), parse_feed(out / "feed.atom")
    doc = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    assert {e.title for e in rss.entries} == source_titles(seeds)
    for parsed in (rss, atom):
        assert not parsed.bozo
    assert [e.id for e in rss.entries] == [e.id for e in atom.entries] == \
        [i["id"] for i in doc["items"]]
    assert [e.link for e in rss.entries] == [i["url"] for i in doc["items"]]
    dates = [e.published_parsed for e in rss.entries]
    assert dates == sorted(dates, reverse=True)
    topics = sorted(p.name for p in (out / "topics").iterdir() if p.is_dir())
    assert {"kazakhstan", "russia", "energy", "transport", "technology"} <= set(topics)
    for slug in topics:
        for name in ("feed.rss", "feed.atom", "feed.json"):
            assert (out / "topics" / slug / name).is_file()
        topic_rss = parse_feed(out / "topics" / slug / "feed.rss")
        assert not topic_rss.bozo and topic_rss.entries
        assert {e.id for e in topic_rss.entries} <= {e.id for e in rss.entries}


def test_seed_article_in_feeds(build: Build, settings: Settings) -> None:
    build()
    out = Path(settings.output_dir)
    title = (Path(settings.seeds_dir) / SEED).read_text(encoding="utf-8").split("\n")[0].strip()
    for slug in ("kazakhstan", "russia"):
        entries = parse_feed(out / "topics" / slug / "feed.atom").entries
        assert title in [e.title for e in entries]
    body = (out / "feed.rss").read_text(encoding="utf-8")
    for junk in ("Still image", "Currently reading", "Kazakhstan and Russia&lt;/p"):
        assert junk not in body
    item = next(i for i in json.loads((out / "feed.json").read_bytes())["items"]
                if i["title"] == title)
    assert item["content_html"].startswith("<p>President of Kazakhstan Kassym-Jomart Tokayev")
    assert {"Kazakhstan", "Russia"} <= set(item["tags"])
    assert item["date_published"].endswith("+00:00")


def test_build_is_deterministic(build: Build, settings: Settings, tmp_path: Path) -> None:
    build()
    first = feed_files(Path(settings.output_dir))
    report = build(now=NOW + timedelta(hours=5))
    assert report.written == [] and feed_files(Path(settings.output_dir)) == first
    # A fresh state and output folder over the same files gives the same bytes too.
    fresh = load_settings(Path(settings.seeds_dir).parent / "config.toml", env={
        "FEEDSERVER_OUTPUT_DIR": str(tmp_path / "out2"),
        "FEEDSERVER_STATE_DIR": str(tmp_path / "state2")})
    from feedserver.build.run import run_build

    run_build(fresh, now=NOW)
    assert feed_files(tmp_path / "out2") == first


def test_ids_survive_edits_title_changes_and_renames(build: Build, settings: Settings) -> None:
    seeds = Path(settings.seeds_dir)
    path = write(seeds / "story.md", "---\ntitle: First title\n---\nSome text.\n", 1_700_000_000)
    build()
    out = Path(settings.output_dir)

    def entry() -> tuple[str, str, str]:
        found = [e for e in parse_feed(out / "feed.atom").entries if "itle" in e.title]
        assert len(found) == 1
        return found[0].id, found[0].title, found[0].link

    first_id, _, first_link = entry()
    write(path, "---\ntitle: A new title\n---\nSome text, edited.\n\n\n", 1_700_000_500)
    build()
    assert entry() == (first_id, "A new title", first_link)  # the link (slug) is stable too
    path.rename(seeds / "moved.md")
    build()
    assert entry()[0] == first_id


def test_rename_and_edit_in_one_build_keeps_the_id(build: Build, settings: Settings) -> None:
    seeds = Path(settings.seeds_dir)
    path = write(seeds / "before.md", "---\ntitle: Moving story\n---\nFirst text.\n")
    build()
    atom = Path(settings.output_dir) / "feed.atom"
    first = [e.id for e in parse_feed(atom).entries if e.title == "Moving story"]
    path.unlink()
    write(seeds / "sub" / "after.md", "---\ntitle: Moving story\n---\nSecond text.\n")
    build()
    assert [e.id for e in parse_feed(atom).entries if e.title == "Moving story"] == first
    # A new article that merely shares a title with an old, long-gone one gets its own id.
    (seeds / "sub" / "after.md").unlink()
    build()
    write(seeds / "again.md", "---\ntitle: Moving story\n---\nUnrelated text.\n")
    build()
    again = [e.id for e in parse_feed(atom).entries if e.title == "Moving story"]
    assert len(again) == 1 and again != first


BODY = ("The regional council approved the new bus routes on Tuesday after a long debate "
        "about fares, timetables and the depot that the old routes relied on.\n")


def _ids(atom: Path, title: str) -> list[str]:
    return [e.id for e in parse_feed(atom).entries if e.title == title]


def test_rename_and_retitle_in_one_build_keeps_the_id_and_link(
        build: Build, settings: Settings) -> None:
    seeds = Path(settings.seeds_dir)
    path = write(seeds / "draft-buses.md", f"---\ntitle: Council debates buses\n---\n{BODY}")
    build()
    atom = Path(settings.output_dir) / "feed.atom"
    before = [(e.id, e.link) for e in parse_feed(atom).entries
              if e.title == "Council debates buses"]
    path.unlink()
    write(seeds / "news" / "buses.md", f"---\ntitle: Council approves bus routes\n---\n{BODY}")
    build()
    after = [(e.id, e.link) for e in parse_feed(atom).entries
             if e.title == "Council approves bus routes"]
    assert len(before) == 1 and after == before
    assert not _ids(atom, "Council debates buses")


def test_rename_and_retitle_needs_one_unambiguous_body_of_some_length(
        build: Build, settings: Settings) -> None:
    """Two departed articles with one body, or a body too short to tell articles apart
    ('Text.'), are not guessed at: new ids, as before."""
    seeds = Path(settings.seeds_dir)
    one = write(seeds / "one.md", f"---\ntitle: Copy one\n---\n{BODY}")
    two = write(seeds / "two.md", f"---\ntitle: Copy two\n---\n{BODY}")
    short = write(seeds / "short.md", "---\ntitle: Short one\n---\nText.\n")
    build()
    atom = Path(settings.output_dir) / "feed.atom"
    old = set(_ids(atom, "Copy one") + _ids(atom, "Copy two") + _ids(atom, "Short one"))
    for path in (one, two, short):
        path.unlink()
    write(seeds / "three.md", f"---\ntitle: Copy three\n---\n{BODY}")
    write(seeds / "tiny.md", "---\ntitle: Tiny one\n---\nText.\n")
    build()
    new = _ids(atom, "Copy three") + _ids(atom, "Tiny one")
    assert len(old) == 3 and len(new) == 2 and not old & set(new)


def test_a_ledger_from_before_body_prints_learns_them_and_keeps_ids(
        build: Build, settings: Settings) -> None:
    """State written by an older feedserver (no body prints): its first build fills them,
    so a rename and retitle after the upgrade keeps the id."""
    import sqlite3

    seeds = Path(settings.seeds_dir)
    path = write(seeds / "old.md", f"---\ntitle: Old headline\n---\n{BODY}")
    build()
    atom = Path(settings.output_dir) / "feed.atom"
    first = _ids(atom, "Old headline")
    ledger = Path(settings.state_dir) / "ledger.sqlite3"
    with sqlite3.connect(ledger) as db:
        db.execute("DROP TABLE bodies")
    assert build().written == []  # learning them changes no published byte
    path.unlink()
    write(seeds / "new.md", f"---\ntitle: New headline\n---\n{BODY}")
    build()
    assert len(first) == 1 and _ids(atom, "New headline") == first


def test_a_move_the_watcher_saw_keeps_the_id_through_a_title_change(
        build: Build, settings: Settings) -> None:
    from feedserver.build.run import run_build

    seeds = Path(settings.seeds_dir)
    write(seeds / "old-name.md", "---\ntitle: Draft headline\n---\nText.\n")
    build()
    atom = Path(settings.output_dir) / "feed.atom"
    first = [e.id for e in parse_feed(atom).entries if e.title == "Draft headline"]
    (seeds / "old-name.md").rename(seeds / "new-name.md")
    write(seeds / "new-name.md", "---\ntitle: Final headline\n---\nText, edited.\n")
    # Two hops (old -> tmp -> new) as an editor's save-via-rename makes them.
    run_build(settings, now=NOW, moves={"tmp.md": "old-name.md", "new-name.md": "tmp.md"})
    assert len(first) == 1
    assert [e.id for e in parse_feed(atom).entries if e.title == "Final headline"] == first


def test_edit_moves_updated_not_published(build: Build, settings: Settings) -> None:
    seeds = Path(settings.seeds_dir)
    path = write(seeds / "e.md", "---\ntitle: Edited story\n---\nOne.\n", 1_700_000_000)
    build()
    write(path, "---\ntitle: Edited story\n---\nOne.   \n\n\n", 1_700_000_100)  # whitespace only
    build()
    write(path, "---\ntitle: Edited story\n---\nTwo.\n", 1_700_000_200)
    build()
    entry = next(e for e in parse_feed(Path(settings.output_dir) / "feed.atom").entries
                 if e.title == "Edited story")
    assert entry.published == "2023-11-14T22:13:20+00:00"
    assert entry.updated == "2023-11-14T22:16:40+00:00"


def test_broken_file_leaves_others_published(build: Build, settings: Settings) -> None:
    seeds = Path(settings.seeds_dir)
    expected = source_titles(seeds)
    write(seeds / "broken.md", "---\ntitle: [oops\n---\nbody\n")
    write(seeds / "binary.txt", b"\x00\x01\x02\x03" * 100)
    report = build()
    assert report.published
    where = {p.where: p.reason for p in report.errors}
    assert "invalid YAML" in where["broken.md"] and "binary" in where["binary.txt"]
    titles = {e.title for e in parse_feed(Path(settings.output_dir) / "feed.rss").entries}
    assert titles == expected


def test_good_file_turned_bad_keeps_last_good_version(build: Build, settings: Settings) -> None:
    path = write(Path(settings.seeds_dir) / "turns.md", "---\ntitle: Good once\n---\nText.\n")
    build()
    write(path, b"---\ntitle: [broken\n---\n\xff\xfe\x00garbage")
    report = build()
    assert any(p.where == "turns.md" and "last good" in p.reason for p in report.errors)
    titles = [e.title for e in parse_feed(Path(settings.output_dir) / "feed.rss").entries]
    assert "Good once" in titles


def test_failing_channel_keeps_previous_version(build: Build, settings: Settings,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    build()
    out = Path(settings.output_dir)
    before = feed_files(out)
    write(Path(settings.seeds_dir) / "new.md", "---\ntitle: Energy news\ntags: [Energy]\n---\nx\n")

    def broken(channel: object, body: bytes) -> ReadBack:
        return ReadBack([Finding("injected failure")])

    monkeypatch.setitem(FORMATS, "atom", replace(FORMATS["atom"], check=broken))
    report = build()
    assert {p.where for p in report.errors} >= {"channel all (feed.atom)"}
    assert feed_files(out) == before  # every channel failed: nothing changed
    manifest = load_manifest(out)
    assert set(manifest["files"]) >= set(before)
    monkeypatch.undo()
    build()
    assert "Energy news" in [e.title for e in parse_feed(out / "feed.rss").entries]


def test_drafts_and_future_articles_wait(build: Build, settings: Settings) -> None:
    seeds = Path(settings.seeds_dir)
    write(seeds / "future.md", "---\ntitle: From the future\ndate: 2026-12-01\n---\nSoon.\n")
    report = build()
    titles = {e.title for e in parse_feed(Path(settings.output_dir) / "feed.rss").entries}
    assert "From the future" not in titles
    assert "Winter timetable for regional flights (draft)" not in titles
    assert report.next_due is not None and report.next_due.isoformat().startswith("2026-12-01")
    build(now=NOW + timedelta(days=5))
    titles = {e.title for e in parse_feed(Path(settings.output_dir) / "feed.rss").entries}
    assert "From the future" in titles


def test_max_items_and_topic_removal(settings: Settings, site_dir: Path) -> None:
    from feedserver.build.run import run_build

    small = load_settings(site_dir / "config.toml", env={"FEEDSERVER_MAX_ITEMS": "2"})
    run_build(small, now=NOW)
    out = Path(small.output_dir)
    assert len(parse_feed(out / "feed.rss").entries) == 2
    (Path(small.seeds_dir) / "2026-11-03-feeds-still-matter.md").unlink()
    report = run_build(small, now=NOW)
    assert not (out / "topics" / "open-web").exists()
    assert "topics/open-web/feed.rss" in report.removed
    assert "topics/open-web/feed.rss" in load_manifest(out)["gone"]


def test_config_change_rewrites_output(build: Build, settings: Settings, site_dir: Path) -> None:
    build()
    from feedserver.build.run import run_build

    moved = load_settings(site_dir / "config.toml",
                          env={"FEEDSERVER_BASE_URL": "https://news.example.org/sub"})
    report = run_build(moved, now=NOW)
    body = (Path(moved.output_dir) / "feed.rss").read_text(encoding="utf-8")
    assert "https://news.example.org/sub/articles/" in body and "127.0.0.1" not in body
    assert "feed.rss" in report.written


def test_cli_build_and_check(site_dir: Path) -> None:
    runner = CliRunner()
    config = str(site_dir / "config.toml")
    result = runner.invoke(main, ["build", "--config", config, "--out", str(site_dir / "o")])
    assert result.exit_code == 0, result.output
    assert (site_dir / "o" / "feed.rss").is_file()
    assert runner.invoke(main, ["check", "--config", config, "--strict"]).exit_code == 0
    write(site_dir / "seeds" / "bad.md", "---\ntitle: x\n")
    result = runner.invoke(main, ["check", "--config", config])
    assert result.exit_code == 1 and "bad.md: front matter opened with '---'" in result.output
    shutil.rmtree(site_dir / "seeds")
    (site_dir / "seeds").mkdir()
    write(site_dir / "seeds" / "w.md", "---\ntitle: T\ntags: " + ", ".join(
        f"t{i}" for i in range(60)) + "\n---\nx\n")
    lenient = runner.invoke(main, ["check", "--config", config])
    strict = runner.invoke(main, ["check", "--config", config, "--strict"])
    assert (lenient.exit_code, strict.exit_code) == (0, 1)
    assert "only the first 50 are used" in strict.output
