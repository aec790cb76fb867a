"""Dates readers can trust: never-edited articles, file-name dates, git dates, re-created
files.  Every build runs at a pinned ``now`` and every file carries an mtime on the
same fake clock, so these pass on any real date."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from flask import Flask

from feedserver.build.run import BuildMemory, BuildReport, run_build
from feedserver.config import Settings, load_settings
from feedserver.core.records import Identity
from feedserver.identify import dates as origins
from feedserver.publish.manifest import load_manifest
from feedserver.web.app import create_app
from tests.conftest import NOW, ROOT, SEED, SEEDED, parse_feed, write

Build = Callable[..., BuildReport]
COMMITTED = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
EDITED = datetime(2026, 11, 24, 16, 30, tzinfo=UTC)


def entries(out: Path, rel: str = "feed.atom") -> dict[str, object]:
    return {e.title: e for e in parse_feed(out / rel).entries}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def front_matter_dates(seeds: Path) -> dict[str, tuple[str | None, str | None]]:
    """(date, updated) straight from each bundled .md source's front matter, by title
    (YAML ``key: value`` or TOML ``key = value`` lines between the fences)."""
    found: dict[str, tuple[str | None, str | None]] = {}
    for path in seeds.rglob("*.md"):
        lines = path.read_text(encoding="utf-8").splitlines()
        fields: dict[str, str] = {}
        for line in lines[1:lines.index(lines[0], 1)]:
            key, _, value = line.partition(" = " if lines[0] == "+++" else ": ")
            fields[key.strip()] = value.strip().strip('"')
        if fields.get("draft") != "true":
            found[fields["title"]] = (fields.get("date"), fields.get("updated"))
    return found


# -- never edited: updated == published --------------------------------------------------

def test_never_edited_articles_have_updated_equal_to_published(
        build: Build, settings: Settings) -> None:
    report = build()
    assert report.published and not report.errors
    out, seeds = Path(settings.output_dir), Path(settings.seeds_dir)
    feed = entries(out)
    sources = front_matter_dates(seeds)
    assert set(sources) < set(feed)
    for title, (_, explicit_updated) in sources.items():
        entry = feed[title]
        if explicit_updated is None:
            assert entry.updated == entry.published, title
        else:
            assert entry.updated != entry.published, title
    # The .txt seed has no date anywhere: first sight (its mtime), never edited.
    txt = next(e for e in feed.values() if e.title.startswith("Relations between"))
    assert txt.published == txt.updated == iso(SEEDED)
    assert len({e.updated for e in feed.values()}) == len(feed)  # W3C: no duplicate updated


def test_a_real_edit_still_moves_updated(build: Build, settings: Settings) -> None:
    build()
    path = Path(settings.seeds_dir) / "2026-11-03-feeds-still-matter.md"
    write(path, path.read_text(encoding="utf-8") + "\nOne more paragraph.\n", EDITED.timestamp())
    build(now=NOW + timedelta(minutes=1))
    entry = entries(Path(settings.output_dir))["Why web feeds still matter"]
    assert entry.published == "2026-11-03T00:00:00+00:00"
    assert entry.updated == iso(EDITED)


# -- file-name dates ------------------------------------------------------------------------

def test_name_date_reads_the_jekyll_prefix_only() -> None:
    assert origins.name_date("notes/2026-10-02-solar-farm.md") == datetime(2026, 10, 2,
                                                                           tzinfo=UTC)
    assert origins.name_date("2026-10-02-x.txt") == datetime(2026, 10, 2, tzinfo=UTC)
    assert origins.name_date("2026-10-02/story.md") is None  # a folder's name is no date
    assert origins.name_date("2026-13-40-x.md") is None
    assert origins.name_date("x-2026-10-02-y.md") is None
    assert origins.name_date("20261002-x.md") is None


def test_file_name_date_when_front_matter_has_none(build: Build, settings: Settings) -> None:
    seeds = Path(settings.seeds_dir)
    write(seeds / "2026-10-05-harvest.md", "---\ntitle: Harvest\n---\nGrain.\n",
          SEEDED.timestamp())
    write(seeds / "later" / "2026-10-06-wheat.txt", "Wheat prices\n\nUp again.\n",
          SEEDED.timestamp())
    write(seeds / "2026-10-07-explicit.md",
          "---\ntitle: Explicit\ndate: 2026-09-01T10:00:00Z\n---\nFront matter wins.\n",
          SEEDED.timestamp())
    write(seeds / "2026-13-40-nonsense.md", "---\ntitle: Nonsense\n---\nNo date.\n",
          SEEDED.timestamp())
    build()
    feed = entries(Path(settings.output_dir))
    assert (feed["Harvest"].published, feed["Harvest"].updated) == \
        ("2026-10-05T00:00:00+00:00",) * 2
    assert feed["Wheat prices"].published == "2026-10-06T00:00:00+00:00"
    assert feed["Explicit"].published == "2026-09-01T10:00:00+00:00"
    assert feed["Nonsense"].published == iso(SEEDED)  # an impossible date: first sight
    # A copy of the folder made later gives the same dates (the name travels with it).
    copy = load_settings(Path(settings.seeds_dir).parent / "config.toml", env={
        "FEEDSERVER_STATE_DIR": str(seeds.parent / "state2"),
        "FEEDSERVER_OUTPUT_DIR": str(seeds.parent / "out2")})
    for path in seeds.rglob("*"):
        os.utime(path, (NOW.timestamp() - 60, NOW.timestamp() - 60))
    run_build(copy, now=NOW)
    again = entries(seeds.parent / "out2")
    assert again["Harvest"].published == feed["Harvest"].published
    assert again["Harvest"].updated == feed["Harvest"].updated


# -- git dates ------------------------------------------------------------------------------

def git(where: Path, *args: str, when: datetime = COMMITTED) -> str:
    """Run git with a fixed identity and fixed author/committer dates (no user config)."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
           "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.org",
           "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp,
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *args], cwd=where, env=env, check=True, capture_output=True,
                          text=True)
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding the bundled seeds and config.toml, committed at COMMITTED."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    where = tmp_path / "origin"
    shutil.copytree(ROOT / "seeds", where / "seeds")
    shutil.copy(ROOT / "config.toml", where / "config.toml")
    (where / ".gitignore").write_text("public/\nstate/\n", encoding="utf-8")
    git(where, "init", "-q", "-b", "main")
    git(where, "add", ".")
    git(where, "commit", "-q", "-m", "seeds")
    return where


