"""Full history against a real ``feedserver serve``: a reader that follows RFC 5005 links
over HTTP reaches every article of every channel, in every format, exactly once.

The site has 11 articles (more than twice ``archive_size`` = 4) in six channels ('all',
three tags, two languages); each chain is read with feedparser (JSON Feed with ``json``)
page by page over real HTTP and compared with the source articles.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.datastructures import Headers

from tests.archive_kit import check_chain, config, expected, make_seeds
from tests.system.test_serve_e2e import Server, serve_site

COUNT = 11


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    make_seeds(tmp_path / "seeds", COUNT)
    (tmp_path / "config.toml").write_text(config(), encoding="utf-8")
    with serve_site(tmp_path) as running:
        yield running


def fetch(url: str) -> tuple[bytes, Headers]:
    with urllib.request.urlopen(url, timeout=10) as response:  # 127.0.0.1 only
        assert response.status == 200, url
        return response.read(), Headers(list(response.headers.items()))


def test_following_archive_links_reaches_every_article_once(server: Server) -> None:
    channels = expected(COUNT)
    assert len(channels) == 6
    for folder, titles in channels.items():
        for fmt in ("rss", "atom", "json"):
            pages = check_chain(fetch, server.url, folder, fmt, titles)
            if not pages:
                continue
            for page in pages[1:]:  # full pages: cached long, never revalidated
                assert "immutable" in page.headers["Cache-Control"], page.url
            assert "immutable" not in pages[0].headers["Cache-Control"]
    assert len(expected(COUNT)["languages/ru/"]) < 4  # one channel without an archive
