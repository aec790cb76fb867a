"""``pages = false``: feeds, OPML, catalog and embeds are published, HTML pages are not.

A site whose pages live elsewhere asks for the feeds only.  The feeds must be the
very bytes a ``pages = true`` build publishes (a reader cannot tell the two apart),
the lists and embeds are still there, the web app answers 404 for every page path,
and turning the setting off on a site that had pages removes them at the next build.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import feedparser
import pytest

from feedserver.build.run import run_build
from feedserver.config import Settings, load_settings
from feedserver.core import layout
from feedserver.publish.output import ENCODINGS, MANIFEST, META_DIR
from feedserver.web.app import create_app
from tests.conftest import NOW

FEEDS = ("feed.rss", "feed.atom", "feed.json")


def tree(out: Path) -> dict[str, bytes]:
    """Every published file but the compressed bodies and the bookkeeping folder."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and META_DIR not in p.relative_to(out).parts
            and not p.name.endswith(tuple(ENCODINGS.values()))}


def settings_for(site_dir: Path, name: str, pages: bool) -> Settings:
    """The fixture site's config with its own output and state folders."""
    return load_settings(site_dir / "config.toml", env={
        "FEEDSERVER_OUTPUT_DIR": str(site_dir / f"out-{name}"),
        "FEEDSERVER_STATE_DIR": str(site_dir / f"state-{name}"),
        "FEEDSERVER_PAGES": "true" if pages else "false", "FEEDSERVER_POLL_BUDGET": "0",
        # The config's topic rules make the topic pages; detection would only add time.
        "FEEDSERVER_DETECT_TOPICS": "false", "FEEDSERVER_DETECT_LANGUAGE": "false"})


@pytest.fixture
def both(site_dir: Path) -> tuple[Settings, dict[str, bytes], dict[str, bytes]]:
    """Settings of the pages-off build, and the output trees of both builds."""
    on, off = settings_for(site_dir, "on", True), settings_for(site_dir, "off", False)
    assert on.pages and not off.pages
    for settings in (on, off):
        report = run_build(settings, now=NOW)
        assert report.published and not report.errors
    return off, tree(Path(on.output_dir)), tree(Path(off.output_dir))


def test_feeds_are_the_same_bytes(both: tuple[Settings, dict[str, bytes],
                                              dict[str, bytes]]) -> None:
    _, on, off = both
    feeds_on = {p: b for p, b in on.items() if p.rsplit("/", 1)[-1] in FEEDS}
    feeds_off = {p: b for p, b in off.items() if p.rsplit("/", 1)[-1] in FEEDS}
    assert len(feeds_on) >= 9  # all + at least two topics, three formats each
    assert feeds_off == feeds_on


def test_lists_and_embeds_published_pages_not(both: tuple[Settings, dict[str, bytes],
                                                          dict[str, bytes]]) -> None:
    settings, on, off = both
    for path in (layout.OPML, layout.CATALOG, layout.STYLESHEET):
        assert off[path] == on[path], path
    embeds = {p for p in on if p.startswith(f"{layout.EMBED}/")
              or p.endswith(f"/{layout.PREVIEW}") or p == layout.PREVIEW}
    assert embeds and embeds <= set(off)
    for path in embeds:
        assert off[path] == on[path], path
    pages = {p for p in on if p.endswith(layout.INDEX) and not p.startswith(f"{layout.EMBED}/")}
    assert layout.INDEX in pages and layout.TOPICS_INDEX in pages
    assert any(p.startswith(f"{layout.ARTICLES}/") for p in pages)
    assert not pages & set(off)
    manifest = json.loads((Path(settings.output_dir) / MANIFEST).read_text(encoding="utf-8"))
    assert not pages & set(manifest["files"])


def test_app_answers_404_for_pages(both: tuple[Settings, dict[str, bytes],
                                               dict[str, bytes]]) -> None:
    settings, on, _ = both
    client = create_app({"FEEDSERVER_SETTINGS": settings}).test_client()
    feed = client.get("/feed.rss")
    assert feed.status_code == 200
    parsed = feedparser.parse(io.BytesIO(feed.data))
    assert parsed.entries and not parsed.bozo
    article = parsed.entries[0].link.removeprefix(settings.base_url)
    assert article.startswith(f"{layout.ARTICLES}/")
    topic = next(p for p in on if p.startswith(f"{layout.TOPICS}/") and p != layout.TOPICS_INDEX
                 and p.endswith(layout.INDEX))
    for url in ("/", "/topics/", f"/{article}", "/" + topic.removesuffix(layout.INDEX)):
        assert client.get(url).status_code == 404, url
    assert client.get("/feeds.opml").status_code == 200
    catalog = client.get("/topics.json").get_json()
    assert len(catalog["channels"]) * len(FEEDS) == sum(
        1 for p in on if p.rsplit("/", 1)[-1] in FEEDS)
    assert client.get("/embed/all/").status_code == 200


def test_turning_pages_off_removes_them(site_dir: Path) -> None:
    settings = settings_for(site_dir, "switch", True)
    assert run_build(settings, now=NOW).published
    out = Path(settings.output_dir)
    assert (out / layout.INDEX).is_file()
    had = tree(out)
    report = run_build(replace(settings, pages=False), now=NOW)
    assert report.published and not report.errors
    now = tree(out)
    assert not (out / layout.INDEX).exists()
    assert not [p for p in now if p.startswith(f"{layout.ARTICLES}/")]
    assert {p: b for p, b in now.items() if p.rsplit("/", 1)[-1] in FEEDS} == \
        {p: b for p, b in had.items() if p.rsplit("/", 1)[-1] in FEEDS}
    again = run_build(replace(settings, pages=True), now=NOW)
    assert again.published and tree(out) == had
    shutil.rmtree(out)


def test_filtered_feeds_work_without_pages(
        both: tuple[Settings, dict[str, bytes], dict[str, bytes]], site_dir: Path) -> None:
    """The item records combined and filtered feeds are drawn from are published with
    or without pages, the same records, and a second build keeps them (signed)."""
    off, _, _ = both
    on_out, off_out = Path(site_dir / "out-on"), Path(off.output_dir)
    records = sorted((off_out / layout.QUERY_DIR).rglob("*.json"))
    assert len(records) > 1
    for record in records:
        assert record.read_bytes() == (on_out / record.relative_to(off_out)).read_bytes()
    client = create_app({"FEEDSERVER_SETTINGS": off}).test_client()
    full = feedparser.parse(io.BytesIO(client.get("/feed.atom").get_data()))
    limited = client.get("/feed.atom?limit=1")
    assert limited.status_code == 200
    entries = feedparser.parse(io.BytesIO(limited.get_data())).entries
    assert [e.id for e in entries] == [full.entries[0].id]
    again = run_build(off, now=NOW)
    assert not [path for path in again.written if path.startswith(layout.QUERY_DIR)
                and not path.endswith("index.json")]
