"""Incremental pages: only what changed is rendered, and the result is a full build's bytes.

The HTML pages, embed views, OPML and catalog follow the feeds (see
:mod:`feedserver.build.page_signatures`): a one-file edit renders that article's page and
the pages of the channels listing it; every other file keeps its bytes and
its mtime.  A series of incremental builds (edit, add, delete, rename, topic
change, a topic losing its last article) must end with exactly the output
tree a fresh full build of the same state writes.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks.corpus import generate
from feedserver.build import forkcost, presence
from feedserver.build.helper import Helper
from feedserver.build.page_signatures import SITE_PAGES
from feedserver.build.run import BuildMemory, BuildReport, run_build
from feedserver.config import Settings, load_settings
from feedserver.core.records import Article
from feedserver.publish.manifest import load_manifest
from feedserver.publish.output import ENCODINGS, META_DIR
from feedserver.render import pages
from tests.conftest import NOW, ROOT, write

Build = Callable[..., BuildReport]


def tree(out: Path) -> dict[str, bytes]:
    """Every published file (compressed bodies included), the bookkeeping folder aside."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and META_DIR not in p.relative_to(out).parts}


def mtimes(out: Path) -> dict[str, int]:
    return {path: (out / path).stat().st_mtime_ns for path in tree(out)}


def etags(out: Path) -> dict[str, str]:
    files = load_manifest(out)["files"]
    return {path: entry["etag"] for path, entry in files.items()}


def plain(path: str) -> str:
    """A compressed body's path -> the path of the file it encodes."""
    for suffix in ENCODINGS.values():
        if path.endswith(suffix):
            return path.removesuffix(suffix)
    return path


def site(folder: Path, seeds: Path, state: Path | None = None) -> Settings:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    return load_settings(folder / "config.toml", env={
        "FEEDSERVER_SEEDS_DIR": str(seeds), "FEEDSERVER_OUTPUT_DIR": str(folder / "out"),
        "FEEDSERVER_STATE_DIR": str(state or folder / "state"),
        "FEEDSERVER_BUILD_PROCESSES": "1"})


def listed_in(out: Path, url: str) -> dict[str, str]:
    """Channels whose JSON Feed lists ``url``: slug -> folder ('' for all)."""
    found = {}
    for feed in out.rglob("feed.json"):
        folder = str(feed.parent.relative_to(out)) + "/"
        if "archive" in feed.parent.relative_to(out).parts:  # a channel's history pages
            continue
        if url in {item["url"] for item in json.loads(feed.read_bytes())["items"]}:
            found[feed.parent.name if folder != "./" else "all"] = "" if folder == "./" else folder
    return found


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Slugs of the article pages each build renders, in order."""
    seen: list[str] = []
    original = pages._Renderer.article

    def counted(self: Any, article: Article) -> Any:
        seen.append(article.slug)
        return original(self, article)

    monkeypatch.setattr(pages._Renderer, "article", counted)
    return seen


def _steps(seeds: Path) -> list[Callable[[], object]]:
    """A publisher's week: edit, add, delete, rename, topic change, topic emptied."""
    md = sorted(seeds.rglob("*.md"))
    txt = sorted(seeds.rglob("*.txt"))
    new = seeds / "garden.md"
    return [
        lambda: write(md[0], md[0].read_text(encoding="utf-8") + "\nOne more paragraph.\n"),
        lambda: write(new, "---\ntitle: Garden news\ntags: [Gardening]\n---\nRoses.\n"),
        lambda: txt[0].unlink(),
        lambda: txt[1].rename(seeds / "renamed.txt"),
        lambda: write(md[1], md[1].read_text(encoding="utf-8").replace(
            "topics: [", "topics: [Beekeeping, ", 1)),
        lambda: write(new, "---\ntitle: Garden news\ntags: [Rail]\n---\nRoses, by train.\n"),
    ]


def test_incremental_pages_end_with_the_full_build_tree(tmp_path: Path,
                                                         rendered: list[str]) -> None:
    seeds = tmp_path / "seeds"
    generate(seeds, 60, seed=5)
    stepwise = site(tmp_path / "steps", seeds)
    assert not run_build(stepwise, now=NOW).errors
    full_render = len(rendered)
    when = NOW
    for step in _steps(seeds):
        step()
        when += timedelta(minutes=5)
        rendered.clear()
        report = run_build(stepwise, now=when)
        assert not report.errors
        assert len(rendered) <= 1 < full_render  # a step renders at most its article's page
    assert not (Path(stepwise.output_dir) / "topics/gardening/index.html").exists()
    full = site(tmp_path / "full", seeds, tmp_path / "full-state")
    shutil.copytree(Path(stepwise.state_dir), tmp_path / "full-state")  # same ids and dates
    rendered.clear()
    assert not run_build(full, now=when).errors
    assert len(rendered) == full_render  # one added, one deleted
    steps_out, full_out = Path(stepwise.output_dir), Path(full.output_dir)
    assert tree(steps_out) == tree(full_out)
    assert etags(steps_out) == etags(full_out)


