"""embed.py, pure: widget loaders, iframe views and feed previews from an in-memory Site."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from feedserver.build.assemble import assemble
from feedserver.build.codeversion import render_version
from feedserver.build.run import parse_files
from feedserver.config import Settings
from feedserver.core.records import Identity, Rendered, SourceFile
from feedserver.render.embed import (
    FRAME_CSS,
    UNKNOWN,
    WIDGET,
    asset,
    frame_path,
    loader_path,
    preview_path,
    render_embeds,
)
from feedserver.render.site import Site
from tests.conftest import NOW

HOSTILE = "Solar <img src=x onerror=alert(1)> & 1<2 gas"
SHOWN = "Solar & 1<2 gas"  # tags leave titles (issue 12); the rest is text, escaped once
ARTICLES = {
    "a.md": "---\ntitle: Wind farm opens\ndate: 2026-11-01\ntopics: [energy]\n---\nBody one.\n",
    "b.md": f"---\ntitle: '{HOSTILE}'\ndate: 2026-11-02\ntopics: [energy]\n---\nBody two.\n",
    "c.md": "---\ntitle: Rail news\ndate: 2026-11-03\ntopics: [transport]\n---\nBody three.\n",
}


def make_site(settings: Settings, files: dict[str, str] = ARTICLES) -> Site:
    """Parse and assemble without a disk: identities are made up from the paths."""
    sources = [SourceFile(path, text.encode(), 0.0) for path, text in files.items()]
    parsed, problems = parse_files(sources, settings)
    assert not [p for p in problems if p.severity == "error"]
    ids = {path: Identity(f"urn:test:{i}", path.split(".")[0], NOW - timedelta(days=30),
                          NOW - timedelta(days=30))
           for i, path in enumerate(sorted(parsed))}
    site, _ = assemble(parsed, ids, settings, NOW, render_version())
    return site


class Anchors(HTMLParser):
    """Every <a> (attributes and text) and every element name of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.anchors: list[dict[str, str]] = []
        self.tags: list[str] = []
        self._text: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.anchors.append({k: v or "" for k, v in attrs})
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._text is not None:
            self.anchors[-1]["text"] = "".join(self._text)
            self._text = None


@pytest.fixture
def site(settings: Settings) -> Site:
    return make_site(settings)


def by_path(files: list[Rendered]) -> dict[str, Rendered]:
    return {f.path: f for f in files}


def test_every_channel_gets_a_loader_a_frame_and_a_preview(site: Site) -> None:
    files = by_path(render_embeds(site))
    assert len(files) == len(render_embeds(site))  # no path twice
    for channel in site.channels:
        for path in (loader_path(channel.slug), frame_path(channel.slug), preview_path(channel)):
            assert files[path].channel == channel.slug
    assert {WIDGET, FRAME_CSS, UNKNOWN} <= set(files)
    assert files[loader_path("all")].media_type == "application/javascript; charset=utf-8"
    assert preview_path(site.channels[0]) == "feed.html"


def test_loader_holds_only_its_channel_url_and_the_versioned_widget(site: Site) -> None:
    files = by_path(render_embeds(site))
    version = hashlib.sha256(asset(WIDGET)).hexdigest()[:12]
    widget_url = f"{site.context.base_url}{WIDGET}?v={version}"
    for channel in site.channels:
        text = files[loader_path(channel.slug)].body.decode()
        pushed = re.search(r"q\.push\(\{script: s, channel: (.+?), feed: (.+?)\}\);", text)
        assert pushed, text
        assert json.loads(pushed.group(1)) == channel.slug
        assert json.loads(pushed.group(2)) == site.context.feed_url(channel, "feed.json")
        assert f"e.src = {json.dumps(widget_url)};" in text
        assert "document.currentScript" in text
    unknown = files[UNKNOWN].body.decode()
    assert 'channel: "", feed: null}' in unknown


def test_widget_never_parses_feed_data_as_html() -> None:
    source = asset(WIDGET).decode()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in source
    assert "textContent" in source and "setAttribute" in source


def test_frame_lists_the_channel_with_new_tab_links_and_escaped_titles(site: Site) -> None:
    files = by_path(render_embeds(site))
    energy = next(c for c in site.channels if c.slug == "energy")
    assert SHOWN in {a.title for a in energy.articles}
    html = files[frame_path("energy")].body.decode()
    page = Anchors(html)
    listed = [a for a in page.anchors if a["href"] in {x.link for x in energy.articles}]
    assert [(a["href"], a["text"]) for a in listed] == \
        [(x.link, x.title) for x in energy.articles]
    for anchor in page.anchors:
        assert anchor["target"] == "_blank" and "noopener" in anchor["rel"].split()
    assert "img" not in page.tags and "script" not in page.tags
    assert "Solar &amp; 1&lt;2 gas" in html and "onerror" not in html
    assert f'href="{energy.html_url}"' in html


def test_preview_tells_how_to_subscribe_and_lists_the_items(site: Site) -> None:
    files = by_path(render_embeds(site))
    for channel in site.channels:
        html = files[preview_path(channel)].body.decode()
        for name in ("feed.rss", "feed.atom", "feed.json"):
            assert f"<code>{site.context.feed_url(channel, name)}</code>" in html
        assert "address bar" in html
        hrefs = [a["href"] for a in Anchors(html).anchors]
        linked = [href for href in hrefs if href in {a.link for a in channel.articles}]
        assert linked == [a.link for a in channel.articles]
        assert "<img" not in html


def test_output_is_deterministic_and_ignores_the_clock(settings: Settings) -> None:
    first = render_embeds(make_site(settings))
    again = render_embeds(make_site(settings))
    assert [(f.path, f.body, f.last_modified) for f in first] == \
        [(f.path, f.body, f.last_modified) for f in again]


def test_failed_channels_keep_their_last_files(site: Site) -> None:
    paths = set(by_path(render_embeds(site, {"energy"})))
    assert loader_path("energy") not in paths and frame_path("energy") not in paths
    assert loader_path("transport") in paths


def test_site_title_cannot_close_the_loader_comment(settings: Settings) -> None:
    hostile = replace(settings, site_title="News */ alert(1) /*")
    text = by_path(render_embeds(make_site(hostile)))[loader_path("all")].body.decode()
    comment, _, code = text.partition("*/")
    assert "News * / alert(1) /*" in comment
    assert code.lstrip().startswith("(function (w, d, s) {")
