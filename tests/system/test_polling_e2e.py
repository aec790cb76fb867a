"""Polite freshness against a real ``feedserver serve`` (granian, 2 workers): each feed's
max-age and RSS ttl follow its channel's pace, and only a client that fetches a feed in
full far faster than that gets 429.

Clients are told apart by their source address: Linux answers on all of 127.0.0.0/8,
so each client binds its own loopback address.  ``refresh_interval`` is an hour, so
every max-age is at least an hour and a budget of 3 cannot refill during a test.
"""

from __future__ import annotations

import contextlib
import http.client
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from feedserver.core.freshness import channel_max_age
from tests.conftest import due_by_now
from tests.system.test_serve_e2e import Server, serve_site

REFRESH = 3600
BUDGET = 3
PROXY = "127.0.0.5"


@contextlib.contextmanager
def serving(site_dir: Path, **settings: str) -> Iterator[Server]:
    """``feedserver serve --workers 2`` with extra FEEDSERVER_* settings; stopped by PID."""
    due_by_now(site_dir / "seeds")
    with serve_site(site_dir, FEEDSERVER_REFRESH_INTERVAL=str(REFRESH),
                    **{f"FEEDSERVER_{k.upper()}": v for k, v in settings.items()}) as server:
        yield server


def fetch(server: Server, path: str, source: str = "127.0.0.1",
          headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    """One GET on a new connection from ``source`` (a loopback address of its own)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10,
                                      source_address=(source, 0))
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


@pytest.fixture
def server(site_dir: Path) -> Iterator[Server]:
    with serving(site_dir, poll_budget=str(BUDGET), trusted_proxies=PROXY) as running:
        yield running


def test_max_age_and_ttl_follow_each_channel(server: Server) -> None:
    seen = set()
    for path in ("/feed.rss", "/topics/energy/feed.rss", "/topics/diplomacy/feed.rss"):
        response = fetch(server, path, "127.0.0.9")[0]
        atom = feedparser.parse(server.url + path[1:].replace(".rss", ".atom"))
        updates = [datetime(*e.updated_parsed[:6], tzinfo=UTC) for e in atom.entries]
        fresh = channel_max_age(updates, REFRESH)
        assert response.getheader("Cache-Control") == f"public, max-age={fresh}"
        rss = feedparser.parse(server.url + path[1:])  # the reader's own request
        assert not rss.bozo and int(rss.feed.ttl) == -(-fresh // 60)
        assert rss.modified == response.getheader("Last-Modified")  # exact, as ever
        assert rss.headers["cache-control"] == f"public, max-age={fresh}"  # gzip body too
        seen.add(fresh)
    assert min(seen) >= REFRESH and max(seen) <= 86_400


def test_only_the_impolite_client_gets_429(server: Server) -> None:
    impolite = [fetch(server, "/feed.rss", "127.0.0.2") for _ in range(BUDGET + 2)]
    assert [r.status for r, _ in impolite] == [200] * BUDGET + [429, 429]
    refused, text = impolite[-1]
    assert 0 < int(refused.getheader("Retry-After")) <= 86_400
    assert refused.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert b"Too Many Requests" in text and b"If-None-Match" in text
    etag = impolite[0][0].getheader("ETag")
    modified = impolite[0][0].getheader("Last-Modified")
    # The same client, asking politely: 304, never refused.
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}) * 5:
        assert fetch(server, "/feed.rss", "127.0.0.2", headers)[0].status == 304
    # Another channel's budget is its own; another client's too.
    assert fetch(server, "/topics/energy/feed.rss", "127.0.0.2")[0].status == 200
    assert fetch(server, "/feed.rss", "127.0.0.3")[0].status == 200


def test_polite_readers_are_never_refused(server: Server) -> None:
    """feedparser sends back the ETag and date it got: 304 every time, as often as it likes."""
    first = feedparser.parse(server.url + "feed.atom")
    assert first.status == 200 and first.entries
    for _ in range(BUDGET * 5):
        again = feedparser.parse(server.url + "feed.atom", etag=first.etag,
                                 modified=first.modified)
        assert again.status == 304
    # Its full fetches (the first one included) are answered up to the budget.
    assert [feedparser.parse(server.url + "feed.atom").status
            for _ in range(BUDGET - 1)] == [200] * (BUDGET - 1)


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(server: Server) -> None:
    def via(source: str, client: str) -> int:
        return fetch(server, "/topics/energy/feed.atom", source,
                     {"X-Forwarded-For": f"{client}, {source}"})[0].status

    # Behind the trusted proxy, each client has its own budget.
    assert [via(PROXY, "198.51.100.7") for _ in range(BUDGET + 1)] == [200] * BUDGET + [429]
    assert via(PROXY, "198.51.100.8") == 200
    # An untrusted peer cannot pick its address: every request counts for the peer.
    statuses = [via("127.0.0.6", f"203.0.113.{n}") for n in range(BUDGET + 1)]
    assert statuses == [200] * BUDGET + [429]


def test_one_setting_turns_it_off(site_dir: Path) -> None:
    with serving(site_dir, poll_budget="0") as server:
        statuses = {fetch(server, "/feed.rss", "127.0.0.2")[0].status for _ in range(BUDGET * 4)}
        assert statuses == {200}
