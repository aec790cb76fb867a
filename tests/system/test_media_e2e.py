"""Articles with media end to end: `feedserver serve` over real HTTP, Chromium, the W3C validator.

One server (granian, one worker) over a small site: the media article of
:mod:`tests.media_fixtures` (a picture beside it, a link to another article, an mp3
enclosure, a pdf attachment), its follow-up, and podcast settings for the whole site.
Every media URL the feeds carry is fetched over HTTP (200, and 206 for a range); the
article page and a widget with ``data-images`` are opened in headless Chromium, where
the pictures must have loaded (``naturalWidth > 0``); the built feeds, the podcast
channel included, go through the W3C Feed Validation Service's validator when it is
installed.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from werkzeug.datastructures import Headers

from tests.browser import Watch, chromium, feedserver, missing_reason, screenshot, static_site
from tests.media_fixtures import media_seeds, png
from tests.system.test_serve_e2e import free_port

# The W3C Feed Validation Service's validator (tests/w3c.py says how to set it up): run when
# FEEDSERVER_W3C_PYTHON names a Python that can import it, skipped otherwise.
W3C = Path(__file__).resolve().parent.parent / "w3c.py"
W3C_PYTHON = Path(os.environ.get("FEEDSERVER_W3C_PYTHON") or "/nonexistent")
CONFIG = """site_title = "Media desk"
[topics.energy]
name = "Energy"
phrases = ["solar"]

[podcast]
channels = ["all"]
image = "cover.png"
category = "Technology"
author = "Media desk"
owner_email = "desk@example.org"
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, bytes]]]:
    root = tmp_path_factory.mktemp("media-site")
    files = media_seeds(root / "seeds")
    (root / "seeds" / "cover.png").write_bytes(png(1400, 1400))
    (root / "config.toml").write_text(CONFIG, encoding="utf-8")
    with feedserver(root / "config.toml", free_port()) as url:
        yield url, root, files


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, Headers, bytes]:
    """Status, headers (by name in any case: HTTP's) and body of one GET."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                 headers=headers or {})
    answer = conn.getresponse()
    body = answer.read()
    conn.close()
    return answer.status, Headers(answer.getheaders()), body


def test_every_media_url_in_every_feed_answers_over_http(
        site: tuple[str, Path, dict[str, bytes]]) -> None:
    url, _, files = site
    by_name = {name.rsplit("/", 1)[1]: body for name, body in files.items()}
    seen: set[str] = set()
    for name in ("feed.rss", "feed.atom"):
        feed = feedparser.parse(url + name)
        assert feed.status == 200 and not feed.bozo
        item = next(e for e in feed.entries if e.title == "Solar farm tour")
        seen |= {e["href"] for e in item["enclosures"]}
        seen |= {m["url"] for m in item.get("media_content", [])}
        seen |= {m["url"] for m in item["media_thumbnail"]}
        if name == "feed.rss":
            assert item["itunes_duration"] == "3"  # the whole site is a podcast here
            artwork = feed.feed["image"]["href"]
            assert artwork.startswith(f"{url}media/cover.png?v=")  # versioned, like media
    with urllib.request.urlopen(url + "feed.json", timeout=10) as answer:
        doc = json.loads(answer.read())
    item = next(i for i in doc["items"] if i["title"] == "Solar farm tour")
    seen |= {item["image"], *(a["url"] for a in item["attachments"])}
    assert len(seen) == 3
    for media_url in sorted(seen):
        status, headers, body = fetch(media_url)
        name = urlsplit(media_url).path.rsplit("/", 1)[1]
        assert status == 200 and body == by_name[name], media_url
        assert headers["Accept-Ranges"] == "bytes"
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    mp3 = next(u for u in seen if ".mp3" in u)
    status, headers, body = fetch(mp3, {"Range": "bytes=0-1023"})
    assert status == 206 and body == by_name["tour.mp3"][:1024]
    assert headers["Content-Range"] == f"bytes 0-1023/{len(by_name['tour.mp3'])}"
    status, headers, body = fetch(mp3, {"Range": "bytes=30000-"})  # a player seeking
    assert status == 206 and body == by_name["tour.mp3"][30000:]
    status, headers, body = fetch(mp3, {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    status, headers, _ = fetch(artwork)
    assert status == 200 and headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert fetch(f"{url}articles/solar-farm-follow-up/")[0] == 200


def test_the_article_page_and_the_widget_show_the_media_in_chromium(
        site: tuple[str, Path, dict[str, bytes]], tmp_path: Path) -> None:
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    url, _, _ = site
    (tmp_path / "host.html").write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" '
        'href="data:,"><title>Host</title></head><body><h1>Host</h1>'
        f'<script src="{url}embed/all.js" data-images async></script></body></html>')
    watch = Watch()
    with chromium() as context, static_site(tmp_path) as host:
        page = watch.attach(context.new_page())
        page.goto(f"{url}articles/solar-farm-tour/", wait_until="load")
        # The pictures are loading="lazy": the load event does not wait for them (one CI
        # run in about ten read them before they came). Wait until both are done, loaded
        # or broken, then look.
        page.wait_for_function(
            "() => [...document.querySelectorAll('article img')].every(e => e.complete)",
            timeout=20_000)
        pictures = page.eval_on_selector_all(
            "article img", "els => els.map(e => [e.complete, e.naturalWidth, e.alt])")
        assert pictures == [[True, 6, "Rows of panels"], [True, 6, "A panel"]]
        duration = page.eval_on_selector(
            "audio", """a => new Promise(done => {
                if (a.readyState >= 1) return done(a.duration);
                a.addEventListener('loadedmetadata', () => done(a.duration));
                a.addEventListener('error', () => done(-1));
                a.load(); })""")
        assert 2.5 < duration < 3.5  # the player read the mp3 through the server's ranges
        links = page.eval_on_selector_all(".media a", "els => els.map(e => e.textContent)")
        assert links == ["tour.mp3", "Slides of the tour"]
        page.click("text=follow-up")
        page.wait_for_url(f"{url}articles/solar-farm-follow-up/")
        screenshot(page, "media-follow-up")
        page.goto(f"{url}articles/solar-farm-tour/", wait_until="load")
        screenshot(page, "media-article")
        widget = watch.attach(context.new_page())
        widget.goto(f"{host}host.html")
        widget.wait_for_selector(".feedserver-embed__image")
        # One item has a picture; it loads across origins (times out, and fails, if not).
        widget.wait_for_function("() => [...document.querySelectorAll("
                                 "'.feedserver-embed__image')].every(i => i.naturalWidth > 0)")
        sizes = widget.eval_on_selector_all(".feedserver-embed__image",
                                            "els => els.map(e => e.naturalWidth)")
        assert sizes == [6]
        screenshot(widget, "media-widget")
    assert watch.errors == [] and watch.page_errors == []


def test_the_built_feeds_pass_the_w3c_validator(site: tuple[str, Path, dict[str, bytes]]) -> None:
    if not (W3C.exists() and W3C_PYTHON.exists()):
        pytest.skip("the W3C validator is not set up (FEEDSERVER_W3C_PYTHON; see tests/w3c.py)")
    url, root, _ = site
    done = subprocess.run([str(W3C_PYTHON), str(W3C), url, str(root / "public")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "== feed.rss: OK" in done.stdout and "== topics/energy/feed.atom: OK" in done.stdout
