"""End to end: the one scheduler of a deployment, with real processes on 127.0.0.1.

`feedserver serve` with two granian workers: a file added to seeds/ is served
by every worker (each request's worker is found from the kernel's socket
table), and the job runs once per interval, in one process, not once per
worker.  Two `feedserver watch` on one state folder: one runs, the other
stands by and takes over when the first is killed.  A cold build runs in a process of
its own (`feedserver/schedule/apart.py`): a watch stopped or killed meanwhile takes it
along, and `serve`'s scheduler rebuilds a deleted output that way and goes on
publishing.  Waits are bounded; no duration is asserted (latency is measured in
benchmarks/watch_latency.py).
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import feedparser
import pytest

from feedserver.publish.output import MANIFEST
from tests.conftest import due_by_now, recent
from tests.faultkit import until
from tests.system.test_serve_e2e import free_port, serve_site, stop, wait_ready
from tests.system.test_worker_boot import children

# Serial, in the `timing` group (these run one at a time, beside the fault tests): a standby's
# takeover and one job per interval, observed over a few intervals.
pytestmark = [pytest.mark.serial, pytest.mark.xdist_group("timing"),
              pytest.mark.skipif(not Path("/proc/net/tcp").exists(),
                                 reason="finds the serving worker through /proc")]

INTERVAL = 2
RUN = re.compile(r"^(\S+ \S+) \[(\d+)\] feedserver\.schedule\.scheduler: run \d+ \(([^)]*)\)", re.M)
STARTED = re.compile(r"\[(\d+)\] feedserver\.schedule\.scheduler: scheduler started in pid (\d+)")


@dataclass
class Run:
    at: datetime
    pid: int
    reason: str


def runs(log: Path) -> list[Run]:
    return [Run(datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f"), int(m[2]), m[3])
            for m in RUN.finditer(log.read_text(errors="replace"))]


def environment(site: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env.update(FEEDSERVER_BASE_URL=url, FEEDSERVER_SEEDS_DIR=str(site / "seeds"),
               FEEDSERVER_OUTPUT_DIR=str(site / "public"),
               FEEDSERVER_STATE_DIR=str(site / "state"),
               FEEDSERVER_REFRESH_INTERVAL=str(INTERVAL))
    return env


def spawn(site: Path, args: list[str], log: Path, env: dict[str, str]
          ) -> subprocess.Popen[bytes]:
    command = args if args[0] == "-c" else ["-m", "feedserver", *args]
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, *command], cwd=site,
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def socket_owner(port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server side of the connection from ``client_port``."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":"), fields[2].split(":")
        if int(local[1], 16) == port and int(remote[1], 16) == client_port:
            inode = fields[9]
    for pid in pids:
        with os.scandir(f"/proc/{pid}/fd") as fds:
            for fd in fds:
                try:
                    if os.readlink(fd.path) == f"socket:[{inode}]":
                        return pid
                except OSError:
                    continue
    return None


def fetch(port: int, path: str, workers: list[int]) -> tuple[int | None, bytes]:
    """GET ``path`` on a fresh connection; the worker that answered, and the body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        body = conn.getresponse().read()
        return socket_owner(port, conn.sock.getsockname()[1], workers), body
    finally:
        conn.close()


