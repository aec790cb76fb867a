"""RFC 3229 feed deltas (``A-IM: feed``): built at publish time, served by the web app.

A small site is built several times in this process (fixed ``now``s) and asked through
the Flask test client, as a poller would: with ``A-IM: feed`` and the ETag it holds.
Every answer is read back with feedparser (JSON Feed with json) and compared with the
articles written.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from flask.testing import FlaskClient

from feedserver.build.delta_history import History
from feedserver.build.run import run_build
from feedserver.config import Settings, load_settings
from feedserver.publish.manifest import DELTAS, delta_of, load_manifest
from feedserver.web.app import create_app
from feedserver.web.deltas import held, wants_feed_delta

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FEEDS = ("/feed.rss", "/feed.atom", "/feed.json", "/topics/energy/feed.atom")
CONFIG = """site_title = "Delta site"
base_url = "http://127.0.0.1:8765/"
max_items = 6
detect_topics = false
detect_language = false
poll_budget = 0
[topics.energy]
name = "Energy"
phrases = ["energy"]
"""


def article(number: int, title: str | None = None, text: str = "") -> str:
    return (f"---\ntitle: {title or f'Article {number}'}\n"
            f"date: 2026-01-{number:02d}T10:00:00Z\n---\n"
            f"{text or f'Energy notes number {number}, a paragraph long enough to read.'}\n")


class Site:
    """The test site: write articles, build at the next ``now``, ask the app."""

    def __init__(self, root: Path, **overrides: Any) -> None:
        self.root = root
        (root / "seeds").mkdir(parents=True)
        (root / "config.toml").write_text(CONFIG, encoding="utf-8")
        self.settings: Settings = replace(load_settings(root / "config.toml", env={}),
                                          **overrides)
        self.builds = 0
        self.client: FlaskClient = create_app({"FEEDSERVER_SETTINGS": self.settings}
                                              ).test_client()

    def write(self, number: int, title: str | None = None, text: str = "") -> None:
        (self.root / "seeds" / f"a{number:02d}.md").write_text(article(number, title, text),
                                                                encoding="utf-8")

    def delete(self, number: int) -> None:
        (self.root / "seeds" / f"a{number:02d}.md").unlink()

    def build(self) -> None:
        self.builds += 1
        report = run_build(self.settings, now=T0 + timedelta(hours=self.builds))
        assert report.published and not report.errors, report.problems

    def etags(self, encoding: str = "") -> dict[str, str]:
        headers = {"Accept-Encoding": encoding} if encoding else {}
        return {path: self.client.get(path, headers=headers).headers["ETag"] for path in FEEDS}

    def poll(self, path: str, etag: str, **headers: str) -> Any:
        return self.client.get(path, headers={"A-IM": "feed", "If-None-Match": etag,
                                              **headers})


@pytest.fixture
def site(tmp_path: Path) -> Site:
    made = Site(tmp_path)
    for number in range(1, 5):
        made.write(number)
    made.build()
    return made


def items(path: str, body: bytes) -> list[tuple[str, str]]:
    """(id, title) of each item, as a reader's parser reads the document."""
    if path.endswith(".json"):
        return [(item["id"], item["title"]) for item in json.loads(body)["items"]]
    media = "application/rss+xml" if path.endswith(".rss") else "application/atom+xml"
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-type": media})
    assert not parsed.bozo, parsed.bozo_exception
    return [(entry.id, entry.title) for entry in parsed.entries]


def titles(path: str, body: bytes) -> list[str]:
    return [title for _, title in items(path, body)]


def test_a_new_article_comes_alone_in_a_226(site: Site) -> None:
    before = site.etags()
    site.write(5)
    site.build()
    for path in FEEDS:
        full = site.client.get(path)
        answer = site.poll(path, before[path])
        assert answer.status_code == 226, path
        assert answer.headers["IM"] == "feed"
        assert titles(path, answer.data) == ["Article 5"]
        # The validators are the full feed's: the next poll is an ordinary 304.
        assert answer.headers["ETag"] == full.headers["ETag"]
        assert answer.headers["Last-Modified"] == full.headers["Last-Modified"]
        assert answer.mimetype == full.mimetype
        assert "A-IM" in answer.headers["Vary"]
        assert answer.headers["Cache-Control"].startswith("private, max-age=")
        assert site.poll(path, answer.headers["ETag"]).status_code == 304


