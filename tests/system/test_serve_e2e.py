"""End to end: `feedserver serve` (granian, 2 workers) on 127.0.0.1, read by feedparser."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path

import feedparser
import pytest

from feedserver.config import Settings
from tests.conftest import due_by_now
from tests.integration.test_build import source_titles

READY_SECONDS = 90


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    seeds: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(server: Server, path: str, headers: dict[str, str] | None = None
        ) -> http.client.HTTPResponse:
    """One raw request (http.client sends exactly the headers given)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.read()  # cached on the object: .read() again gives b""
    conn.close()
    return response


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"serve was not ready after {READY_SECONDS}s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server we started, by its PID: TERM, then KILL if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def serve_site(site_dir: Path, workers: int = 2, ready: bool = True, port: int | None = None,
               **env_extra: str) -> Iterator[Server]:
    """``feedserver serve --workers N`` over the site's folders on a free port (or
    ``port``), ready (``ready=False``: as soon as it is started); stopped by its PID
    afterwards.
    ``env_extra``: more FEEDSERVER_* settings; none comes from the tests' own environment
    (nor a metrics folder of another server)."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FEEDSERVER_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(FEEDSERVER_BASE_URL=url, FEEDSERVER_SEEDS_DIR=str(site_dir / "seeds"),
               FEEDSERVER_OUTPUT_DIR=str(site_dir / "public"),
               FEEDSERVER_STATE_DIR=str(site_dir / "state"), **env_extra)
    log = site_dir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "feedserver", "serve", "--port", str(port),
             "--workers", str(workers)],
            cwd=site_dir, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        if ready:
            wait_ready(url, process, log)
        yield Server(url, port, process, log, site_dir / "seeds")
    finally:
        stop(process)


@pytest.fixture
def server(site_dir: Path) -> Iterator[Server]:
    due_by_now(site_dir / "seeds")
    with serve_site(site_dir) as running:
        yield running


def test_serve_builds_and_feedparser_reads_every_channel(server: Server) -> None:
    assert f"open {server.url}" in server.log.read_text()
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    if children.exists():  # the master forked two workers (and started one scheduler)
        # The first worker may answer /healthz before the master has forked the second.
        deadline = time.monotonic() + READY_SECONDS
        while True:
            pids = children.read_text().split()
            workers = [p for p in pids if b"feedserver.schedule.owner" not in
                       Path(f"/proc/{p}/cmdline").read_bytes()]
            if len(pids) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(workers) == 2 and len(pids) == 3
    with urllib.request.urlopen(server.url + "topics.json", timeout=10) as response:
        channels = json.loads(response.read())["channels"]
    titles = source_titles(server.seeds)
    all_ids: list[str] = []
    for channel in channels:
        for fmt in ("rss", "atom"):
            first = feedparser.parse(channel["feeds"][fmt])
            assert first.status == 200 and not first.bozo, (channel["slug"], first.bozo_exception)
            assert first.version == {"rss": "rss20", "atom": "atom10"}[fmt]
            assert len(first.entries) == channel["items"]
            if channel["slug"] == "all":
                assert {e.title for e in first.entries} == titles
                all_ids = [e.id for e in first.entries]
            else:
                assert {e.id for e in first.entries} <= set(all_ids)
            again = feedparser.parse(channel["feeds"][fmt], etag=first.etag,
                                     modified=first.modified)
            assert again.status == 304 and not again.entries
        with urllib.request.urlopen(channel["feeds"]["json"], timeout=10) as response:
            assert response.headers["Content-Type"] == "application/feed+json; charset=utf-8"
            items = json.loads(response.read())["items"]
        assert len(items) == channel["items"]
    for entry in feedparser.parse(server.url + "feed.atom").entries:
        with urllib.request.urlopen(entry.link, timeout=10) as response:
            assert escape(entry.title, quote=False) in response.read().decode()


def test_a_stopped_server_ends_quietly(site_dir: Path) -> None:
    """TERM (a deploy, systemd, a Procfile runner; Ctrl-C's sibling): the workers finish,
    the server says so and exits 0 with nothing alarming on the way out, and the
    scheduler is told once (a second signal would cut a running build's grace).  One
    worker: once it has answered, it has granian's signal handlers (a worker still
    booting leaves at once: ``serve._BootingWorker``), so its stop is the graceful one."""
    due_by_now(site_dir / "seeds")
    with serve_site(site_dir, workers=1) as running:
        assert get(running, "/feed.atom").status == 200
        running.process.terminate()
        assert running.process.wait(timeout=20) == 0
    said = running.log.read_text()
    assert "Traceback" not in said and "Exception ignored" not in said, said
    assert said.count("Stopped worker-1") == 1, said
    assert "Unexpected exit" not in said, said  # granian's word for a worker's failure
    assert "second signal" not in said, said
    assert '"GET /feed.atom HTTP/1.1" 200' in said  # the access log was written out


def test_real_server_headers(server: Server) -> None:
    plain = get(server, "/topics/energy/feed.rss")
    evil = get(server, "/topics/energy/feed.rss", {"Host": "evil.example"})
    assert plain.status == evil.status == 200
    assert plain.getheader("ETag") == evil.getheader("ETag")
    assert len(plain.msg.get_all("Date") or []) == 1
    gz = get(server, "/topics/energy/feed.rss", {"Accept-Encoding": "gzip"})
    assert gz.getheader("Content-Encoding") == "gzip"
    assert gz.getheader("ETag") != plain.getheader("ETag")
    cached = get(server, "/topics/energy/feed.rss",
                 {"Accept-Encoding": "gzip", "If-None-Match": gz.getheader("ETag")})
    assert cached.status == 304
    for name in ("ETag", "Last-Modified", "Cache-Control", "Vary",
                 "Access-Control-Allow-Origin"):
        assert cached.getheader(name) == gz.getheader(name), name
    assert get(server, "/no/such/feed.json").status == 404


def test_serve_helpers(settings: Settings) -> None:
    """Wildcard binds print a loopback address; a build happens only when nothing is out."""
    from feedserver.serve import address, ensure_built, server_options

    assert address("0.0.0.0", 8000) == "http://127.0.0.1:8000/"
    assert address("::", 9) == "http://[::1]:9/"
    options = server_options(settings, "::1", 80, workers=3)
    assert (options["address"], options["port"], options["workers"]) == ("::1", 80, 3)
    assert server_options(settings, "127.0.0.1", 80)["workers"] == settings.workers
    first = ensure_built(settings)
    assert first is not None and first.published and first.articles > 0
    assert ensure_built(settings) is None
