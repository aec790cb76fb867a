"""RFC 3229 deltas against a real ``feedserver serve`` (granian, 2 workers, its scheduler).

A poller written here keeps a local copy of each feed of the 'all' channel (Atom asking
for gzip, RSS for nothing, JSON Feed for brotli).  Between its polls articles are added
and edited in ``seeds/`` and the server's own scheduler publishes them; the poller sends
``A-IM: feed`` with the ETag it holds, applies each 226 delta to its copy (by id, the
newest version wins, the ``max_items`` newest kept) and, at the end, holds exactly the
items a plain GET of the full feed gives, as feedparser reads them.  Nothing is timed:
the waits for a publish only bound a failure.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import brotli
import feedparser
import pytest

from tests.conftest import recent
from tests.system.test_serve_e2e import Server, serve_site

MAX_ITEMS = 4
PUBLISH_SECONDS = 120
# feed path -> the encoding its poller asks for
POLLERS = {"/feed.atom": "gzip", "/feed.rss": "", "/feed.json": "br"}
Item = tuple[str, str, datetime, datetime]  # id, title, published, updated


def write(seeds: Path, number: int, title: str) -> None:
    (seeds / f"a{number}.md").write_text(
        f"---\ntitle: {title}\ndate: {recent(days=20 - number)}\n---\n"
        f"Notes number {number} about the pipeline, a paragraph long enough to read.\n",
        encoding="utf-8")


def fetch(server: Server, path: str, headers: dict[str, str]
          ) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    encoding = response.getheader("Content-Encoding")
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "br":
        body = brotli.decompress(body)
    return response, body


def read_items(path: str, body: bytes) -> list[Item]:
    """The items of a feed document as a reader's parser reads them."""
    if path.endswith(".json"):
        return [(i["id"], i["title"], datetime.fromisoformat(i["date_published"]),
                 datetime.fromisoformat(i["date_modified"])) for i in json.loads(body)["items"]]
    media = "application/rss+xml" if path.endswith(".rss") else "application/atom+xml"
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-type": media})
    assert not parsed.bozo, parsed.bozo_exception
    return [(e.id, e.title, _moment(e.published_parsed),
             _moment(e["updated_parsed"] if "updated" in e else e.published_parsed))
            for e in parsed.entries]


def _moment(parsed: Any) -> datetime:
    return datetime(*parsed[:6], tzinfo=UTC)


class Poller:
    """A feed reader that asks for deltas and applies them to its copy of one feed."""

    def __init__(self, server: Server, path: str, encoding: str) -> None:
        self.server, self.path, self.encoding = server, path, encoding
        self.etag = ""
        self.copy: dict[str, Item] = {}
        self.answers: list[int] = []

    def poll(self) -> None:
        headers = {"A-IM": "feed"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.encoding:
            headers["Accept-Encoding"] = self.encoding
        response, body = fetch(self.server, self.path, headers)
        self.answers.append(response.status)
        if response.status == 304:
            return
        assert response.status in (200, 226), (self.path, response.status)
        if response.status == 226:
            assert response.getheader("IM") == "feed"
            assert "A-IM" in response.getheader("Vary", "")
        else:
            self.copy = {}  # the full feed replaces the copy
        for item in read_items(self.path, body):
            held = self.copy.get(item[0])
            if held is None or item[3] >= held[3]:
                self.copy[item[0]] = item
        newest = sorted(sorted(self.copy.values()), key=lambda i: i[2], reverse=True)
        self.copy = {i[0]: i for i in newest[:MAX_ITEMS]}
        self.etag = response.getheader("ETag")

    def items(self) -> list[Item]:
        """The copy in feed order: newest published first, the same moment by id."""
        return sorted(sorted(self.copy.values()), key=lambda i: i[2], reverse=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (tmp_path / "config.toml").write_text(
        f'site_title = "Delta e2e"\nmax_items = {MAX_ITEMS}\ndetect_topics = false\n'
        "detect_language = false\npoll_budget = 0\n", encoding="utf-8")
    for number in (1, 2, 3):
        write(seeds, number, f"Article {number}")
    with serve_site(tmp_path) as running:
        yield running


def published(server: Server, before: str) -> str:
    """Wait until the server has published a new version of the feeds; its Atom ETag.

    While a publish is renaming its files into place a feed's new body may be served
    before the manifest that lists its deltas: such an answer has no Last-Modified
    (see the README's HTTP behaviour), and a poller asking then gets the full feed.
    """
    deadline = time.monotonic() + PUBLISH_SECONDS
    while time.monotonic() < deadline:
        response = fetch(server, "/feed.atom", {})[0]
        etag = response.getheader("ETag")
        if etag != before and response.getheader("Last-Modified"):
            return etag
        time.sleep(0.3)
    pytest.fail(f"nothing was published within {PUBLISH_SECONDS}s:\n{server.log.read_text()}")


def test_a_poller_applying_deltas_ends_with_the_full_feed(server: Server) -> None:
    pollers = [Poller(server, path, encoding) for path, encoding in POLLERS.items()]
    for poller in pollers:
        poller.poll()  # no ETag yet: the full feed
    version = fetch(server, "/feed.atom", {})[0].getheader("ETag")
    # One file each, so each is one publish (two files saved apart may take two).
    changes = [(4, "Article 4"), (2, "Article 2, corrected"),
               (5, "Article 5"),  # Article 1 drops out of the newest four
               (5, "Article 5, second version")]
    for number, title in changes:
        write(server.seeds, number, title)
        version = published(server, version)
        for poller in pollers:
            poller.poll()
    expected = ["Article 5, second version", "Article 4", "Article 3", "Article 2, corrected"]
    settled(server, expected)
    for poller in pollers:
        poller.poll()  # nothing new: 304
        full = fetch(server, poller.path, {})[1]
        assert poller.items() == read_items(poller.path, full), poller.path
        assert [title for _, title, *_ in poller.items()] == expected
        assert poller.answers[0] == 200 and poller.answers[-1] == 304
        assert poller.answers == [200, 226, 226, 226, 226, 304]  # a delta for each change


def settled(server: Server, titles: list[str]) -> None:
    """Wait until the published Atom feed lists ``titles``."""
    deadline = time.monotonic() + PUBLISH_SECONDS
    while time.monotonic() < deadline:
        found = [item[1] for item in read_items("/feed.atom", fetch(server, "/feed.atom", {})[1])]
        if found == titles:
            return
        time.sleep(0.3)
    pytest.fail(f"the feed never listed {titles}:\n{server.log.read_text()}")
