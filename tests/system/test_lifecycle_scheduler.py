"""The scheduler's side of issues 12 and 17: back-off, an orphaned lock holder, a lost output.

The schedulers run in threads of the test (``run_forever`` with a ``stop``
event); the orphaned holder of ``scheduler.lock`` is a real process that the
test starts and kills.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import feedserver.schedule.scheduler as scheduler_module
from feedserver.config import Settings
from feedserver.core.errors import PublishError
from feedserver.publish.output import MANIFEST, STATUS
from feedserver.schedule.locks import SCHEDULER_LOCK, lock_file
from feedserver.schedule.scheduler import (
    BACKOFF_CAP,
    BACKOFF_FIRST,
    Refresher,
    Scheduler,
    run_forever,
)
from tests.integration.test_scheduler import FakeClock, article, eventually, published


def status(out: Path) -> dict[str, object]:
    try:
        loaded = json.loads((out / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


@pytest.fixture
def out(settings: Settings) -> Path:
    return Path(settings.output_dir)


@pytest.fixture
def owner(settings: Settings) -> Iterator[list[threading.Event]]:
    """Stop events of the schedulers a test starts in threads; all stopped at the end."""
    stops: list[threading.Event] = []
    threads: list[threading.Thread] = []

    def start(target_settings: Settings, **kwargs: object) -> threading.Event:
        stop = threading.Event()
        thread = threading.Thread(target=run_forever, args=(target_settings,),
                                  kwargs={"stop": stop, **kwargs})
        thread.start()
        stops.append(stop)
        threads.append(thread)
        return stop

    yield start  # type: ignore[misc]
    for stop in stops:
        stop.set()
    for thread in threads:
        thread.join(15)
    assert not any(t.is_alive() for t in threads)


def test_failed_builds_back_off_with_one_line_each(
        settings: Settings, out: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="feedserver")
    clock = FakeClock()
    refresher = Refresher(settings, clock)
    scheduler = Scheduler(refresher)  # its job, run by hand (APScheduler not started)
    assert refresher.run("start").report is not None  # a good build first
    calls: list[str] = []

    def broken(*_args: object, **_kwargs: object) -> object:
        calls.append("build")
        raise PublishError(f"cannot write {settings.state_dir}/ledger.sqlite: disk full")

    monkeypatch.setattr(scheduler_module, "run_build", broken)
    waits = []
    for attempt in range(1, 8):
        scheduler._run()
        assert len(calls) == attempt and refresher.retry_at is not None
        waits.append((refresher.retry_at - clock.now).total_seconds())
        for reason in ("seeds/a.md written", "interval"):  # before retry_at: nothing is tried
            scheduler.wake(reason)
            scheduler._run()
        assert len(calls) == attempt
        noted = status(out)["last_error"]
        assert isinstance(noted, dict) and "disk full" in str(noted["message"])
        assert noted["failures"] == attempt
        clock.advance(waits[-1])
    assert waits == [min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** n) for n in range(7)]
    refresher.failures = 40
    assert refresher.backoff() == max(BACKOFF_CAP, settings.refresh_interval)
    failed = [r for r in caplog.records if "build failed" in r.getMessage()]
    assert len(failed) == 7 and all(r.exc_info is None for r in failed)
    assert "Traceback" not in caplog.text
    refresher.failures = 7
    monkeypatch.undo()
    assert refresher.run("direct").report is not None  # a direct call always tries
    assert refresher.failures == 0 and "build succeeded again" in caplog.text
    assert "last_error" not in status(out)


def test_a_state_folder_that_cannot_hold_the_lock_is_reported_not_a_crash(
        settings: Settings, out: Path, tmp_path: Path, owner: object,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="feedserver")
    blocked = tmp_path / "state-is-a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)
    bad = dataclasses.replace(settings, state_dir=str(blocked))
    stop = owner(bad, events=False)  # type: ignore[operator]
    assert eventually(lambda: "cannot take" in caplog.text)
    # The line is logged just before status.json is written: wait for the file too.
    assert eventually(lambda: isinstance(status(out).get("last_error"), dict))
    noted = status(out).get("last_error")
    assert isinstance(noted, dict) and "state folder" in str(noted["message"])
    stop.set()


def _holder(settings: Settings, parent: int) -> subprocess.Popen[bytes]:
    """A process that takes scheduler.lock and records ``parent`` as its server."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from feedserver.schedule.locks import Holder, try_lock, write_holder\n"
        "fd = try_lock(Path(sys.argv[1]))\n"
        "write_holder(fd, Holder(__import__('os').getpid(), int(sys.argv[2]), 'serve'))\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n")
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(lock_file(settings, SCHEDULER_LOCK)), str(parent)],
        stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"held\n"
    return process