def clone(repo: Path, where: Path, mtime: datetime) -> Settings:
    """A clone of ``repo`` whose files all carry ``mtime`` (each clone is made at its
    own moment), with its settings."""
    git(repo.parent, "clone", "-q", str(repo), str(where))
    for path in (where / "seeds").rglob("*"):
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return load_settings(where / "config.toml", env={})


def feed_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("feed.*"))}


def test_two_clones_publish_byte_identical_feeds(repo: Path, tmp_path: Path) -> None:
    one = clone(repo, tmp_path / "one", SEEDED)
    two = clone(repo, tmp_path / "two", NOW - timedelta(hours=1))
    assert run_build(one, now=NOW).published and run_build(two, now=NOW).published
    first, second = feed_bytes(Path(one.output_dir)), feed_bytes(Path(two.output_dir))
    assert len(first) > 9 and first == second
    # The .txt seed (no date in it or its name) is dated by its commit.
    txt = next(e for e in parse_feed(Path(one.output_dir) / "feed.atom").entries
               if e.title.startswith("Relations between"))
    assert txt.published == txt.updated == iso(COMMITTED)


def test_git_dates_follow_edits_renames_and_uncommitted_changes(repo: Path) -> None:
    settings = load_settings(repo / "config.toml", env={})
    seeds, out = repo / "seeds", Path(settings.output_dir)
    warm = BuildMemory.empty()
    run_build(settings, now=NOW, memory=warm)
    later = COMMITTED + timedelta(days=2)
    (seeds / SEED).write_text((seeds / SEED).read_text(encoding="utf-8") + "\nMore.\n",
                              encoding="utf-8")
    git(repo, "mv", "seeds/2026-10-14-rail-freight.md", "seeds/rail.md")
    git(repo, "commit", "-q", "-am", "edit and rename", when=later)
    run_build(settings, now=NOW + timedelta(minutes=1), memory=warm)  # HEAD moved: log re-read
    feed = entries(out)
    txt = next(e for e in feed.values() if e.title.startswith("Relations between"))
    assert (txt.published, txt.updated) == (iso(COMMITTED), iso(later))
    rail = feed["Rail freight between Europe and China keeps growing"]
    assert rail.published == "2026-10-14T12:00:00+00:00"  # front matter still wins
    # An edit not committed yet, seen by the ledger: its change time until committed.
    write(seeds / "2026-11-03-feeds-still-matter.md",
          (seeds / "2026-11-03-feeds-still-matter.md").read_text(encoding="utf-8")
          + "\nUncommitted paragraph.\n", EDITED.timestamp())
    run_build(settings, now=NOW + timedelta(minutes=2), memory=warm)
    assert entries(out)["Why web feeds still matter"].updated == iso(EDITED)
    git(repo, "commit", "-q", "-am", "commit the edit", when=later + timedelta(hours=1))
    run_build(settings, now=NOW + timedelta(minutes=3))  # a cold process agrees
    assert entries(out)["Why web feeds still matter"].updated == \
        iso(later + timedelta(hours=1))


