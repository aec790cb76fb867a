"""Security: no markup that runs reaches a reader; no request reaches outside the output.

A site is built from front matter that is hostile in every field (title,
summary, author, tags, language, slug, body), then every output is read the
way a client reads it: RSS and Atom through feedparser (its own idea of which
fields are HTML decides what is checked as HTML), JSON Feed's ``content_html``,
every HTML page through ``html.parser``.  The server is real granian on
127.0.0.1, asked with raw request lines (encoded, double-encoded, backslashed,
absolute) and with symbolic links planted in its output folder.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
import pytest
from click.testing import CliRunner

from feedserver.build.run import run_build
from feedserver.cli import main
from feedserver.config import Settings, load_settings
from feedserver.publish.output import FILE_MODE
from feedserver.web.app import create_app
from tests.conftest import NOW, ROOT, write
from tests.hostile_corpus import SKIPPED, write_bad_name, write_corpus
from tests.safety import BASE, Active, active_in_page, hostile_site
from tests.system.test_serve_e2e import free_port, stop, wait_ready

HTML_TYPES = {"text/html", "application/xhtml+xml"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("security")
    settings = hostile_site(root)
    report = run_build(settings, now=NOW)
    assert report.published and report.articles >= 8
    return settings


def outputs(settings: Settings, suffix: str) -> list[Path]:
    return sorted(Path(settings.output_dir).rglob(f"*{suffix}"))


# -- nothing that runs, in any field of any format ---------------------------------------------

def _html_fields(node: Any, suffix: str, item: bool) -> Iterator[tuple[str, str]]:
    """(name, value) of every field a reader must treat as HTML in a feed or an entry.

    Atom says so in each element's ``type`` (feedparser reports it).  RSS 2.0
    allows HTML in an item's ``description`` (and content:encoded is HTML)
    and nowhere else: titles, categories, authors and the channel's
    description are plain text (RSS Advisory Board), whatever feedparser
    guesses from their look.
    """
    for key, detail in node.items():
        if key.endswith("_detail") and isinstance(detail, dict) and (
                detail.get("type") in HTML_TYPES if suffix == ".atom" else
                key == "summary_detail" and item):
            yield key, str(detail.get("value", ""))
    for part in node.get("content", []):
        if part.get("type") in HTML_TYPES or suffix == ".rss":
            yield "content", part["value"]


@pytest.mark.parametrize("suffix", [".rss", ".atom"])
def test_no_field_of_a_feed_carries_markup_that_runs(site: Settings, suffix: str) -> None:
    checked = 0
    for path in outputs(site, suffix):
        body = path.read_bytes()
        assert b"<!DOCTYPE" not in body and b"<!ENTITY" not in body
        parsed = feedparser.parse(io.BytesIO(body), sanitize_html=False,
                                  resolve_relative_uris=False)
        assert not parsed.bozo, path
        for node in [parsed.feed, *parsed.entries]:
            for name, value in _html_fields(node, suffix, node is not parsed.feed):
                assert Active.findings(value) == [], (path.name, name, value[:200])
                checked += 1
            if suffix == ".atom":  # typed text: shown as text by every reader
                assert node["title_detail"]["type"] == "text/plain", path
    assert checked > 20  # descriptions and contents were looked at, not skipped


def test_json_feed_content_html_carries_nothing_that_runs(site: Settings) -> None:
    items = 0
    for path in outputs(site, "feed.json"):
        for item in json.loads(path.read_text(encoding="utf-8"))["items"]:
            assert Active.findings(item["content_html"]) == [], (path, item["title"])
            items += 1
    assert items > 20


def test_hostile_text_survives_as_text(site: Settings) -> None:
    """Plain-text fields lose their tags (issue 12); what is text and not a tag stays text."""
    doc = json.loads((Path(site.output_dir) / "feed.json").read_text(encoding="utf-8"))
    items = {item["title"]: item for item in doc["items"]}
    evil = items["Title"]
    assert evil["authors"] == [{"name": "Eve"}]
    assert "x\" onmouseover=\"alert(6)" in evil["tags"]  # no tag in it: text
    assert not [t for t in evil["tags"] if "<" in t]
    assert "a<b" in items["Plain text with a<b"]["summary"]
    rss = feedparser.parse(io.BytesIO((Path(site.output_dir) / "feed.rss").read_bytes()),
                           sanitize_html=False)
    entry = next(e for e in rss.entries if e.title.startswith("Plain"))
    assert "a&lt;b" in entry.summary  # RSS description is HTML: the text is escaped once more


def test_pages_run_nothing_but_their_own(site: Settings) -> None:
    pages = outputs(site, ".html")
    assert len(pages) > 30
    for page in pages:
        assert active_in_page(page.read_text(encoding="utf-8")) == [], page


def test_embed_loaders_keep_names_in_their_comment(site: Settings) -> None:
    loaders = [p for p in outputs(site, ".js") if p.parent.name == "embed"]
    assert loaders
    for loader in loaders:
        text = loader.read_text(encoding="utf-8")
        code = re.sub(r"/\*.*?\*/", "", text, count=1, flags=re.S)
        assert "/*" in code and "alert(" not in code, loader  # the rest is the fixed code


def test_opml_and_catalog_links_come_from_base_url(site: Settings) -> None:
    out = Path(site.output_dir)
    for outline in ET.parse(out / "feeds.opml").getroot().iter("outline"):
        assert outline.get("xmlUrl", "").startswith(BASE)
        assert outline.get("htmlUrl", "").startswith(BASE)
    for channel in json.loads((out / "topics.json").read_text(encoding="utf-8"))["channels"]:
        urls = [channel["html_url"], *channel["feeds"].values()]
        assert all(url.startswith(BASE) for url in urls), channel["slug"]


def test_published_files_are_readable_by_a_static_server(site: Settings) -> None:
    """nginx runs as another user: files are created as open() would (not mkstemp's 0600)."""
    for path in Path(site.output_dir).rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == FILE_MODE, path
    assert FILE_MODE & 0o044 or os.umask(0o022) & 0o044


# -- a real server: traversal, links, Host, error pages ---------------------------------------

@dataclass
class Server:
    port: int
    out: Path

    def raw(self, request: bytes) -> tuple[int, bytes, bytes]:
        """(status, head, body) for bytes sent exactly as given."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(request)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), head, body

    def get(self, target: str, *headers: str) -> tuple[int, bytes, bytes]:
        lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", *headers, "Connection: close"]
        return self.raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


SERVE_APP = """
import sys
from feedserver.config import load_settings
from feedserver.serve import FeedServer, server_options
from feedserver.web.app import create_app
settings = load_settings(sys.argv[1], env={"FEEDSERVER_OUTPUT_DIR": sys.argv[2]})
FeedServer(lambda: create_app({"FEEDSERVER_SETTINGS": settings}),
           server_options(settings, "127.0.0.1", int(sys.argv[3]), 2, access_log=False)).run()
"""


@pytest.fixture
def server(site: Settings, tmp_path: Path) -> Iterator[Server]:
    """The web app as `feedserver serve` runs it (granian, 2 workers), over a copy of the
    output, without the scheduler: the tests plant links in that copy."""
    out = tmp_path / "public"
    shutil.copytree(site.output_dir, out, symlinks=True)
    port = free_port()
    log = tmp_path / "web.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-c", SERVE_APP, site.config_path,
                                    str(out), str(port)], cwd=ROOT, stdout=sink,
                                   stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/", process, log)
        yield Server(port, out)
    finally:
        stop(process)


SECRETS = (b"root:x:0:", b"SQLite format", b"site_title", b'"files"', b"PRIVATE-OUTSIDE")
TRAVERSALS = [
    "/../../../../etc/passwd", "/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/%252e%252e/%252e%252e/etc/passwd",
    "/..\\..\\..\\etc\\passwd", "/%5c..%5c..%5cetc%5cpasswd", "/topics/..%5c..%5cconfig.toml",
    "//etc/passwd", "/etc/passwd", "/%2Fetc%2Fpasswd", "/./feed.rss/../../config.toml",
    "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "/feed.rss%00.html", "/topics/%00/../..",
    "/.feedserver/manifest.json", "/%2efeedserver/status.json", "/.feedserver%2fmanifest.json",
    "/../state/ledger.sqlite3", "/../config.toml", "/topics/../../config.toml",
    "http://127.0.0.1/../../etc/passwd", "file:///etc/passwd", "/outside-link",
    "/outside-link/secret.txt", "/passwd.txt",
]


def test_no_request_reads_outside_the_output_folder(server: Server, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("PRIVATE-OUTSIDE")
    (server.out / "passwd.txt").symlink_to("/etc/passwd")
    (server.out / "outside-link").symlink_to(outside)
    for target in TRAVERSALS:
        status, _, body = server.get(target)
        assert status in (400, 404), (target, status)
        assert not any(secret in body for secret in SECRETS), target


def test_the_server_follows_no_link_planted_in_the_output(server: Server,
                                                          tmp_path: Path) -> None:
    """A listed file or folder swapped for a link (a compromised sync job) is never followed:
    a worker answers 404, or the very body the manifest names if it holds it (bodies held
    with the manifest's ETag are answered without a look at the disk), never the link's."""
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("feed.rss", "index.html"):
        (outside / name).write_text("PRIVATE-OUTSIDE")
    held = {target: server.get(target) for target in ("/topics/energy/feed.rss", "/feeds.opml")}
    assert all(status == 200 for status, _, _ in held.values())  # held by a worker
    (server.out / "feeds.opml").unlink()
    (server.out / "feeds.opml").symlink_to("/etc/passwd")
    energy = server.out / "topics" / "energy"
    energy.rename(tmp_path / "energy-real")
    energy.symlink_to(outside)
    for target in ("/feeds.opml", "/topics/energy/feed.rss", "/topics/energy/"):
        for _ in range(4):  # both workers, holding the body or not
            status, _, body = server.get(target)
            assert not any(s in body for s in SECRETS), target
            assert status == 404 or (target in held and body == held[target][2]), target


EVIL_HOST = ("Host: evil.example", "X-Forwarded-Host: evil.example",
             "X-Forwarded-Proto: gopher", "Forwarded: host=evil.example;proto=http",
             "X-Forwarded-Prefix: //evil.example", "X-Original-URL: //evil.example/")


def test_the_host_header_never_reaches_a_url(server: Server) -> None:
    for target in ("/", "/feed.rss", "/feed.atom", "/feed.json", "/feeds.opml",
                   "/topics.json", "/topics/", "/topics", "/no/such/page", "/embed/nope.js",
                   "/topics/energy/feed.json", "http://evil.example/topics"):
        plain = server.get(target)
        status, head, body = server.raw(
            ("\r\n".join([f"GET {target} HTTP/1.1", *EVIL_HOST, "Connection: close"])
             + "\r\n\r\n").encode())
        assert b"evil.example" not in head and b"evil.example" not in body, target
        assert b"gopher" not in head + body
        if not target.startswith("http:"):
            assert (status, body) == (plain[0], plain[2]), target


REFLECTED = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "javascript:alert(1)")


def test_error_pages_do_not_reflect_the_request(server: Server) -> None:
    for payload in REFLECTED:
        encoded = "".join(f"%{b:02X}" for b in payload.encode())
        for target in (f"/{encoded}", f"/topics/{encoded}/", f"/x/{encoded}.json",
                       f"/nope?q={encoded}", f"/{encoded}/feed.rss"):
            status, head, body = server.get(target)
            assert status == 404, target
            for form in (payload, encoded, payload.replace('"', "&#34;")):
                assert form.encode() not in body + head, (target, form)
    status, _, body = server.raw(b"GET /<script>alert(1)</script> HTTP/1.1\r\n"
                                 b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert b"<script>" not in body
    status, _, body = server.raw(b"GET /<script>alert(1)</script>\r\n\r\n")  # not HTTP at all
    assert b"<script>" not in body
    status, head, body = server.get("/feed.rss", "If-None-Match: <script>alert(1)</script>")
    assert status == 200 and b"<script" not in head
    status, _, body = server.raw(b"POST /feed.rss HTTP/1.1\r\nHost: x\r\nContent-Length: 25"
                                 b"\r\nConnection: close\r\n\r\n<script>alert(1)</script>")
    assert status == 405 and b"<script>" not in body


# -- check --strict and /healthz name every skipped file ---------------------------------------

def test_check_strict_reports_every_skipped_file_and_healthz_counts_them(
        tmp_path: Path) -> None:
    shutil.copytree(ROOT / "seeds", tmp_path / "seeds")
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    cases = write_corpus(tmp_path / "seeds")
    bad_name = write_bad_name(tmp_path / "seeds")
    write(tmp_path / "seeds" / "fine.md", "---\ntitle: Fine\n---\nText.\n")
    config = str(tmp_path / "config.toml")
    checked = CliRunner().invoke(main, ["check", "--strict", "--config", config])
    assert checked.exit_code == 1
    lines = [line for line in checked.output.splitlines()
             if line.startswith(("error: ", "warning: "))]
    for case in (c for c in cases if c.outcome == SKIPPED):
        assert any(line.startswith(f"error: {case.path}: ") and case.reason in line
                   for line in lines), (case.path, case.reason)
    assert any(line.startswith(f"error: {bad_name}: ") for line in lines)
    errors = sum(line.startswith("error: ") for line in lines)
    assert f"{errors} errors, {len(lines) - errors} warnings" in checked.output
    settings = load_settings(config, env={})
    run_build(settings, now=NOW)
    health = create_app({"FEEDSERVER_SETTINGS": settings}).test_client().get("/healthz")
    assert health.get_json()["problems"] == len(lines)
    assert health.get_json()["errors"] == errors
