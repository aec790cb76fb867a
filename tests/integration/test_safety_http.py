"""What a poller and a CDN rely on: Last-Modified moves with the body, and every
published file (its .gz and .br too) is on disk after a build."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import brotli
import pytest
from flask.testing import FlaskClient

from feedserver.build.run import BuildReport
from feedserver.config import Settings
from tests.conftest import NOW, write

FEEDS = ("/feed.rss", "/feed.atom", "/feed.json", "/topics/transport/feed.rss")


def modified(client: FlaskClient, path: str) -> tuple[str, bytes]:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.headers["Last-Modified"], response.data


@pytest.mark.parametrize("change", ["delete", "backdated"])
def test_last_modified_moves_when_the_body_changes(
        build: Callable[..., BuildReport], settings: Settings, client: FlaskClient,
        change: str) -> None:
    seeds = Path(settings.seeds_dir)
    before = {path: modified(client, path) for path in FEEDS}
    if change == "delete":  # not the newest article: the newest date does not move
        (seeds / "2026-10-14-rail-freight.md").unlink()
    else:
        write(seeds / "old.md", "---\ntitle: An old rail story\ndate: 2025-01-02T10:00:00Z\n"
                                "topics: [Transport]\n---\nRail freight, long ago.\n",
              mtime=datetime(2025, 1, 2, 10, tzinfo=UTC).timestamp())  # a restored file
    later = NOW + timedelta(hours=2)
    build(now=later)
    for path, (stamp, body) in before.items():
        response = client.get(path, headers={"If-Modified-Since": stamp})
        assert response.status_code == 200, (path, stamp)  # not a 304 with the stale feed
        assert response.data != body
        moved = parsedate_to_datetime(response.headers["Last-Modified"])
        assert moved > parsedate_to_datetime(stamp) and moved == later, path
    # Nothing changed since: the date stays and the poller gets its 304.
    again = {path: modified(client, path)[0] for path in FEEDS}
    build(now=later + timedelta(hours=1))
    for path, stamp in again.items():
        assert client.get(path).headers["Last-Modified"] == stamp
        assert client.get(path, headers={"If-Modified-Since": stamp}).status_code == 304


def test_last_modified_follows_a_newer_item(build: Callable[..., BuildReport],
                                            settings: Settings, client: FlaskClient) -> None:
    stamp, _ = modified(client, "/feed.rss")
    write(Path(settings.seeds_dir) / "new.md",
          "---\ntitle: Fresh news\ndate: 2026-11-27T13:00:00Z\n---\nToday.\n",
          mtime=(NOW + timedelta(hours=1)).timestamp())  # first seen when it was written
    build(now=NOW + timedelta(hours=5))
    response = client.get("/feed.rss", headers={"If-Modified-Since": stamp})
    assert response.status_code == 200
    got = parsedate_to_datetime(response.headers["Last-Modified"])
    assert got == NOW + timedelta(hours=1)  # the new item's own date, not the build's


def test_deleted_compressed_files_come_back(build: Callable[..., BuildReport],
                                            settings: Settings) -> None:
    report = build()
    assert report.published
    out = Path(settings.output_dir)
    victims = [out / "feed.rss.gz", out / "feed.atom.br", out / "topics/transport/feed.json.gz",
               out / "topics/transport/feed.rss.br", out / "index.html.gz",
               out / "topics/index.html.br"]
    for path in victims:
        assert path.is_file(), path
        path.unlink()
    (out / "topics/transport/feed.atom").unlink()  # a plain one too (this already worked)
    again = build()
    assert again.published
    for path in victims:
        assert path.is_file(), path
        body = path.with_suffix("").read_bytes()
        packed = path.read_bytes()
        unpacked = gzip.decompress(packed) if path.suffix == ".gz" else brotli.decompress(packed)
        assert unpacked == body, path
    assert (out / "topics/transport/feed.atom").is_file()
