"""Links that work wherever feedserver runs (issue 11).

``base_url`` is no longer pinned by the bundled config.toml: unset, ``serve``
builds every link from the address it listens on (and says so), ``build`` and
``serve`` take ``--base-url``, pages load their own stylesheet by root-relative
URLs, a change of ``base_url`` re-renders everything, and ``--host 0.0.0.0``
with a loopback base URL is warned about loudly.  The end-to-end test runs a
real ``feedserver serve`` on a free port other than 8000.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import brotli
import pytest
from click.testing import CliRunner
from werkzeug.datastructures import Headers

from feedserver.build.run import run_build
from feedserver.cli import main
from feedserver.config import Settings, load_settings
from feedserver.listen import problem_lines, serving_settings
from tests.conftest import ROOT, write
from tests.faultkit import clean_env
from tests.integration.test_web import Links
from tests.system.test_serve_e2e import free_port, stop, wait_ready

DEFAULT = "http://127.0.0.1:8000/"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
URL = re.compile(r"""https?://[^\s"'<>)\]\\]+""")


# -- settings ---------------------------------------------------------------------------------

def test_the_bundled_config_leaves_base_url_unset() -> None:
    bundled = load_settings(ROOT / "config.toml", env={})
    assert bundled.base_url == DEFAULT and not bundled.base_url_set
    from_env = load_settings(ROOT / "config.toml", env={"FEEDSERVER_BASE_URL": "https://a.example"})
    assert from_env.base_url == "https://a.example/" and from_env.base_url_set
    given = load_settings(ROOT / "config.toml", env={}, overrides={"base_url": "https://b.example/"})
    assert given.base_url_set and given.base_url == "https://b.example/"
    assert Settings().base_url_set  # made in code: what it says is meant
    assert bundled.fingerprint() == replace(bundled, base_url_set=True).fingerprint()
    assert bundled.fingerprint() != replace(bundled, base_url="http://127.0.0.1:8765/"
                                            ).fingerprint()


def test_an_empty_base_url_means_unset() -> None:
    """``FEEDSERVER_BASE_URL=`` (a Procfile's empty value) is not a configuration error."""
    empty = load_settings(ROOT / "config.toml", env={"FEEDSERVER_BASE_URL": ""})
    assert empty.base_url == DEFAULT and not empty.base_url_set


class Said:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []


def serve_settings(settings: Settings, host: str, port: int) -> tuple[Settings, Said]:
    said = Said()
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"
    chosen = serving_settings(settings, host, url, said.out.append, said.err.append)
    return chosen, said


def test_serve_uses_the_address_it_listens_on_when_base_url_is_unset() -> None:
    bundled = load_settings(ROOT / "config.toml", env={})
    chosen, said = serve_settings(bundled, "127.0.0.1", 8765)
    assert chosen.base_url == "http://127.0.0.1:8765/" and said.err == []
    assert any("base_url is not set" in line and "http://127.0.0.1:8765/" in line
               for line in said.out), said.out
    assert replace(chosen, base_url=DEFAULT).fingerprint() == bundled.fingerprint()


def test_a_configured_base_url_is_kept_and_named() -> None:
    public = load_settings(ROOT / "config.toml", env={"FEEDSERVER_BASE_URL": "https://n.example/"})
    chosen, said = serve_settings(public, "0.0.0.0", 8765)
    assert chosen.base_url == "https://n.example/" and said.err == []
    assert any("https://n.example/" in line for line in said.out)


@pytest.mark.parametrize("env", [{}, {"FEEDSERVER_BASE_URL": DEFAULT},
                                 {"FEEDSERVER_BASE_URL": "http://localhost:9000/"}])
def test_every_interface_with_a_loopback_base_url_is_warned_about_loudly(
        env: dict[str, str]) -> None:
    settings = load_settings(ROOT / "config.toml", env=env)
    chosen, said = serve_settings(settings, "0.0.0.0", 8765)
    warning = "\n".join(said.err)
    assert "WARNING" in warning and "FEEDSERVER_BASE_URL" in warning and "0.0.0.0" in warning
    assert urlsplit(chosen.base_url).hostname in {"127.0.0.1", "localhost"}


def test_problems_are_listed_not_only_counted(settings: Settings) -> None:
    write(Path(settings.seeds_dir) / "broken.md", "---\ntitle: [broken\n---\n")
    report = run_build(settings)
    lines = problem_lines(report, settings)
    assert any(line.startswith("error: broken.md: ") for line in lines), lines
    assert problem_lines(None, settings) == lines  # nothing built: the published status


def test_a_long_problem_list_is_cut_with_a_pointer_to_check(settings: Settings) -> None:
    for n in range(30):
        write(Path(settings.seeds_dir) / f"broken-{n:02}.md", "---\ntitle: [broken\n---\n")
    lines = problem_lines(run_build(settings), settings)
    assert len(lines) == 21 and "10 more" in lines[-1] and "feedserver check" in lines[-1]


# -- build --------------------------------------------------------------------------------------

