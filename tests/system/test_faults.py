"""Faults: kill -9 in a loop, a full disk, a locked ledger, hung workers, busy writers.

(A config that turns bad: tests/integration/test_live_config.py.)

Everything here is real: builds are SIGKILLed processes, the disk is a tmpfs
that fills up (or a file-size limit where mounting is not allowed), the lock
is another process's ``BEGIN EXCLUSIVE``, the server is ``feedserver serve``
with granian on 127.0.0.1.  Every process a test starts is stopped by its PID.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from feedserver.build import parallel as workers
from feedserver.build.run import run_build
from feedserver.config import Settings, load_settings
from feedserver.publish import output as publish
from feedserver.publish.manifest import load_manifest
from feedserver.publish.output import JOURNAL, STATUS, recover
from feedserver.schedule.scheduler import Refresher
from feedserver.schedule.watcher import Writes
from tests.conftest import NOW, ROOT, write
from tests.faultkit import (
    Served,
    cli,
    consistency,
    fill,
    health,
    make_site,
    mutate,
    serving,
    tiny_disk,
    tree,
    until,
)

# Serial (`pytest -n 2 -m serial --dist loadgroup`), in a group of its own beside the timing
# tests: the kill -9 loop builds and kills for minutes and the locked ledger waits out a lock
# by the clock; neither times anything, but either would take a core from the parallel set.
pytestmark = [pytest.mark.serial, pytest.mark.xdist_group("faults")]


KILLS = 100
KILL_BUDGET = 240.0  # seconds; the loop stops there even if it has fewer kills (100 kills
# took 108 s on a quiet machine, beside nothing; the timing tests share the machine with it)


def test_kill_9_at_random_moments_of_a_publish(tmp_path: Path) -> None:
    """At least 100 builds of a changing corpus killed at random moments.

    After each kill: every file is whole as the kill left it (every feed
    parses); after the next start's recovery the folder is consistent (each
    manifest entry's bytes hash to its ETag, nothing unlisted, no temp file)
    and is the previous or the new version; the next build publishes the new
    one without any manual step.  See :class:`tests.killloop.KillLoop`.
    """
    done = subprocess.run([sys.executable, "-m", "tests.killloop", str(tmp_path / "site"),
                           str(KILLS), "7", str(KILL_BUDGET)], cwd=ROOT, capture_output=True,
                          text=True, timeout=KILL_BUDGET + 120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["failures"] == []
    assert result["kills"] >= KILLS, result
    phases = result["phases"]
    assert phases.get("renaming (journal written)", 0) > 0, phases  # roll-forward exercised
    assert phases.get("rendering/staging (marker, no journal)", 0) > 0, phases
    assert result["outcomes"].get("new", 0) > 0 and result["outcomes"].get("previous", 0) > 0


def test_a_publish_killed_after_its_manifest_still_removes_what_went_away(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kill loop found it: removals were not in the journal, so a kill between the
    last rename and the unlinks left removed pages on disk for good (nginx served them)."""
    run_build(settings, now=NOW)
    out = Path(settings.output_dir)
    victim = next(Path(settings.seeds_dir).glob("*.md"))
    victim.unlink()

    def killed(*_: object) -> None:
        raise KeyboardInterrupt("kill -9 after the renames")

    monkeypatch.setattr(publish, "_remove", killed)
    with pytest.raises(KeyboardInterrupt):
        run_build(settings, now=NOW)
    monkeypatch.undo()
    assert (out / JOURNAL).exists()
    gone = load_manifest(out)["gone"]
    assert gone and all((out / path).exists() for path in gone)  # the new manifest is live
    recover(out)
    files = tree(out)
    assert consistency(out, files) == [] and not any((out / p).exists() for p in gone)


def test_a_full_disk_keeps_the_output_reports_and_publishing_resumes(
        site_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    big = "---\ntitle: The long report\n---\n" + "".join(
        f"Paragraph {i}: {os.urandom(60).hex()}\n\n" for i in range(1500))  # ~200 kB
    disk = site_dir / "disk"
    with tiny_disk(disk, "8m") as mounted:
        if not mounted:
            pytest.skip("mount -t tmpfs is not allowed here (test_publish_safety covers "
                        "RLIMIT_FSIZE)")
        env = {"FEEDSERVER_OUTPUT_DIR": str(disk / "out")}
        settings = load_settings(site_dir / "config.toml", env=env)
        out = Path(settings.output_dir)
        assert cli(site_dir, "build", env=env).returncode == 0
        before, status = tree(out), json.loads((out / STATUS).read_text())
        write(Path(settings.seeds_dir) / "long.md", big)
        filler = fill(disk, leave=96 * 1024)  # room for a status note, not for the page
        failed = cli(site_dir, "build", env=env)
        assert failed.returncode == 1
        assert "No space left on device" in failed.stderr
        assert "previous output is unchanged" in failed.stderr
        assert tree(out) == before and consistency(out, before) == []
        report = health(settings)
        assert report["status"] == "degraded" and report["last_success"] == \
            status["last_success"]
        assert "No space left on device" not in json.dumps(report)  # public: no details
        assert "No space left on device" in \
            json.loads((out / STATUS).read_text())["last_error"]["message"]
        refresher = Refresher(settings)  # the scheduler's job meets the same disk
        assert refresher.run("test").report is None and "build failed" in caplog.text
        filler.unlink()  # space returns
        outcome = refresher.run("test")
        assert outcome.report is not None and "feed.rss" in outcome.report.written
        assert "The long report" in (out / "feed.rss").read_text(encoding="utf-8")
        assert consistency(out, tree(out)) == []
        assert health(settings)["status"] == "ok" and "last_error" not in health(settings)


LOCK_SECONDS = 30.0
LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""
PACE = 0.05  # seconds between one client's requests: 80 a second from four, 2,400 in all
PATHS = ("/healthz", "/feed.rss", "/feed.json", "/topics/energy/feed.atom", "/", "/topics/")


def hammer(served: Served, stop_when: Callable[[], bool]) -> Counter[str]:
    """Requests from 4 threads, with and without validators, until ``stop_when()``.

    Each client waits :data:`PACE` between requests, as pollers do: back to back, the
    four took a core for the whole 30 s from the kill loop beside them (the serial set's
    other group), and proved nothing more than a thousand requests do.
    """
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def client(index: int) -> None:
        etags: dict[str, str] = {}
        while not stop_when():
            path = PATHS[(index + sum(seen.values())) % len(PATHS)]
            headers = {"If-None-Match": etags[path]} if index % 2 and path in etags else {}
            try:
                status, _, etag = served.get(path, headers)
                etags[path] = etag
                outcome = str(status)
            except OSError as exc:
                outcome = f"error {type(exc).__name__}"
            with lock:
                seen[outcome] += 1
            time.sleep(PACE)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=LOCK_SECONDS + 30)
    return seen


