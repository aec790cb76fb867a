"""Embeds and feeds in headless Chromium: feedserver on one port, host pages on another.

feedserver runs as in production (``feedserver serve``, granian); the host
pages are plain files from ``http.server`` on a second 127.0.0.1 port, so the
widget's fetch is cross-origin (CORS) and the iframe is framed by another
origin (frame-ancestors).  What the browser shows is compared with the feed a
reader gets from the same server.  Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest

from tests.browser import Watch, chromium, feedserver, fetch, missing_reason, screenshot
from tests.browser import static_site as host_site
from tests.conftest import ROOT, recent, write
from tests.system.test_serve_e2e import free_port

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")

READER = ("application/atom+xml,application/rdf+xml,application/rss+xml,"
          "application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1")  # feedparser's own Accept
HOSTILE = "Gas pipeline <img src=x onerror=alert(1)> 1<2 & co deal signed"
SHOWN = "Gas pipeline 1<2 & co deal signed"  # tags leave titles (issue 12); the rest is text
LINKS = "els => els.map(e => [e.textContent, e.getAttribute('href')])"
HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>{title}</title>
{head}</head>
<body><h1>{title}</h1>
{body}
</body></html>
"""

STYLED = """<style>body { font: 16px/1.5 Georgia, serif; max-width: 40rem; margin: 2rem auto; }
.feedserver-embed { --feedserver-link-color: #07693a; }</style>"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """feedserver serve over the bundled seeds plus an article with a hostile title."""
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(ROOT / "seeds", root / "seeds")
    shutil.copy(ROOT / "config.toml", root / "config.toml")
    write(root / "seeds" / "2026-09-20-pipeline-deal.md",
          f"---\ntitle: '{HOSTILE}'\ndate: {recent()}\ntopics: [energy]\n"
          "summary: A summary that <b>stays</b> text, 1<2.\n---\n"
          "The gas pipeline deal was signed.\n")
    with feedserver(root / "config.toml", free_port()) as url:
        yield url


@pytest.fixture(scope="module")
def host_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("host")


@pytest.fixture(scope="module")
def host(server: str, host_folder: Path) -> Iterator[str]:
    """Host pages on another origin, each embedding feedserver one way."""
    folder = host_folder
    pages = {
        "script": ("Script embed", f"""<h2>Energy</h2>
<script src="{server}embed/energy.js" data-limit="50" data-summary async></script>
<h2>Latest, in German</h2>
<div id="news">Loading…</div>
<script src="{server}embed/all.js" data-target="#news" data-lang="de" data-limit="3" async>
</script>"""),
        "frame": ("Iframe embed", f'<iframe src="{server}embed/energy/" title="Energy" '
                                  'width="100%" height="520" style="border:1px solid #ccc">'
                                  "</iframe>"),
        "strict": ("Strict host", f"""<script src="{server}embed/energy.js" async></script>"""),
        "missing": ("Missing channel", f"""<div id="slot">Loading…</div>
<script src="{server}embed/no-such-topic.js" data-target="#slot" async></script>"""),
    }
    strict = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
              f"script-src {server}; connect-src {server}; style-src 'self'\">")
    for name, (title, body) in pages.items():
        head = strict if name == "strict" else STYLED
        (folder / f"{name}.html").write_text(HOST_PAGE.format(title=title, body=body, head=head))
    with host_site(folder) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as context:
        yield context


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, Watch]]:
    watch = Watch()
    tab = watch.attach(browser.new_page())
    yield tab, watch
    tab.close()


def items(server: str, path: str) -> list[dict[str, Any]]:
    """The channel's items as a script (or reader) gets them: Accept */*."""
    kind, body = fetch(f"{server}{path}")
    assert kind == "application/feed+json; charset=utf-8"
    return list(json.loads(body)["items"])


def assert_quiet(watch: Watch) -> None:
    assert watch.errors == [] and watch.page_errors == [] and watch.dialogs == []


