"""Combined and filtered feeds from a real ``feedserver serve`` (issue 14): real HTTP with
urllib and feedparser, the W3C Feed Validation Service's validator over what was served,
and the pages' feed form in headless Chromium.

Expected items come from the seeds (tests/query_site.py), never from another answer.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
import pytest

from tests.browser import Watch, chromium, feedserver, missing_reason, screenshot
from tests.query_site import newest_first, seeds, write_site
from tests.system.test_serve_e2e import free_port

# The W3C Feed Validation Service's validator (tests/w3c.py says how to set it up): run when
# FEEDSERVER_W3C_PYTHON names a Python that can import it, skipped otherwise.
W3C = Path(__file__).resolve().parent.parent / "w3c.py"
W3C_PYTHON = Path(os.environ.get("FEEDSERVER_W3C_PYTHON") or "/nonexistent")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("query-serve")
    config = write_site(root)
    with feedserver(config, free_port()) as url:
        yield url


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes
    url: str


def get(url: str, **headers: str) -> Answer:
    """One request (redirects followed, as urllib does), read and closed."""
    request = urllib.request.Request(url, headers={"Accept": "*/*", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, response.headers, response.read(), response.url)
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, error.headers, error.read(), url)


def titles_of(body: bytes, kind: str) -> list[str]:
    if "json" in kind:
        return [item["title"] for item in json.loads(body)["items"]]
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-type": kind})
    assert not parsed.bozo, parsed.bozo_exception
    return [entry.title for entry in parsed.entries]


def expected(keep: Any, most: int = 4) -> list[str]:
    return [s.title for s in newest_first([s for s in seeds() if keep(s)])][:most]


CASES = [  # (path and query, what the seeds say it holds)
    ("topics/alpha+beta/feed.atom", lambda s: {"alpha", "beta"} <= set(s.topics)),
    ("topics/alpha,gamma/feed.rss", lambda s: {"alpha", "gamma"} & set(s.topics)),
    ("topics/beta,delta/feed.json?lang=en", lambda s: {"beta", "delta"} & set(s.topics)
     and s.lang == "en"),
    ("feed.rss?q=steppe", lambda s: "STEPPE" in s.words),  # canonical: its self link
    ("languages/de/feed.atom?limit=2", lambda s: s.lang == "de"),
]


def test_served_answers_hold_what_the_seeds_say(server: str, tmp_path: Path) -> None:
    saved: list[str] = []
    for path, keep in CASES:
        answer = get(server + path)
        assert answer.status == 200
        body, kind = answer.body, answer.headers["Content-Type"]
        most = 2 if "limit=2" in path else 4
        assert titles_of(body, kind) == expected(keep, most), path
        if not path.partition("?")[0].endswith(".json"):
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_bytes(body)  # named as its URL: rel="self" must match
            saved.append(path)
    # Other orders are redirected to the sorted URL, query kept; urllib follows (308).
    moved = get(f"{server}topics/gamma,alpha/feed.rss?limit=1")
    assert moved.url == f"{server}topics/alpha,gamma/feed.rss?limit=1"
    assert titles_of(moved.body, moved.headers["Content-Type"]) == \
        expected(lambda s: {"alpha", "gamma"} & set(s.topics), 1)
    full, one = get(f"{server}feed.atom"), get(f"{server}feed.atom?limit=1")
    assert one.headers["ETag"] != full.headers["ETag"]
    assert get(f"{server}feed.atom?limit=1", **{"If-None-Match": one.headers["ETag"]}
               ).status == 304
    assert get(f"{server}topics/alpha,nosuch/feed.atom").status == 404
    bad = get(f"{server}feed.json?since=never")
    assert bad.status == 400 and json.loads(bad.body)["error"].startswith("since")
    if W3C_PYTHON.exists():
        checked = subprocess.run([str(W3C_PYTHON), str(W3C), server, str(tmp_path), *saved],
                                 capture_output=True, text=True, timeout=300)
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")
def test_the_form_builds_a_feed_a_reader_can_follow(server: str) -> None:
    watch = Watch()
    with chromium() as browser:
        tab = watch.attach(browser.new_page())
        tab.goto(server)
        tab.select_option("#query-topics", ["beta", "alpha"])
        tab.check("input[name=match][value=all]")
        tab.fill("#query-q", "Café")
        tab.click("form button[type=submit]")
        tab.wait_for_url("**/subscribe?**")
        screenshot(tab, "query-subscribe")
        link = tab.locator("a.feed[type='application/atom+xml']")
        href = link.get_attribute("href")
        assert href == f"{server}topics/alpha+beta/feed.atom?q=cafe"
        answer = tab.request.get(href, headers={"Accept": "application/atom+xml"})
        assert answer.status == 200
        assert titles_of(answer.body(), answer.headers["content-type"]) == expected(
            lambda s: {"alpha", "beta"} <= set(s.topics) and "Café" in s.words)
        assert watch.page_errors == [] and watch.errors == []
