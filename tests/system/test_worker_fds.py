"""A web worker under a common open-files limit answers searches over many articles.

A ``q`` (or ``since``) answer reads the item record of every article it has to look at,
each through :func:`feedserver.web.published.open_beneath`, which opens the folders on
the way one by one.  In a gunicorn gevent worker ``os.close`` is gevent's, which leaves
the closing of anything but a regular file (those folders) to its event loop: a request
that never waits for the network kept every folder it opened, four per record, until it
ended.  At the 1,024 open files a systemd service or a login shell gets by default, a
search of a 1,000-article site answered 503 "the item record of ... is not published"
after about 250 records (at 50,000 articles and a limit of 20,000, the same after about
5,000).  This serves a small site under a small limit, so that a request holding one
folder per record it reads runs out, and asks for searches that read every record.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from tests.browser import feedserver
from tests.system.test_serve_e2e import free_port

ARTICLES = 60
# The worker itself holds about 20 descriptors (sockets, pipes, metrics files); a search
# of ARTICLES records held four folders per record (240 more) before the fix, one
# record's five at most after it.
OPEN_FILES = 96
BASE = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def _site(root: Path) -> Path:
    (root / "seeds").mkdir(parents=True)
    for n in range(ARTICLES):
        word = "steppe" if n % 10 == 3 else "river"
        (root / "seeds" / f"a{n:03d}.md").write_text(
            f"---\ntitle: Report {n:03d}\ndate: {(BASE + timedelta(hours=n)).isoformat()}\n"
            f"topics: [plains]\n---\nA report about the {word}, number {n}.\n",
            encoding="utf-8")
    (root / "config.toml").write_text(
        'site_title = "Descriptors"\nbase_url = "http://127.0.0.1:8000/"\nmax_items = 10\n'
        'poll_budget = 0\ndetect_topics = false\ndetect_language = false\n'
        'auto_topics = false\nseeds_dir = "seeds"\noutput_dir = "public"\n'
        'state_dir = "state"\n', encoding="utf-8")
    return root / "config.toml"


def _limited() -> None:
    """In the server's process, before it starts: few open files, as a tight service
    unit would allow."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fds")
    config = _site(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    subprocess.run([sys.executable, "-m", "feedserver", "build", "--config", str(config)],
                   check=True, cwd=root, env=env, capture_output=True, timeout=300)
    with feedserver(config, free_port(), ("--no-scheduler",), _limited) as url:
        yield url


def _titles(url: str) -> list[str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        with error:
            pytest.fail(f"{url}: {error.code} {error.read()[:300]!r}")
    parsed = feedparser.parse(io.BytesIO(body),
                              response_headers={"content-type": "application/atom+xml"})
    assert not parsed.bozo, parsed.bozo_exception
    return [entry.title for entry in parsed.entries]


def test_a_search_reads_every_record_under_a_small_limit(server: str) -> None:
    # No article holds the word: every record is read, none is kept.
    assert _titles(f"{server}feed.atom?q=tundra") == []
    # Six hold it, the oldest at the end of the history: all found, newest first.
    assert _titles(f"{server}topics/plains/feed.atom?limit=10&q=steppe") == \
        [f"Report {n:03d}" for n in range(ARTICLES - 1, -1, -1) if n % 10 == 3]

