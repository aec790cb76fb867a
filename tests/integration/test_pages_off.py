"""``pages = false``: feeds, OPML, catalog and embeds are published, HTML pages are not.

A site whose pages live elsewhere asks for the feeds only.  The feeds must be the
very bytes a ``pages = true`` build publishes (a reader cannot tell the two apart),
the lists and embeds are still there, the web app answers 404 for every page path,
and turning the setting off on a site that had pages removes them at the next build.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner

from feedserver.build.run import run_build
from feedserver.cli import main
from feedserver.config import Settings, load_settings
from feedserver.core import layout
from feedserver.core.errors import ConfigError
from feedserver.listen import pages_note, published_base
from feedserver.publish.manifest import load_manifest
from feedserver.publish.output import ENCODINGS, META_DIR
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
    manifest = load_manifest(Path(settings.output_dir))
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
    records = sorted(p for p in (off_out / layout.QUERY_DIR).rglob("*") if p.is_file())
    assert len(records) > 1 and any(p.suffix == ".record" for p in records)
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


PAGE_URL = "https://www.example.org/{year}/{month}/{slug}/"
SITE_URL = "https://www.example.org/"


def _linked(body: bytes, name: str) -> tuple[str, dict[str, str]]:
    """(channel link, {item id: item link}) of one feed document, as a reader reads it."""
    if name == "feed.json":
        doc = json.loads(body)
        return doc["home_page_url"], {i["id"]: i["url"] for i in doc["items"]}
    parsed = feedparser.parse(io.BytesIO(body))
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed.feed.link, {e.id: e.link for e in parsed.entries}


def test_items_and_channels_link_where_the_pages_live(site_dir: Path) -> None:
    """page_url and site_url: every feed (archive pages and combined feeds too), the OPML
    and the catalog link where the pages are; ids are the pages-on build's."""
    small = {"FEEDSERVER_MAX_ITEMS": "2", "FEEDSERVER_ARCHIVE_SIZE": "2"}
    on = replace(settings_for(site_dir, "here", True), max_items=2, archive_size=2)
    off = load_settings(site_dir / "config.toml", env={
        "FEEDSERVER_OUTPUT_DIR": str(site_dir / "out-there"),
        "FEEDSERVER_STATE_DIR": str(site_dir / "state-here"),  # the same ledger: same ids
        "FEEDSERVER_PAGES": "false", "FEEDSERVER_PAGE_URL": PAGE_URL,
        "FEEDSERVER_SITE_URL": SITE_URL, "FEEDSERVER_POLL_BUDGET": "0",
        "FEEDSERVER_DETECT_TOPICS": "false", "FEEDSERVER_DETECT_LANGUAGE": "false", **small})
    for settings in (on, off):
        report = run_build(settings, now=NOW)
        assert report.published and not report.errors
    here, there = tree(Path(on.output_dir)), tree(Path(off.output_dir))
    feeds = [p for p in there if p.rsplit("/", 1)[-1] in FEEDS]
    assert any(f"/{layout.ARCHIVE}/" in p for p in feeds)  # archive pages are among them
    assert set(feeds) == {p for p in here if p.rsplit("/", 1)[-1] in FEEDS}
    checked = 0
    for path in feeds:
        name = path.rsplit("/", 1)[-1]
        home, links = _linked(there[path], name)
        assert home == SITE_URL, path
        published = {}
        if name == "feed.json":
            published = {i["id"]: i["date_published"] for i in json.loads(there[path])["items"]}
        _, pages_here = _linked(here[path], name)
        assert set(links) == set(pages_here), path  # the same items, the same ids
        for item_id, link in links.items():
            slug = pages_here[item_id].removeprefix(f"{on.base_url}{layout.ARTICLES}/")
            slug = slug.removesuffix("/")
            assert "/" not in slug, pages_here[item_id]
            assert link.startswith(SITE_URL) and link.endswith(f"/{slug}/"), (path, link)
            if item_id in published:  # year and month of the publication date, UTC
                year, month = published[item_id][:4], published[item_id][5:7]
                assert link == PAGE_URL.format(year=year, month=month, slug=slug)
            checked += 1
    assert checked > 20
    opml = there[layout.OPML].decode()
    assert set(re.findall(r'htmlUrl="([^"]*)"', opml)) == {SITE_URL}
    client = create_app({"FEEDSERVER_SETTINGS": off}).test_client()
    topics = sorted({p.split("/")[1] for p in feeds if p.startswith(f"{layout.TOPICS}/")
                     and p.count("/") == 2})
    combined = client.get(f"/{layout.TOPICS}/{topics[0]},{topics[1]}/feed.json")
    assert combined.status_code == 200 and combined.get_json()["home_page_url"] == SITE_URL
    assert all(i["url"].startswith(SITE_URL) for i in combined.get_json()["items"])


@pytest.mark.parametrize("env,message", [
    ({"FEEDSERVER_PAGE_URL": PAGE_URL}, "'page_url' is for pages = false"),
    ({"FEEDSERVER_SITE_URL": SITE_URL}, "'site_url' is for pages = false"),
    ({"FEEDSERVER_PAGES": "false", "FEEDSERVER_PAGE_URL": "https://x.example/{year}/"},
     "page_url must name {slug}"),
    ({"FEEDSERVER_PAGES": "false", "FEEDSERVER_PAGE_URL": "https://x.example/{slug}/{title}"},
     "page_url must name {slug} and no other field"),
    ({"FEEDSERVER_PAGES": "false", "FEEDSERVER_PAGE_URL": "https://x.example/{slug"},
     "page_url:"),
    ({"FEEDSERVER_PAGES": "false", "FEEDSERVER_PAGE_URL": "/news/{slug}/"},
     "page_url must be an absolute http(s) URL"),
    ({"FEEDSERVER_PAGES": "false", "FEEDSERVER_SITE_URL": "example.org"},
     "site_url must be an absolute http(s) URL"),
])
def test_page_url_and_site_url_are_checked(site_dir: Path, env: dict[str, str],
                                           message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(site_dir / "config.toml", env=env)


def test_a_note_says_when_items_link_to_pages_nobody_publishes(site_dir: Path) -> None:
    assert pages_note(settings_for(site_dir, "on", True)) is None
    off = settings_for(site_dir, "off", False)
    assert "page_url is not set" in (pages_note(off) or "")
    assert pages_note(replace(off, page_url=PAGE_URL)) is None
    result = CliRunner().invoke(main, ["build", "--config", str(site_dir / "config.toml")],
                                env={"FEEDSERVER_PAGES": "false"})
    assert result.exit_code == 0, result.output
    assert "page_url is not set" in result.output


def test_a_replica_finds_the_base_url_when_the_home_page_is_elsewhere(site_dir: Path) -> None:
    off = replace(settings_for(site_dir, "off", False), page_url=PAGE_URL, site_url=SITE_URL)
    assert run_build(off, now=NOW).published
    assert published_base(Path(off.output_dir)) == off.base_url