def test_script_embed_renders_the_channel_as_text(server: str, host: str,
                                                  page: tuple[Any, Watch]) -> None:
    tab, watch = page
    tab.goto(f"{host}script.html")
    tab.wait_for_selector("[data-channel=energy] .feedserver-embed__list")
    tab.wait_for_selector("#news .feedserver-embed__list")
    tab.wait_for_load_state("networkidle")
    energy = items(server, "topics/energy/feed.json")
    shown = tab.eval_on_selector_all("[data-channel=energy] a.feedserver-embed__link", LINKS)
    assert shown == [[i["title"], i["url"]] for i in energy]
    assert SHOWN in [title for title, _ in shown]
    summaries = tab.eval_on_selector_all("[data-channel=energy] .feedserver-embed__summary",
                                         "els => els.map(e => e.textContent)")
    assert summaries == [i["summary"] for i in energy]
    assert "A summary that stays text, 1<2." in summaries  # tags leave summaries (issue 12)
    assert tab.evaluate("document.querySelectorAll('.feedserver-embed img, "
                        ".feedserver-embed b').length") == 0
    latest = items(server, "feed.json")[:3]
    assert tab.eval_on_selector_all("#news a", LINKS) == [[i["title"], i["url"]] for i in latest]
    assert tab.locator("#news .feedserver-embed__summary").count() == 0
    dates = tab.eval_on_selector_all("#news time", """els => els.map(e => [e.textContent,
        new Intl.DateTimeFormat('de', {year: 'numeric', month: 'short', day: 'numeric'})
            .format(new Date(e.getAttribute('datetime'))), e.getAttribute('datetime')])""")
    for (text, german, stamp), item in zip(dates, latest, strict=True):
        assert text == german and stamp[:10] == item["date_published"][:10]
    color = tab.eval_on_selector("[data-channel=energy] a", "e => getComputedStyle(e).color")
    assert color == "rgb(7, 105, 58)"  # the host page's custom property wins
    screenshot(tab, "embed-script")
    assert_quiet(watch)


def test_iframe_embed_lists_the_channel_with_new_tab_links(server: str, host: str,
                                                           page: tuple[Any, Watch]) -> None:
    tab, watch = page
    tab.goto(f"{host}frame.html")
    frame = tab.frame_locator("iframe")
    frame.locator("ol.headlines a").first.wait_for()
    tab.wait_for_load_state("networkidle")
    inner = next(f for f in tab.frames if f.url == f"{server}embed/energy/")
    links = inner.eval_on_selector_all(
        "a", "els => els.map(e => [e.textContent, e.getAttribute('href'), e.target, e.rel])")
    energy = items(server, "topics/energy/feed.json")
    listed = [[text, href] for text, href, *_ in links if "/articles/" in href]
    assert listed == [[i["title"], i["url"]] for i in energy]
    assert SHOWN in [text for text, _ in listed]
    assert all(target == "_blank" and "noopener" in rel.split() for *_, target, rel in links)
    assert inner.evaluate("document.querySelectorAll('img, script').length") == 0
    screenshot(tab, "embed-iframe")
    assert_quiet(watch)


def test_host_page_with_a_strict_csp(server: str, host: str, page: tuple[Any, Watch]) -> None:
    """No inline style or script is needed: the page's policy reports nothing."""
    tab, watch = page
    tab.goto(f"{host}strict.html")
    tab.wait_for_selector(".feedserver-embed__list")
    tab.wait_for_load_state("networkidle")
    energy = items(server, "topics/energy/feed.json")[:5]  # default data-limit
    shown = tab.eval_on_selector_all("a.feedserver-embed__link", LINKS)
    assert shown == [[i["title"], i["url"]] for i in energy]
    assert tab.eval_on_selector("time", "e => getComputedStyle(e).display") == "block"
    screenshot(tab, "embed-strict-csp")
    assert_quiet(watch)


def test_missing_channel_shows_the_quiet_fallback(host: str, page: tuple[Any, Watch]) -> None:
    tab, watch = page
    tab.goto(f"{host}missing.html")
    note = tab.wait_for_selector("#slot .feedserver-embed__unavailable")
    assert note.text_content() == "feed unavailable"
    screenshot(tab, "embed-missing")
    assert_quiet(watch)


def test_unreachable_feed_fails_quietly(server: str, host: str,
                                        page: tuple[Any, Watch]) -> None:
    tab, watch = page
    tab.route("**/feed.json", lambda route: route.abort())
    tab.goto(f"{host}script.html")
    notes = tab.locator(".feedserver-embed__unavailable")
    notes.nth(1).wait_for()
    assert notes.all_text_contents() == ["feed unavailable", "feed unavailable"]
    assert tab.locator(".feedserver-embed__list").count() == 0
    assert watch.page_errors == [] and watch.dialogs == []
    # The only console lines are the browser's own reports of the blocked requests.
    assert watch.errors and all("net::ERR_FAILED" in line for line in watch.errors)