def bodies(out: Path) -> Iterator[tuple[Path, str]]:
    """Every published file's text, compressed variants decompressed."""
    for path in sorted(out.rglob("*")):
        if not path.is_file() or ".feedserver" in path.parts:
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        elif path.suffix == ".br":
            data = brotli.decompress(data)
        yield path, data.decode("utf-8", "replace")


def test_build_takes_base_url_and_pages_load_their_stylesheet_root_relative(
        site_dir: Path) -> None:
    result = CliRunner().invoke(main, ["build", "--config", str(site_dir / "config.toml"),
                                       "--base-url", "https://a.example/news"], env=clean_env())
    assert result.exit_code == 0, result.output
    out = site_dir / "public"
    feed = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    assert feed["home_page_url"] == "https://a.example/news/"
    assert feed["feed_url"] == "https://a.example/news/feed.json"
    for page in ("index.html", "topics/index.html", "topics/energy/feed.html",
                 "embed/all/index.html"):
        links = Links((out / page).read_text(encoding="utf-8")).links
        sheets = [link["href"] for link in links if link["rel"] == "stylesheet"]
        icons = [link["href"] for link in links if link["rel"] == "icon"]
        assert sheets and all(h.startswith("/news/static/") for h in sheets + icons), page


def test_a_base_url_change_re_renders_everything(settings: Settings) -> None:
    run_build(settings)
    out = Path(settings.output_dir)
    assert any("127.0.0.1:8000" in text for _, text in bodies(out))
    report = run_build(replace(settings, base_url="https://moved.example/"))
    assert report.published
    stale = [str(path) for path, text in bodies(out) if "127.0.0.1:8000" in text]
    assert stale == []


# -- a real serve on another port ---------------------------------------------------------------

def fetch(port: int, path: str, headers: dict[str, str] | None = None
          ) -> tuple[int, Headers, bytes]:
    """Status, headers (by name in any case: HTTP's) and body of one GET."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, Headers(response.getheaders()), response.read()
    finally:
        conn.close()


def test_serve_on_another_port_links_and_styles_everything_there(site_dir: Path) -> None:
    """No base_url configured, an older build published from port 8000: serve on port P
    rebuilds, and every link in pages and feeds points at P, every stylesheet loads."""
    port = free_port()
    while port == 8000:
        port = free_port()
    env = clean_env()
    assert subprocess.run([sys.executable, "-m", "feedserver", "build"], cwd=site_dir, env=env,
                          capture_output=True, timeout=120).returncode == 0
    assert "127.0.0.1:8000" in (site_dir / "public" / "feed.rss").read_text(encoding="utf-8")
    write(site_dir / "seeds" / "broken.md", "---\ntitle: [broken\n---\n")
    base = f"http://127.0.0.1:{port}/"
    log = site_dir / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "feedserver", "serve", "--port",
                                    str(port), "--workers", "1"], cwd=site_dir, env=env,
                                   stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_ready(base, process, log)
        said = log.read_text()
        assert f"base_url is not set: links use {base}" in said, said
        assert "error: broken.md: " in said, said  # the problems, not only their number
        print(f"checked {crawl(port, base)} URLs and stylesheets at {base}")
    finally:
        stop(process)


def crawl(port: int, base: str) -> int:
    """Fetch pages, feeds, OPML, catalog and embeds; check every URL and stylesheet."""
    catalog = json.loads(fetch(port, "/topics.json")[2])
    paths = {"/", "/topics/", "/feeds.opml", "/topics.json", "/embed/all.js", "/embed/all/",
             "/no/such/page/"}
    for channel in catalog["channels"]:
        paths.add(urlsplit(channel["html_url"]).path)
        paths.update(urlsplit(url).path for url in channel["feeds"].values())
    articles = json.loads(fetch(port, "/feed.json")[2])["items"]
    paths.update(urlsplit(item["url"]).path for item in articles)
    sheets: set[str] = set()
    checked = 0
    for path in sorted(paths):
        for headers in ({}, {"Accept": BROWSER}):
            status, answer, body = fetch(port, path, headers)
            assert status in (200, 404), (path, status)
            text = body.decode("utf-8")
            for url in URL.findall(text):
                parts = urlsplit(url)
                if parts.hostname in {"127.0.0.1", "localhost"}:
                    assert url.startswith(base), (path, url)
                    checked += 1
            if answer.get("Content-Type", "").startswith("text/html"):
                page = Links(text)
                hrefs = [link["href"] for link in page.links
                         if link["rel"] in ("stylesheet", "icon")]
                assert len(hrefs) >= 2, path
                sheets.update(urljoin(base + path.lstrip("/"), href) for href in hrefs)
    assert checked > 50
    for sheet in sorted(sheets):
        parts = urlsplit(sheet)
        assert sheet.startswith(base), sheet
        status, answer, _ = fetch(port, f"{parts.path}?{parts.query}" if parts.query
                                  else parts.path)
        assert status == 200 and answer["Content-Type"].startswith(("text/css", "image/svg")), \
            (sheet, status)
    feed = fetch(port, "/feed.rss")
    again = fetch(port, "/feed.rss", {"If-None-Match": feed[1]["ETag"]})
    assert again[0] == 304 and "Content-Type" not in again[1]
    return checked + len(sheets)
