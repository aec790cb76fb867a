"""``/metrics`` of a real ``feedserver serve`` (granian, 2 workers) on 127.0.0.1.

Scraped and parsed with prometheus_client's own text parser: the request counters
move by exactly the requests sent, whichever worker answered each (the JSON access
log names the worker's pid, so the test knows both took some), the scheduler's build
counters reach the workers' scrapes, and a worker that exits loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import due_by_now
from tests.system.test_serve_e2e import READY_SECONDS, Server, get, serve_site

# Serial, in the `timing` group (these run one at a time, beside the fault tests): waits for both
# web workers to answer within its budget.
pytestmark = [pytest.mark.serial, pytest.mark.xdist_group("timing")]


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@contextlib.contextmanager
def serve_with(site_dir: Path, **env_extra: str) -> Iterator[Server]:
    """``feedserver serve --workers 2`` with extra FEEDSERVER_* settings; stopped by PID."""
    due_by_now(site_dir / "seeds")
    with serve_site(site_dir, **env_extra) as server:
        yield server


def scrape(server: Server) -> Samples:
    with urllib.request.urlopen(server.url + "metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line of the server's output that is a JSON object (the rest is the server's)."""
    found = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))  # a line that starts so must parse
    return found


def feed_pids(log: Path) -> set[str]:
    return {str(line["pid"]) for line in json_lines(log) if line.get("path") == "/feed.rss"}


def wait_for(check: Any, what: str) -> Any:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def test_metrics_of_both_workers_and_the_scheduler(site_dir: Path) -> None:
    with serve_with(site_dir, FEEDSERVER_LOG_FORMAT="json") as server:
        folders = list(Path(tempfile.gettempdir()).glob(
            f"feedserver-metrics-{server.process.pid}-*"))
        assert len(folders) == 1 and folders[0].is_dir()  # this run's own folder
        # The scheduler's first build is counted in its own process; the workers see it.
        first = wait_for(lambda: (s := scrape(server)) and
                         value(s, "feedserver_build_duration_seconds_count") >= 1 and s,
                         "the first build in /metrics")
        builds = sum(value(first, "feedserver_builds_total", outcome=o)
                     for o in ("published", "unchanged"))
        assert builds >= 1
        assert value(first, "feedserver_scheduler_active") == 1
        assert value(first, "feedserver_scheduler_heartbeat_timestamp_seconds") > 0
        assert value(first, "feedserver_articles") > 0
        assert value(first, "feedserver_channels") > 1
        assert ("feedserver_websub_subscriptions", ()) in first

        # Requests on fresh connections until both workers have answered some.
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            for _ in range(50):
                statuses = list(pool.map(lambda _: get(server, "/feed.rss").status, range(16)))
                assert statuses == [200] * 16
                sent += 16
                if len(feed_pids(server.log)) >= 2:
                    break
        assert len(feed_pids(server.log)) == 2, "one worker answered everything"
        body = get(server, "/feed.rss")
        etag = body.getheader("ETag")
        assert get(server, "/feed.rss", {"If-None-Match": etag}).status == 304
        sent += 1

        # A worker that exits at once (its counts of the last second not yet added to
        # the folder: they go at its exit): the server starts another, and every
        # scrape, whichever worker answers it, counts every request, each worker's
        # within a second (the counts are added in batches).
        gone = sorted(feed_pids(server.log))[0]
        os.kill(int(gone), signal.SIGTERM)
        wait_for(lambda: not Path(f"/proc/{gone}").exists(), "the worker to exit")
        key = dict(kind="feed", status="200", encoding="identity")

        def counted(samples: Samples) -> bool:
            return (value(samples, "feedserver_http_requests_total", **key) -
                    value(first, "feedserver_http_requests_total", **key) == sent
                    and value(samples, "feedserver_http_requests_total", kind="feed",
                              status="304", encoding="identity") == 1
                    and value(samples, "feedserver_http_conditional_requests_total",
                              kind="feed") == 1
                    and value(samples, "feedserver_http_response_bytes_total", kind="feed")
                    == sent * int(body.getheader("Content-Length")))

        def scrapes_counting_all() -> list[Samples] | None:
            found = [scrape(server) for _ in range(4)]
            return found if all(map(counted, found)) else None

        after = wait_for(scrapes_counting_all, "every request in every scrape")
        time.sleep(1.5)  # a second batch adds nothing more
        assert all(counted(scrape(server)) for _ in range(4))
        assert value(after[0], "feedserver_http_request_duration_seconds_count",
                     kind="feed") - value(first, "feedserver_http_request_duration_seconds_"
                                                 "count", kind="feed") >= sent + 1
        scrapers = {line["pid"] for line in json_lines(server.log)
                    if line.get("path") == "/metrics"}

        # Access lines and the scheduler's build summary are JSON objects, whatever the path.
        assert get(server, '/no"such\\path').status == 404
        wait_for(lambda: any(line.get("status") == 404 for line in json_lines(server.log)),
                 "the 404's access line")
        lines = json_lines(server.log)
        assert any(line.get("path") == '/no"such\\path' for line in lines)
        # A line is written just after its answer went out: wait for all of them.
        access = wait_for(lambda: len(found := [line for line in json_lines(server.log)
                                                if line.get("path") == "/feed.rss"])
                          == sent + 1 and found, f"{sent + 1} access lines of /feed.rss")
        assert {line["status"] for line in access} == {200, 304}
        assert all(line["method"] == "GET" and line["bytes"] >= 0 for line in access)
        # The server's own lines too (granian's start, its workers): one JSON object each.
        assert any(line.get("logger") == "_granian" and "Listening at" in line["message"]
                   for line in lines), server.log.read_text()
        assert not [line for line in server.log.read_text().splitlines()
                    if line.startswith(("[INFO]", "[WARNING]", "[ERROR]"))]
        summaries = [line for line in lines if line.get("event") == "build"]
        assert summaries and summaries[0]["outcome"] in {"published", "unchanged"}
        assert summaries[0]["articles"] == value(first, "feedserver_articles")
        assert scrapers  # the scrapes were logged too
    assert not folders[0].exists()  # removed with the server


def test_common_log_format_by_default(site_dir: Path) -> None:
    with serve_with(site_dir) as server:
        assert get(server, "/feed.atom").status == 200
        wait_for(lambda: '"GET /feed.atom HTTP/1.1" 200 ' in server.log.read_text(),
                 "the access line")
    line = next(x for x in server.log.read_text().splitlines() if "GET /feed.atom" in x)
    # host ident authuser [date] "request" status bytes: nothing after the bytes.
    host, ident, user, rest = line.split(" ", 3)
    assert (host, ident, user) == ("127.0.0.1", "-", "-")
    assert rest.startswith("[") and rest.split('" ')[1].split(" ")[0] == "200"
    assert rest.split('" ')[1].split(" ")[1].isdigit() and len(rest.split('" ')[1].split()) == 2