@pytest.mark.parametrize("path", ["feed.rss", "feed.atom", "topics/energy/feed.rss"])
def test_feeds_opened_in_the_browser_are_readable(server: str, path: str,
                                                  page: tuple[Any, Watch]) -> None:
    tab, watch = page
    response = tab.goto(f"{server}{path}")
    assert response.status == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    text = tab.inner_text("main")
    assert "address bar" in text and f"{server}{path}" in text
    kind, body = fetch(f"{server}{path}", accept=READER)
    assert kind.startswith(("application/rss+xml", "application/atom+xml"))
    feed = feedparser.parse(io.BytesIO(body), response_headers={"content-type": kind})
    assert not feed.bozo and feed.entries
    links = tab.eval_on_selector_all("ol.articles a", LINKS)
    assert links == [[e.title, e.link] for e in feed.entries]
    screenshot(tab, "feed-" + path.replace("/", "-"))
    assert_quiet(watch)


@pytest.mark.parametrize("path,slug,name", [("", "all", "page-index"),
                                            ("topics/energy/", "energy", "page-topic")])
def test_pages_offer_embed_snippets_that_work_when_pasted(
        server: str, host: str, host_folder: Path, path: str, slug: str, name: str,
        page: tuple[Any, Watch]) -> None:
    tab, watch = page
    tab.set_viewport_size({"width": 390, "height": 844})  # a phone
    response = tab.goto(f"{server}{path}")
    assert response.status == 200
    tab.click("details.embed summary")
    snippets = tab.locator("details.embed pre code").all_text_contents()
    assert [snippet.split('"')[1] for snippet in snippets] == \
        [f"{server}embed/{slug}.js", f"{server}embed/{slug}/"]
    assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert tab.evaluate("getComputedStyle(document.body).maxWidth") != "none"  # CSS applied
    screenshot(tab, name)
    assert_quiet(watch)
    # Pasted as they are into another site's page, both snippets show the channel.
    pasted = HOST_PAGE.format(title=f"Pasted snippets ({slug})", body="\n".join(snippets),
                              head=STYLED)
    (host_folder / f"pasted-{slug}.html").write_text(pasted)
    tab.goto(f"{host}pasted-{slug}.html")
    tab.wait_for_selector(f"[data-channel={slug}] .feedserver-embed__list")
    tab.frame_locator("iframe").locator("ol.headlines a").first.wait_for()
    tab.wait_for_load_state("networkidle")
    expected = items(server, "feed.json" if slug == "all" else f"topics/{slug}/feed.json")
    shown = tab.eval_on_selector_all(f"[data-channel={slug}] a", LINKS)
    assert shown == [[i["title"], i["url"]] for i in expected[:5]]  # the snippet's data-limit
    screenshot(tab, f"pasted-{slug}")
    assert_quiet(watch)


@pytest.mark.parametrize("path", ["no/such/page/", "topics/no-such-topic/"])
def test_the_404_page_is_styled_like_the_site(server: str, path: str,
                                              page: tuple[Any, Watch]) -> None:
    """Its stylesheet loads under its own CSP: the same layout as every other page."""
    tab, watch = page
    response = tab.goto(f"{server}{path}")
    assert response.status == 404
    tab.wait_for_load_state("networkidle")
    styled = "getComputedStyle(document.body).maxWidth"
    assert tab.evaluate(styled) != "none"  # the site's CSS applied
    assert tab.inner_text("header.site a.home") and "Not found" in tab.inner_text("main")
    screenshot(tab, "page-404")
    home = tab.evaluate(styled)
    tab.goto(server)
    assert tab.evaluate(styled) == home
    # The only console line is the browser's report of the 404 itself.
    assert all("404" in line for line in watch.errors), watch.errors
    assert watch.page_errors == [] and watch.dialogs == []


def test_screenshots_are_kept_out_of_git() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "/test-artifacts/" in ignored
    assert Path(ROOT / "test-artifacts").resolve().parent == ROOT
