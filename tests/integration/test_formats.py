"""Every fact about a feed format comes from its Format: files, CORS, links, cost, imports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from feedserver.build import parallel
from feedserver.build import run as build_run
from feedserver.build.render_gate import Output, render_channel
from feedserver.build.run import render_site, run_build
from feedserver.config import Settings
from feedserver.core.records import Rendered
from feedserver.render.embed import render_embeds
from feedserver.render.formats import FORMATS, fingerprint, register, unregister
from feedserver.render.pages import render_pages
from feedserver.render.site import Site
from tests.conftest import NOW, ROOT
from tests.integration.test_dummy_format import TEXT

# What other sites' scripts could read before the manifest said so (web.published.CORS_TYPES),
# besides the feeds: OPML, the JSON catalog, the embed scripts.
READABLE = {"text/x-opml", "application/json", "application/javascript"}


def built_site(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Site:
    """The site a cold build of the seeds renders (caught on its way to the renderers)."""
    sites: list[Site] = []

    def render(site: Site, renderer: object = None, *args: Any, **kwargs: Any) -> Output:
        sites.append(site)
        return render_site(site, renderer, *args, **kwargs)

    monkeypatch.setattr(build_run, "render_site", render)
    assert run_build(settings, now=NOW).published
    return sites[0]


def _by_file(path: str) -> str:
    return next(fmt.name for fmt in FORMATS.values() if path.rpartition("/")[2] == fmt.filename)


@pytest.fixture
def private_text() -> Iterator[None]:
    """The dummy format, registered with ``cors=False`` (so both values are seen)."""
    register(replace(TEXT, cors=False))
    yield
    unregister(TEXT.name)


def test_every_feed_file_carries_its_format_and_cors(settings: Settings, private_text: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    site = built_site(settings, monkeypatch)
    alone = [f for c in site.channels for f in render_channel(site, c).files]
    staged: list[Rendered] = []
    real = parallel.prepare

    def prepare(out_dir: Path, item: Rendered, previous: object) -> parallel.Prepared:
        staged.append(item)
        return real(out_dir, item, None)

    monkeypatch.setattr(parallel, "prepare", prepare)
    output = parallel.Executor(Path(settings.output_dir), {}, 1)(site, list(site.channels))
    parallel.discard(output.staged)
    for files in (alone, staged):
        assert len(files) == len(site.channels) * 4
        for item in files:
            fmt = FORMATS[_by_file(item.path)]
            assert (item.format, item.cors, item.media_type) == \
                (fmt.name, fmt.cors, fmt.media_type), item.path
        assert {i.cors for i in files if i.format == "txt"} == {False}


def test_pages_and_embeds_mark_what_other_sites_may_read(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    site = built_site(settings, monkeypatch)
    files = render_pages(site) + render_embeds(site)
    assert {f.path for f in files} >= {"feeds.opml", "topics.json", "embed/all.js"}
    for item in files:
        assert item.format == "" and item.cors == (item.media_type.split(";")[0] in READABLE), \
            item.path


def test_pages_and_embeds_take_labels_from_the_formats(
        settings: Settings, private_text: None, monkeypatch: pytest.MonkeyPatch) -> None:
    site = built_site(settings, monkeypatch)
    files = {f.path: f.body.decode() for f in render_pages(site) + render_embeds(site)}
    base = settings.base_url
    assert 'type="text/plain">Plain text</a>' in files["index.html"]  # each channel's links
    assert '(Plain text)" href="' in files["topics/energy/index.html"]  # autodiscovery
    assert 'type="text/plain" target="_blank" rel="noopener">Plain text</a>' in \
        files["embed/all/index.html"]
    assert f"<li>Plain text: <code>{base}feed.txt</code></li>" in files["feed.html"]
    assert f'<a href="{base}feed.txt">Plain text</a> · ' in files["index.html"]  # the footer
    assert f'"txt": "{base}feed.txt"' in files["topics.json"]


def test_the_workers_schedule_by_each_formats_cost(private_text: None) -> None:
    assert parallel.split_worth() == parallel.SPLIT_ITEMS * (5 + 5 + 1 + TEXT.cost)


def test_importing_the_formats_loads_no_renderer_or_parser_library() -> None:
    code = ("import sys, feedserver.render.formats, feedserver.render.feeds, feedserver.validate\n"
            "print(sorted(m for m in ('feedgen', 'lxml', 'feedparser', 'orjson', 'jinja2')"
            " if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, timeout=60, check=True)
    assert found.stdout.strip() == "[]"


def test_the_registry_fingerprint_follows_what_is_registered() -> None:
    before = fingerprint()
    assert fingerprint() == before
    register(TEXT)
    try:
        with_text = fingerprint()
        FORMATS["txt"] = replace(TEXT, label="Text")
        assert fingerprint() not in (before, with_text)
        FORMATS["txt"] = TEXT
        assert fingerprint() == with_text
    finally:
        unregister(TEXT.name)
    assert fingerprint() == before


def test_a_format_registered_on_an_existing_site_reaches_its_pages(settings: Settings) -> None:
    assert run_build(settings, now=NOW).published
    register(TEXT)
    try:
        assert run_build(settings, now=NOW).published
    finally:
        unregister(TEXT.name)
    out = Path(settings.output_dir)
    assert (out / "feed.txt").is_file()  # channels see the missing file and render again
    for page in ("index.html", "topics.json", "topics/energy/index.html", "feed.html"):
        assert "feed.txt" in (out / page).read_text(encoding="utf-8"), page