def test_a_ledger_locked_for_30_s_costs_no_request_and_the_job_retries(site_dir: Path) -> None:
    """The web never touches the ledger: every request is answered while another process
    holds it with BEGIN EXCLUSIVE for 30 s; the job waits, retries and publishes after."""
    with serving(site_dir) as served:
        ledger = site_dir / "state" / "ledger.sqlite3"
        with subprocess.Popen([sys.executable, "-c", LOCKER, str(ledger), str(LOCK_SECONDS)],
                              stdout=subprocess.PIPE, text=True) as holder:
            try:
                assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
                write(served.seeds / "late.md", "---\ntitle: After the lock\n---\nText.\n")
                seen = hammer(served, lambda: holder.poll() is not None)
                blocked = "After the lock" not in served.titles() or holder.poll() is None
            finally:
                holder.wait(timeout=LOCK_SECONDS + 30)
        until(lambda: "After the lock" in served.titles(), 30, "publish after the lock",
              served.log)
        assert set(seen) <= {"200", "304"}, seen
        assert sum(seen.values()) > 100 and seen["304"] > 0, seen
        assert blocked  # nothing was published while the ledger was held
        assert "is locked" in served.log.read_text() and "retrying" in served.log.read_text()
        assert served.health()["status"] == "ok"


def test_build_workers_leave_on_their_own_never_by_sigterm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The load test found the scheduler stuck for good: ``with Pool()`` ends in
    terminate(), whose SIGTERM a worker still starting up loses (Python clears
    pending signals after fork), and the join that follows never returns
    (CPython #78178).  Workers must be closed and joined instead."""
    make_site(tmp_path, count=70)
    settings = load_settings(tmp_path / "config.toml", env={"FEEDSERVER_BUILD_PROCESSES": "2"})
    monkeypatch.setattr(workers, "SPLIT_MAX", 0)  # small jobs use bare forks, not a Pool
    terminated: list[int | None] = []
    real = multiprocessing.process.BaseProcess.terminate

    def recording(process: multiprocessing.process.BaseProcess) -> None:
        terminated.append(process.pid)
        real(process)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "terminate", recording)
    forked: list[int] = []
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", _counting(forked))
    report = run_build(settings, now=NOW)  # cold: parse and render pools
    mutate(tmp_path / "seeds", 1)
    run_build(settings, now=NOW)  # incremental: a render pool
    assert report.published and len(forked) >= 4  # both pools ran
    assert terminated == []


def _counting(forked: list[int]) -> Callable[..., None]:
    real = multiprocessing.process.BaseProcess.start

    def start(process: multiprocessing.process.BaseProcess) -> None:
        real(process)
        forked.append(process.pid or 0)
    return start


@pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="asks Linux's /proc")
@pytest.mark.parametrize("events", ["none seen", "a late move vouched for the first half"])
def test_a_file_open_for_writing_is_never_read_whatever_the_events_said(
        settings: Settings, events: str) -> None:
    """The load test published half-written files twice: a writer that opened before the
    watcher started and paused past the settle time, and a move event handled after the
    rewrite had begun (its snapshot vouched for the first half)."""
    writes = Writes(close_events=True)  # Linux's rules; this test plays the events
    refresher = Refresher(settings, writes=writes)
    refresher.run("start")
    path = Path(settings.seeds_dir) / "slow.md"
    with path.open("w", encoding="utf-8") as writer:
        writer.write("---\ntitle: Slowly written\n---\nThe first half.\n")
        writer.flush()
        os.utime(path, (time.time() - 30, time.time() - 30))  # past the settle time
        if events != "none seen":
            info = path.stat()
            writes.renamed_in("slow.md", (info.st_size, info.st_mtime_ns))
        outcome = refresher.run("interval")
        assert outcome.held == ["slow.md"] and outcome.retry_at is not None
        assert "Slowly written" not in all_titles(settings)
        writer.write("The second half.\n")
    info = path.stat()
    writes.closed("slow.md", (info.st_size, info.st_mtime_ns), wrote=True)
    assert refresher.run("slow.md written").held == []
    items = json.loads((Path(settings.output_dir) / "feed.json").read_text())["items"]
    item = next(i for i in items if i["title"] == "Slowly written")
    assert "The second half." in item["content_html"]


def all_titles(settings: Settings) -> set[str]:
    items = json.loads((Path(settings.output_dir) / "feed.json").read_text())["items"]
    return {item["title"] for item in items}