def test_an_edited_article_comes_as_it_is_now(site: Site) -> None:
    before = site.etags()
    site.write(2, title="Article 2, corrected")
    site.build()
    for path in FEEDS:
        answer = site.poll(path, before[path])
        assert answer.status_code == 226, path
        assert titles(path, answer.data) == ["Article 2, corrected"]
        assert titles(path, site.client.get(path).data) == [
            "Article 4", "Article 3", "Article 2, corrected", "Article 1"]


def test_a_deleted_article_is_simply_not_in_the_delta(site: Site) -> None:
    before = site.etags()
    site.delete(3)
    site.write(5)
    site.build()
    for path in FEEDS:
        answer = site.poll(path, before[path])
        assert answer.status_code == 226
        assert titles(path, answer.data) == ["Article 5"]
        assert "Article 3" not in titles(path, site.client.get(path).data)


def test_deltas_from_every_remembered_version(site: Site) -> None:
    """A poller two versions behind gets both new articles; one behind, the newest."""
    first = site.etags()
    site.write(5)
    site.build()
    second = site.etags()
    site.write(6)
    site.build()
    for path in FEEDS:
        assert titles(path, site.poll(path, first[path]).data) == ["Article 6", "Article 5"]
        assert titles(path, site.poll(path, second[path]).data) == ["Article 6"]
    # Only deltas that lead to the version published now are left.
    manifest = load_manifest(Path(site.settings.output_dir))
    found = [delta_of(entry) for path, entry in manifest["files"].items()
             if path.startswith(DELTAS)]
    leads = {(delta[0], delta[1]) for delta in found if delta is not None}
    assert len(found) == 2 * 3 * 3  # two versions of 3 channels in 3 formats
    assert leads == {(feed, manifest["files"][feed]["etag"]) for feed, _ in leads}
    assert not [path for path in manifest["gone"] if path.startswith(DELTAS)]


def test_compressed_deltas_for_a_poller_holding_a_compressed_etag(site: Site) -> None:
    """Deltas are kept in gzip only (brotli saved 0.6% on them, for a file more each):
    a client taking both gets gzip, one taking brotli alone gets the plain delta."""
    for accepts, encoding in (("gzip", "gzip"), ("br, gzip", "gzip"), ("br", "")):
        before = site.etags(accepts)
        site.write(10 + len(accepts), text="Energy: " + "a longer paragraph of text. " * 20)
        site.build()
        for path in FEEDS:
            full = site.client.get(path, headers={"Accept-Encoding": accepts})
            answer = site.poll(path, before[path], **{"Accept-Encoding": accepts})
            assert answer.status_code == 226, (accepts, path)
            assert answer.headers.get("Content-Encoding", "") == encoding, (accepts, path)
            assert answer.headers["ETag"] == full.headers["ETag"]  # the variant it gets
            body = gzip.decompress(answer.data) if encoding else answer.data
            assert len(items(path, body)) == 1
            # The same delta, plain, for a poller that held the compressed ETag.
            plain = site.poll(path, before[path])
            assert plain.status_code == 226 and "Content-Encoding" not in plain.headers
            assert plain.data == body


def test_deltas_are_staged_in_gzip_only(site: Site) -> None:
    before = site.etags()
    site.write(5, text="Energy: " + "a paragraph that makes the delta worth compressing. " * 20)
    site.build()
    out = Path(site.settings.output_dir)
    files = load_manifest(out)["files"]
    made = [path for path, entry in files.items() if delta_of(entry) is not None]
    assert len(made) >= len(FEEDS)
    for path in made:
        assert set(files[path]["encodings"]) == {"gzip"}, path
        assert (out / f"{path}.gz").is_file() and not (out / f"{path}.br").exists(), path
    for path in FEEDS:  # the feeds themselves keep both
        assert set(files[path.lstrip("/")]["encodings"]) == {"br", "gzip"}, path
        assert site.poll(path, before[path]).status_code == 226