@pytest.fixture
def serve(site_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = site_dir / "serve.log"
    args = ["serve", "--port", str(port), "--workers", "2"]
    process = spawn(site_dir, args, log, environment(site_dir, url))
    try:
        wait_ready(url, process, log)
        yield process, port, log
    finally:
        stop(process)


def test_a_new_file_reaches_every_worker_and_the_job_runs_once_per_interval(
        serve: tuple[subprocess.Popen[bytes], int, Path], site_dir: Path) -> None:
    process, port, log = serve
    until(lambda: STARTED.search(log.read_text()), 30, "scheduler", log)
    scheduler = int(STARTED.findall(log.read_text())[0][1])
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    workers = [int(p) for p in children if int(p) != scheduler]
    assert len(workers) == 2
    until(lambda: runs(log), 30, "first run", log)

    title = "Night train to Almaty returns"
    (site_dir / "seeds" / "night-train.md").write_text(
        f'+++\ntitle = "{title}"\ndate = {recent()}\n+++\n\nThe railway is back.\n',
        encoding="utf-8")
    served_by: set[int] = set()

    def every_worker_serves_it() -> bool:
        pid, body = fetch(port, "/topics/transport/feed.rss", workers)
        if pid is not None and title in {e.title for e in feedparser.parse(body).entries}:
            served_by.add(pid)
        return served_by == set(workers)

    until(every_worker_serves_it, 20, "item served by both workers", log)
    until(lambda: len([r for r in runs(log) if r.reason == "interval"]) >= 4, 30,
          "four interval runs", log)

    seen = runs(log)
    assert {r.pid for r in seen} == {scheduler}  # one process ran every build
    assert len(STARTED.findall(log.read_text())) == 1
    ticks = [r for r in seen if r.reason == "interval"]
    span = (seen[-1].at - seen[0].at).total_seconds()
    assert len(ticks) <= span / INTERVAL + 1  # once per interval; per worker would be twice
    assert 1 <= len([r for r in seen if "night-train" in r.reason]) <= 2

    process.send_signal(signal.SIGTERM)
    process.wait(30)
    until(lambda: not alive(scheduler), 10, "scheduler exit", log)
    assert "scheduler stopped after" in log.read_text()


def test_a_killed_scheduler_comes_back_and_a_killed_master_takes_it_along(
        serve: tuple[subprocess.Popen[bytes], int, Path]) -> None:
    process, _, log = serve
    until(lambda: STARTED.search(log.read_text()), 30, "scheduler", log)
    first = int(STARTED.findall(log.read_text())[0][1])
    os.kill(first, signal.SIGKILL)
    until(lambda: len(STARTED.findall(log.read_text())) == 2, 30, "restarted scheduler", log)
    scheduler = int(STARTED.findall(log.read_text())[1][1])
    assert scheduler != first and alive(scheduler)
    until(lambda: [r for r in runs(log) if r.pid == scheduler], 30, "restarted run", log)
    process.kill()
    process.wait(10)
    until(lambda: not alive(scheduler), 10, "orphaned scheduler to stop", log)


def test_two_watchers_on_one_state_run_one_scheduler(site_dir: Path) -> None:
    env = environment(site_dir, "http://127.0.0.1:8000/")
    first_log, second_log = site_dir / "watch1.log", site_dir / "watch2.log"
    first = spawn(site_dir, ["watch"], first_log, env)
    second = None
    try:
        until(lambda: runs(first_log), 30, "first watcher's run", first_log)
        second = spawn(site_dir, ["watch"], second_log, env)
        until(lambda: "standing by" in second_log.read_text(), 30, "standby", second_log)
        time.sleep(INTERVAL + 0.5)
        assert runs(second_log) == []  # it never built while the first one ran

        first.kill()
        first.wait(10)
        until(lambda: runs(second_log), 30, "takeover", second_log)
        (site_dir / "seeds" / "after.md").write_text(
            f'+++\ntitle = "After the takeover"\ndate = {recent()}\n+++\n\nText.\n',
            encoding="utf-8")
        feed = site_dir / "public" / "feed.rss"
        until(lambda: "After the takeover" in feed.read_text(encoding="utf-8"), 20,
              "item published by the second watcher", second_log)
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    finally:
        stop(first)
        if second is not None:
            stop(second)


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (children of all its threads, recursively)."""
    try:
        kids = children(pid)
    except FileNotFoundError:  # it ended meanwhile
        return set()
    return kids.union(*map(_descendants, kids))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_watch_stopped_during_its_cold_build_takes_the_build_along(
        site_dir: Path, sig: signal.Signals) -> None:
    from benchmarks.corpus import generate

    generate(site_dir / "seeds" / "corpus", 1000, seed=3)  # a cold build of several seconds
    past = time.time() - 3600  # whole files: none held back
    for path in (site_dir / "seeds").rglob("*"):
        os.utime(path, (past, past))
    log = site_dir / "watch.log"
    watch = spawn(site_dir, ["watch"], log, environment(site_dir, "http://127.0.0.1:8000/"))
    try:
        until(lambda: "building it in a process of its own" in log.read_text(), 30,
              "the cold build", log)
        until(lambda: _descendants(watch.pid), 10, "the cold build's process", log)
        below = _descendants(watch.pid)
        assert not runs(log)  # still building
        watch.send_signal(sig)  # to the watch alone, not its process group
        watch.wait(15)
        until(lambda: not any(alive(pid) for pid in below), 10,
              "the cold build's processes to end", log)
    finally:
        stop(watch)


def test_serve_rebuilds_a_deleted_output_apart_and_goes_on_publishing(site_dir: Path) -> None:
    due_by_now(site_dir / "seeds")
    with serve_site(site_dir, FEEDSERVER_REFRESH_INTERVAL=str(INTERVAL)) as server:
        until(lambda: STARTED.search(server.log.read_text()), 30, "scheduler", server.log)
        scheduler = int(STARTED.findall(server.log.read_text())[0][1])
        until(lambda: runs(server.log), 30, "the scheduler's first run", server.log)

        def served(title: str) -> bool:
            try:  # a 404 or 503 while the output is rebuilt is an HTTPError (an OSError)
                with urllib.request.urlopen(server.url + "feed.atom", timeout=10) as response:
                    body = response.read()
            except OSError:
                return False
            return title in {e.title for e in feedparser.parse(body).entries}

        public = site_dir / "public"
        # The interval's builds write status.json meanwhile: remove until the manifest is gone.
        until(lambda: shutil.rmtree(public, ignore_errors=True) or not (public / MANIFEST)
              .exists(), 10, "the output removed", server.log)
        until(lambda: f"[{scheduler}] feedserver.schedule.scheduler: cold build"
              in server.log.read_text(), 30, "the cold build apart", server.log)
        until(lambda: (site_dir / "public" / "feed.atom").is_file(), 30, "the rebuilt output",
              server.log)
        (site_dir / "seeds" / "after-rebuild.md").write_text(
            f'+++\ntitle = "Published after the rebuild"\ndate = {recent()}\n+++\n\nText.\n',
            encoding="utf-8")
        until(lambda: served("Published after the rebuild"), 30, "the later edit served",
              server.log)
        assert {r.pid for r in runs(server.log)} == {scheduler}