def test_a_live_orphan_holding_the_lock_is_reported_and_a_dead_one_is_no_obstacle(
        settings: Settings, out: Path, owner: object,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="feedserver")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid stands for a server that is gone
    orphan = _holder(settings, gone.pid)
    try:
        owner(settings, events=False)  # type: ignore[operator]
        assert eventually(lambda: f"held by pid {orphan.pid}" in caplog.text)
        assert eventually(lambda: f"kill {orphan.pid}" in str(status(out).get(
            "scheduler_error", "")))
        assert not (out / MANIFEST).exists()  # nothing published behind the orphan
    finally:
        orphan.kill()  # the test's own process
        orphan.communicate()
    assert eventually(lambda: (out / MANIFEST).exists(), 30)  # the lock died with it
    assert "scheduler_error" not in status(out) or not status(out)["scheduler_error"]
    assert caplog.text.count(f"held by pid {orphan.pid}") == 1  # one line, not one per look


def test_a_holder_whose_server_lives_is_not_reported(
        settings: Settings, owner: object, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="feedserver")
    holder = _holder(settings, os.getpid())  # its parent is this test: alive
    try:
        owner(settings, events=False)  # type: ignore[operator]
        assert eventually(lambda: "standing by" in caplog.text)
        assert not eventually(lambda: "held by pid" in caplog.text, 3)
    finally:
        holder.kill()
        holder.communicate()


def test_a_deleted_output_folder_is_rebuilt_at_once(
        settings: Settings, out: Path, owner: object,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="feedserver")
    slow = dataclasses.replace(settings, refresh_interval=3600)  # no interval help
    owner(slow, events=False)  # type: ignore[operator]
    assert eventually(lambda: (out / MANIFEST).exists(), 30)
    (Path(settings.seeds_dir) / "later.md").write_text(article("Written meanwhile"),
                                                       encoding="utf-8")
    shutil.rmtree(out)
    assert eventually(lambda: published(out, "Written meanwhile"), 15)
    assert (out / "feed.rss").is_file() and (out / MANIFEST).is_file()
    assert "output folder" in caplog.text


def test_the_owner_restarts_a_failing_scheduler_ever_more_slowly(
        settings: Settings, out: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from feedserver.schedule import owner as owner_module
    from feedserver.schedule.owner import RESTART_CAP, SchedulerProcess, restart_delay

    assert [restart_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert restart_delay(50) == RESTART_CAP
    caplog.set_level(logging.INFO, logger="feedserver")
    asked: list[int] = []

    def quick(failures: int) -> float:
        asked.append(failures)
        return 0.01

    monkeypatch.setattr(owner_module, "restart_delay", quick)

    class Failing(SchedulerProcess):
        def _spawn(self) -> None:  # a scheduler that dies at once, every time
            self.proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])

    out.mkdir(parents=True, exist_ok=True)
    failing = Failing(settings)
    failing.start()
    try:
        assert eventually(lambda: len(asked) >= 4, 30)
    finally:
        failing.stop()
        assert failing._thread is not None
        failing._thread.join(10)
    assert asked[:4] == [1, 2, 3, 4]  # each quick failure waits longer than the last
    assert "exited unasked (status 3)" in caplog.text
    noted = status(out).get("last_error")
    assert isinstance(noted, dict) and "status 3" in str(noted["message"])


ORPHAN = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1],
                          "feedserver.schedule.owner", sys.argv[2],
                          sys.argv[3]], start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
print(child.pid, flush=True)  # then this parent leaves: the child is an orphan
"""
OLD_HOLDER = """
import sys, time
from pathlib import Path
from feedserver.schedule.locks import try_lock
fd = try_lock(Path(sys.argv[2]))  # an older scheduler: no record of who holds it
Path(sys.argv[3]).write_text("held")
time.sleep(120)
"""


def test_an_orphan_from_an_older_version_without_a_record_is_reported(
        settings: Settings, out: Path, tmp_path: Path, owner: object,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="feedserver")
    ready = tmp_path / "held"
    starter = subprocess.run(
        [sys.executable, "-c", ORPHAN, OLD_HOLDER, str(lock_file(settings, SCHEDULER_LOCK)),
         str(ready)], capture_output=True, text=True, timeout=60, check=True)
    orphan = int(starter.stdout.split()[0])  # a descendant of this test, killed below
    try:
        assert eventually(ready.exists, 30)
        owner(settings, events=False)  # type: ignore[operator]
        assert eventually(lambda: f"held by pid {orphan}" in caplog.text)
        assert eventually(lambda: f"kill {orphan}" in str(status(out).get(
            "scheduler_error", "")))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)
    assert eventually(lambda: (out / MANIFEST).exists(), 30)