def test_unknown_current_and_plain_requests(site: Site) -> None:
    before = site.etags()
    site.write(5)
    site.build()
    for path in FEEDS:
        full = site.client.get(path)
        unknown = site.poll(path, '"0123456789abcdef0123456789abcdef"')
        assert unknown.status_code == 200 and unknown.data == full.data
        assert "IM" not in unknown.headers
        assert site.poll(path, full.headers["ETag"]).status_code == 304
        # Without A-IM (or asking another manipulation) nothing is new: the full feed.
        for headers in ({"If-None-Match": before[path]},
                        {"If-None-Match": before[path], "A-IM": "vcdiff"}):
            plain = site.client.get(path, headers=headers)
            assert plain.status_code == 200 and plain.data == full.data
            assert plain.headers == full.headers
        head = site.client.head(path, headers={"A-IM": "feed", "If-None-Match": before[path]})
        assert head.status_code == 226 and head.data == b""


def test_too_old_or_not_smaller_gets_the_full_feed(tmp_path: Path) -> None:
    site = Site(tmp_path, delta_history=2, max_items=3)
    for number in (1, 2, 3):
        site.write(number)
    site.build()
    oldest = site.etags()
    site.write(4)
    site.build()
    site.write(5)
    site.build()
    for path in FEEDS:  # two versions behind: still remembered
        assert titles(path, site.poll(path, oldest[path]).data) == ["Article 5", "Article 4"]
    site.write(9)
    site.build()  # three versions behind: no longer remembered
    for path in FEEDS:
        assert site.poll(path, oldest[path]).status_code == 200
    before = site.etags()
    for number in (10, 11, 12):  # three new articles in a feed of three: nothing is old
        site.write(number)
    site.build()
    for path in FEEDS:
        full = site.client.get(path)
        answer = site.poll(path, before[path])
        assert answer.status_code == 200 and answer.data == full.data


def test_no_history_no_deltas(site: Site, tmp_path: Path) -> None:
    before = site.etags()
    site.write(5)
    site.build()
    assert site.poll("/feed.atom", before["/feed.atom"]).status_code == 226
    off = replace(site.settings, delta_history=0)
    site.settings = off
    site.write(6)
    site.build()
    manifest = load_manifest(Path(off.output_dir))
    assert not [path for path in manifest["files"] if path.startswith(DELTAS)]
    assert not (Path(off.output_dir) / DELTAS).exists()


def test_history_is_bounded_and_keeps_the_newest(tmp_path: Path) -> None:
    with History(tmp_path, keep=3) as history:
        for number in range(6):
            history.record("feed.rss", (f'"{number}"', f'"{number}gz"'), {"a": str(number)})
        history.record("feed.rss", ('"3"', '"3gz"'), {"a": "3"})  # seen again: newest
        history.record("feed.atom", ('"x"',), {})
        found = history.versions("feed.rss")
    assert [v.etag for v in found] == ['"3"', '"5"', '"4"']
    assert found[0].variants == ('"3"', '"3gz"') and found[0].items == {"a": "3"}
    assert History(tmp_path, keep=3).versions("feed.atom")[0].etag == '"x"'


def test_a_publishs_versions_are_recorded_in_one_transaction(tmp_path: Path) -> None:
    """A cold build records a version of every feed (1,728 at 10,000 articles): one
    commit, not one per feed (each a journal written and synced: 1.7 s in the parent,
    after the publish); a record outside a block still commits on its own."""
    statements: list[str] = []
    with History(tmp_path, keep=3) as history:
        history._connect().set_trace_callback(statements.append)
        for number in range(40):
            history.record(f"topics/t{number}/feed.rss", (f'"{number}"',), {"a": "1"})
    assert [s for s in statements if s.strip().upper().startswith("COMMIT")] == ["COMMIT"]
    assert len({v.etag for n in range(40)
                for v in History(tmp_path, keep=3).versions(f"topics/t{n}/feed.rss")}) == 40
    alone = History(tmp_path, keep=3)
    alone.record("feed.atom", ('"y"',), {})
    assert History(tmp_path, keep=3).newest("feed.atom") == '"y"'
    alone.close()


def test_request_headers_are_read_as_rfc_3229_and_9110_say() -> None:
    assert wants_feed_delta("feed")
    assert wants_feed_delta("vcdiff, Feed;q=1")
    assert not wants_feed_delta("vcdiff") and not wants_feed_delta("")
    assert sorted(held('"a", W/"b", "c"')) == ['"a"', '"c"']
    assert held("*") == []