def test_one_file_edit_rewrites_its_page_and_its_channels_pages_only(
        build: Build, settings: Settings, rendered: list[str]) -> None:
    build()
    out, seeds = Path(settings.output_dir), Path(settings.seeds_dir)
    before = mtimes(out)
    rendered.clear()
    story = seeds / "2026-10-14-rail-freight.md"
    write(story, story.read_text(encoding="utf-8") + "\nA late correction.\n")
    report = build(now=NOW + timedelta(minutes=1))
    after = mtimes(out)
    changed = {plain(p) for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert len(rendered) == 1
    page = f"articles/{rendered[0]}/index.html"
    listing = listed_in(out, f"{settings.base_url}articles/{rendered[0]}/")
    assert {"all", "transport", "trade"} <= set(listing)
    allowed = {page, *SITE_PAGES, *(f"embed/{slug}/index.html" for slug in listing),
               *(f"{folder}{name}" for folder in listing.values()
                 for name in ("index.html", "feed.rss", "feed.atom", "feed.json", "feed.html"))}
    # A listing channel's one archive page holding the article, for a channel with an
    # archive (RFC 5005 history; the bundled site's channels are shorter than a page).
    link = f"{settings.base_url}articles/{rendered[0]}/"
    archived = {f"{p.parent.relative_to(out)}/" for p in out.rglob("archive/*/feed.rss")
                if link in p.read_text(encoding="utf-8")}
    assert len(archived) <= len(listing)
    allowed |= {f"{folder}{name}" for folder in archived
                for name in ("index.html", "feed.rss", "feed.atom", "feed.json")}
    assert page in changed and "topics/trade/feed.rss" in changed
    assert changed <= allowed, changed - allowed
    assert "A late correction." in (out / page).read_text(encoding="utf-8")
    assert report.rendered_channels == len(listing) and len(before) == len(after) > 60
    rendered.clear()
    build(now=NOW + timedelta(minutes=2))  # nothing changed: nothing rendered, nothing moves
    assert rendered == [] and mtimes(out) == after


@pytest.mark.parametrize("fork_from", [presence.FORK_FROM, 1], ids=["here", "forked"])
def test_a_missing_page_is_rendered_again(build: Build, settings: Settings,
                                          rendered: list[str], fork_from: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Files and compressed bodies deleted by hand are made again, whether their
    absence is looked for in the build's process or in a fork beside it."""
    monkeypatch.setattr(presence, "FORK_FROM", fork_from)
    build()
    out = Path(settings.output_dir)
    slug = sorted((out / "articles").iterdir())[0].name
    page, frame = out / "articles" / slug / "index.html", out / "embed/all/index.html"
    feed = out / "topics/trade/feed.atom.br"
    body, frame_body, feed_body = page.read_bytes(), frame.read_bytes(), feed.read_bytes()
    page.unlink()
    frame.unlink()
    feed.unlink()
    rendered.clear()
    report = build(now=NOW + timedelta(minutes=1))
    assert rendered == [slug]
    assert page.read_bytes() == body and frame.read_bytes() == frame_body
    assert feed.read_bytes() == feed_body
    # One build as far as its caller sees: what it made again, once each.
    assert report.rendered_channels == 1 and report.parsed_files == 0
    assert sorted(set(report.written)) == sorted(report.written)
    assert {f"articles/{slug}/index.html", "embed/all/index.html",
            "topics/trade/feed.atom"} <= set(report.written)
    manifest = load_manifest(out)
    assert {f"articles/{slug}/index.html", "trade"} <= manifest["channels"].keys()


def test_a_big_long_lived_build_has_its_parse_helper_ready_before_the_first_edit(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first edit after a big scheduler starts does not wait for its parse helper to
    start and load the language model and the gazetteer: the build before it starts the
    helper and has it load them, and hold the media index, while nothing waits on it."""
    monkeypatch.setattr(forkcost, "RESIDENT_MAX", 1)
    asked: list[tuple[Any, ...]] = []
    real_ask = Helper.ask
    monkeypatch.setattr(Helper, "ask", lambda self, request: asked.append(request)
                        or real_ask(self, request))
    run_build(settings, now=NOW)  # as `feedserver serve` builds before its scheduler starts
    memory = BuildMemory.empty()
    run_build(settings, now=NOW, memory=memory)  # the scheduler's first: nothing to parse
    helper = memory.helpers["parse"]
    assert helper.alive
    assert [request[0] for request in asked if request[0] in ("warm", "parse")] == ["warm"]
    # What it loaded, asked here only for the test: a build never waits for this answer.
    assert helper.answer(helper.memo["warm"], 60) == ("warmed", {"language": True,
                                                                 "topics": True})
    run_build(settings, now=NOW + timedelta(seconds=30), memory=memory)  # nothing changed
    assert [request[0] for request in asked].count("warm") == 1  # once per helper
    asked.clear()
    edited = sorted(Path(settings.seeds_dir).rglob("*.md"))[0]
    write(edited, edited.read_text(encoding="utf-8") + "\nA paragraph added by hand.\n")
    report = run_build(settings, now=NOW + timedelta(minutes=1), memory=memory)
    assert report.parsed_files == 1 and not report.errors
    parses = [request for request in asked if request[0] == "parse"]
    assert len(parses) == 1 and parses[0][3] is None  # the index it was warmed with
    assert "A paragraph added by hand." in (Path(settings.output_dir) / "feed.json").read_text(
        encoding="utf-8")
    helper.close()


def test_a_big_process_builds_an_edit_without_a_fork_of_its_own(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a process too big to fork for a small job (every process is, at a limit of one
    byte), a long-lived build parses and checks for missing files through its helper
    programs and renders here: an edit and files deleted by hand come out as they do
    with forks, and a helper killed between builds only sends its work back here."""
    monkeypatch.setattr(presence, "FORK_FROM", 1)
    monkeypatch.setattr(forkcost, "RESIDENT_MAX", 1)
    started: list[str] = []
    real_start = Helper._start
    monkeypatch.setattr(Helper, "_start", lambda self: started.append(self.kind)
                        or real_start(self))
    run_build(settings, now=NOW)  # a build with a memory of its own starts none for itself
    assert started == []
    memory = BuildMemory.empty()
    run_build(settings, now=NOW, memory=memory)
    seeds, out = Path(settings.seeds_dir), Path(settings.output_dir)
    edited = sorted(seeds.rglob("*.md"))[0]
    write(edited, edited.read_text(encoding="utf-8") + "\nA paragraph added by hand.\n")
    slug = sorted((out / "articles").iterdir())[-1].name
    page, gz = out / "articles" / slug / "index.html", out / "topics/trade/feed.atom.gz"
    page.unlink()
    gz.unlink()
    forked: list[int] = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forked.append(1) or real_fork())
    report = run_build(settings, now=NOW + timedelta(minutes=1), memory=memory)
    assert forked == [] and report.parsed_files == 1 and not report.errors
    assert {f"articles/{slug}/index.html", "topics/trade/feed.atom"} <= set(report.written)
    assert gzip.decompress(gz.read_bytes()) == (out / "topics/trade/feed.atom").read_bytes()
    assert "A paragraph added by hand." in (out / "feed.json").read_text(encoding="utf-8")
    body = page.read_bytes()
    helpers = {kind: helper.pid for kind, helper in memory.helpers.items()}
    assert set(helpers) == {"presence", "parse"} and None not in helpers.values()

    os.kill(helpers["presence"], signal.SIGKILL)  # between builds: the next one checks here
    memory.helpers["presence"].process.wait()  # type: ignore[union-attr]
    page.unlink()
    report = run_build(settings, now=NOW + timedelta(minutes=2), memory=memory)
    assert page.read_bytes() == body and forked == [] and not report.errors
    assert memory.helpers["presence"].pid not in (None, helpers["presence"])  # a new one
    assert started == ["presence", "parse", "presence"]
    for helper in memory.helpers.values():
        process = helper.process
        helper.close()
        assert process is not None and process.returncode == 0  # left when its pipe ended


def test_the_presence_check_is_asked_for_after_the_rendering(
        build: Build, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fork looking for files deleted by hand has the whole build to answer: the
    build renders first (what the signatures say is stale), then asks it."""
    import feedserver.build.run as run

    build()
    order: list[str] = []
    real_missing, real_render = presence.Presence.missing, run.render_site

    def missing(self: presence.Presence) -> frozenset[str]:
        order.append("missing")
        return real_missing(self)

    def render(*args: Any, **kwargs: Any) -> Any:
        order.append("render")
        return real_render(*args, **kwargs)

    monkeypatch.setattr(presence.Presence, "missing", missing)
    monkeypatch.setattr(run, "render_site", render)
    write(Path(settings.seeds_dir) / "extra.md", "---\ntitle: Extra\n---\nMore.\n")
    build(now=NOW + timedelta(minutes=1))
    assert order == ["render", "missing"]