def test_parse_log_follows_renames_and_survives_deletions() -> None:
    log = (b"\x01300\x00\nA\x00a.md\x00"          # a.md re-created (newest)
           b"\x01200\x00\nR090\x00a.md\x00b.md\x00D\x00a.md\x00"
           b"\x01150\x00\nD\x00c.md\x00"
           b"\x01100\x00\nA\x00a.md\x00A\x00c.md\x00")
    spans = origins.parse_log(log)

    def at(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    assert spans["b.md"] == (at(100), at(200))  # renamed from a.md: its first commit
    assert spans["a.md"] == (at(300), at(300))
    assert spans["c.md"] == (at(100), at(100))  # deleted since: never asked for


def test_overlay_keeps_objects_and_ledger_change_time_for_dirty_edits() -> None:
    first, last = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    seen = datetime(2026, 3, 1, tzinfo=UTC)
    edited = Identity("urn:1", "a", seen, seen + timedelta(days=1))
    plain = Identity("urn:2", "b", seen, seen)
    span = (first, last)
    made: dict[str, tuple[Identity, origins.Span, bool, Identity]] = {}
    ids = {"a.md": edited, "b.md": plain, "c.md": plain}
    dated = origins.overlay(ids, {"a.md": span, "b.md": span}, frozenset({"a.md", "b.md"}), made)
    assert (dated["a.md"].first_seen, dated["a.md"].changed) == (first, seen + timedelta(days=1))
    assert (dated["b.md"].first_seen, dated["b.md"].changed) == (first, last)
    assert dated["c.md"] is plain
    again = origins.overlay(ids, {"a.md": span, "b.md": span}, frozenset({"a.md"}), made)
    assert again["a.md"] is dated["a.md"] and again["b.md"] is dated["b.md"]


def test_no_git_process_outside_a_work_tree(settings: Settings,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("git was run for a folder outside any work tree")

    monkeypatch.setattr(origins.subprocess, "run", refuse)
    ids = {"x.md": Identity("urn:x", "x", NOW, NOW)}
    assert origins.work_tree(Path(settings.seeds_dir)) is None
    assert origins.git_dated(ids, settings.seeds_dir) is ids


# -- a file deleted and re-created at the same path --------------------------------------

@pytest.mark.parametrize("edited", [False, True])
def test_recreated_file_is_the_same_article(build: Build, settings: Settings,
                                            edited: bool) -> None:
    seeds, out = Path(settings.seeds_dir), Path(settings.output_dir)
    path = seeds / "2026-10-14-rail-freight.md"
    text = path.read_text(encoding="utf-8")
    title = "Rail freight between Europe and China keeps growing"
    build()
    before = entries(out)[title]
    page = before.link.removeprefix(settings.base_url)
    assert (out / page / "index.html").is_file()
    path.unlink()
    build(now=NOW + timedelta(minutes=1))
    assert title not in entries(out)
    assert page + "index.html" in load_manifest(out)["gone"]
    write(path, text + ("\nA correction.\n" if edited else ""), EDITED.timestamp())
    build(now=NOW + timedelta(minutes=2))
    after = entries(out)[title]
    assert (after.id, after.link) == (before.id, before.link)
    assert not any(e.link.endswith("-2/") for e in entries(out).values())
    manifest = load_manifest(out)
    assert not any(p.startswith(page) for p in manifest["gone"])
    app: Flask = create_app({"FEEDSERVER_SETTINGS": settings})
    assert app.test_client().get("/" + page).status_code == 200


# -- a site with nothing published ------------------------------------------------------

def test_a_site_with_nothing_published_is_dated_by_its_first_build(tmp_path: Path) -> None:
    """No article dates a new site with an empty folder: its feeds carry the time its
    state's first build ran, kept from then on (the bytes stay the same build after
    build), not 1970, which the W3C validator calls an implausible date."""
    (tmp_path / "seeds").mkdir()
    (tmp_path / "config.toml").write_text(
        'site_title = "Empty"\nbase_url = "https://x.example/"\n', encoding="utf-8")
    settings = load_settings(tmp_path / "config.toml", env={})
    assert run_build(settings, now=NOW).published
    out = Path(settings.output_dir)
    names = ("feed.atom", "feed.rss", "feed.json", "feeds.opml", "index.html")
    first = {name: (out / name).read_bytes() for name in names}
    for name in ("feed.atom", "feed.rss"):
        feed = parse_feed(out / name)
        assert not feed.entries and feed.feed.updated_parsed[:6] == NOW.utctimetuple()[:6]
    assert run_build(settings, now=NOW + timedelta(days=3)).published
    assert {name: (out / name).read_bytes() for name in names} == first
    client = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    for url in ("/feed.atom?q=nothing", "/feed.rss?since=2020-01-01T00%3A00%3A00Z"):
        answer = client.get(url)  # a filtered answer of it, as dated as the feed
        assert answer.status_code == 200 and answer.last_modified == NOW, url
        feed = feedparser.parse(io.BytesIO(answer.data),
                                response_headers={"content-type": answer.content_type})
        assert feed.feed.updated_parsed[:6] == NOW.utctimetuple()[:6], url
