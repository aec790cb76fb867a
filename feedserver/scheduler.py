"""The scheduler: keep the output folder fresh, one build at a time.

:class:`Refresher` is the job itself: one build at the clock's ``now`` with
the watcher's hold rule (files still being written wait), under the build
lock.  :class:`Scheduler` runs it with APScheduler 3 on ``refresh_interval``
(``max_instances=1``, ``coalesce=True``) and moves the next run earlier
when something asks for it: a file-system event (debounced), a held file
whose hold can end, an article dated in the future coming due.

Nothing here starts by itself.  ``feedserver watch`` calls :func:`run_forever`;
``feedserver serve`` starts it in one child process of the gunicorn master
(:mod:`feedserver.owner`), so there is one scheduler whatever the number of
workers; ``scheduler.lock`` in ``state_dir`` keeps it at one even when two
commands share the same state.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .config import Settings
from .errors import FeedserverError
from .job import BuildReport, Warm, run_build
from .liveconfig import LiveConfig
from .locks import BUILD_LOCK, SCHEDULER_LOCK, build_lock, lock_file, release, wait_lock
from .publish import note_status
from .watcher import HoldRule, Watcher, Writes

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
JOB_ID = "build"
DEBOUNCE = 0.05  # seconds: a burst of events (a save, a copied folder) makes one build


def utc_now() -> datetime:
    """The real clock (the default; tests pass their own)."""
    return datetime.now(UTC)


@dataclass
class Outcome:
    """One run of the job: the build's report (None if it did not run) and what waits."""

    report: BuildReport | None
    held: list[str] = field(default_factory=list)
    retry_at: datetime | None = None

    @property
    def next_due(self) -> datetime | None:
        return self.report.next_due if self.report else None


class Refresher:
    """The job: one incremental build with the hold rule, under ``build.lock``."""

    def __init__(self, settings: Settings, clock: Clock = utc_now,
                 writes: Writes | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.writes = writes if writes is not None else Writes(close_events=False)
        self.runs = 0
        self.warm = Warm()  # parse cache kept between runs (see feedserver.warm)
        self.config = LiveConfig(settings)  # config.toml re-read when it changes
        self._scan_due = 0.0  # time.monotonic() by which the next full scan is due

    def run(self, reason: str = "direct") -> Outcome:
        """Build once; another build holding the lock for a whole interval skips this one."""
        self.settings = self.config.current()
        if not os.path.isdir(self.settings.seeds_dir):  # unmounted, or being replaced
            log.error("run skipped (%s): seeds folder %s is missing; the last good output "
                      "stays", reason, self.settings.seeds_dir)
            return Outcome(None)
        with build_lock(self.settings, timeout=self.settings.refresh_interval) as locked:
            if not locked:
                log.warning("run skipped (%s): another build holds %s", reason,
                            lock_file(self.settings, BUILD_LOCK))
                return Outcome(None)
            now = self.clock()
            rule = self.writes.rule(now)
            try:
                report = self._build(now, rule, reason)
            except FeedserverError as exc:
                log.error("build failed (%s): %s", reason, exc)
                self._note(last_error={"at": now.isoformat(), "message": str(exc)})
                return Outcome(None)
            self._note()
        self.runs += 1
        self._log(reason, report, rule.held)
        return Outcome(report, rule.held, rule.retry_at)

    def _build(self, now: datetime, rule: HoldRule, reason: str) -> BuildReport:
        """One build; between full scans, only the paths the watcher's events named are
        stat'ed.  The periodic run, and any run a whole interval after the last full
        scan (a folder that never stops changing), scans everything: events can be lost."""
        changed = self.writes.changes()
        if reason == "interval" or time.monotonic() >= self._scan_due:
            changed = None
        if changed is None:
            self._scan_due = time.monotonic() + self.settings.refresh_interval
        try:
            return run_build(self.settings, now=now, hold=rule, warm=self.warm,
                             moves=self.writes.moves(now.timestamp()), changed=changed)
        except BaseException:
            self.warm.listing = None  # the events this build took are lost with it
            raise

    def _note(self, **facts: Any) -> None:
        """What /healthz must show besides the build's report: a failure, a bad config."""
        if self.config.error:
            facts["config_error"] = self.config.error
        if facts:
            note_status(Path(self.settings.output_dir), **facts)

    def _log(self, reason: str, report: BuildReport, held: list[str]) -> None:
        log.info("run %d (%s): %d articles, %d written, %d unchanged, %d removed, "
                 "%d held, %d problems, %.3fs", self.runs, reason, report.articles,
                 len(report.written), report.unchanged, len(report.removed), len(held),
                 len(report.problems), report.seconds)
        if held:
            log.info("still being written, kept back: %s", ", ".join(held[:10]))
        for problem in report.errors:
            log.warning("%s", problem)


class Scheduler:
    """APScheduler around a :class:`Refresher`, with early wake-ups."""

    def __init__(self, refresher: Refresher, debounce: float = DEBOUNCE) -> None:
        self.refresher = refresher
        self.debounce = debounce
        self._aps = BackgroundScheduler(timezone=UTC)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running = False
        self._busy = 0  # jobs inside _run, follow-up included (see shutdown)
        self._stopping = False
        self._pending: str | None = None

    def start(self) -> None:
        """Add the interval job (first run at once) and start the scheduler thread."""
        interval = self.refresher.settings.refresh_interval
        self._aps.add_job(self._run, IntervalTrigger(seconds=interval, timezone=UTC),
                          id=JOB_ID, name="feedserver build", max_instances=1,
                          coalesce=True, misfire_grace_time=interval,
                          next_run_time=utc_now())
        with self._lock:
            self._pending = self._pending or "start"
        self._aps.start()
        log.info("scheduler started in pid %d: every %ds, seeds %s", os.getpid(), interval,
                 self.refresher.settings.seeds_dir)

    def shutdown(self) -> None:
        """Stop; a build in progress finishes first (it is atomic anyway).

        APScheduler 3's ``shutdown(wait=True)`` holds its job-store lock while it
        waits for running jobs, and a job's follow-up asks that lock for the job
        (``_run_by``): waiting there hung for good (seen in CI).  So the job is
        let finish here first, and a job started after that returns at once.
        """
        with self._idle:
            self._stopping = True
            self._idle.wait_for(lambda: self._busy == 0)
        if self._aps.running:
            self._aps.shutdown(wait=True)

    def wake(self, reason: str) -> None:
        """Something changed: build soon (debounced); after the current build if one runs."""
        with self._lock:
            self._pending = self._pending or reason
            if self._running:
                return  # the running build looks again when it ends
        self._run_by(utc_now() + timedelta(seconds=self.debounce))

    def _run_by(self, when: datetime) -> None:
        """Move the next run to ``when`` if that is earlier (never later)."""
        if self._stopping:
            return
        job = self._aps.get_job(JOB_ID)
        when = max(when, utc_now())
        if job is not None and (job.next_run_time is None or when < job.next_run_time):
            job.modify(next_run_time=when)

    def _run(self) -> None:
        with self._lock:
            if self._stopping:
                return
            self._busy += 1
            self._running = True
            reason, self._pending = self._pending or "interval", None
        try:
            try:
                outcome = self.refresher.run(reason)
            finally:
                with self._lock:
                    self._running = False
                    again = self._pending is not None
            self._follow_up(outcome, again)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _follow_up(self, outcome: Outcome, again: bool) -> None:
        """Schedule the next look: pending events, held files, articles coming due."""
        now, real = self.refresher.clock(), utc_now()
        times = [real + (t - now) for t in (outcome.retry_at, outcome.next_due) if t]
        if again:
            times.append(real + timedelta(seconds=self.debounce))
        if times:
            self._run_by(min(times))


def configure_logging(level: int = logging.INFO) -> None:
    """One line per run on stderr, with the pid (a deployment may run several processes)."""
    logging.basicConfig(level=level, format="%(asctime)s [%(process)d] %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set ``stop`` here; in a process forked by a build they stay fatal.

    A build may fork worker processes (multiprocessing's fork context), which
    inherit Python's signal handlers: with a plain ``stop.set()`` handler a
    pool worker would shrug off the SIGTERM its pool sends when it closes,
    and the build would hang in ``Pool.terminate``.  A second signal while
    stopping exits at once (a build stuck after Ctrl-C also hit its workers):
    publishing is atomic and the ledger transactional, so that is safe.
    """
    owner = os.getpid()

    def handle(signum: int, _frame: object) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        elif stop.is_set():
            log.warning("second signal: exiting without waiting for the build")
            os._exit(128 + signum)
        else:
            stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)


def _parent_gone(parent_pid: int | None) -> Callable[[], bool]:
    return lambda: parent_pid is not None and os.getppid() != parent_pid


def run_forever(settings: Settings, events: bool = True, parent_pid: int | None = None,
                stop: threading.Event | None = None, clock: Clock = utc_now) -> None:
    """``feedserver watch``: own the scheduler (and watcher) until told to stop.

    Waits on ``scheduler.lock`` first, so a second process on the same state
    stands by and takes over when the first one ends.  Stops on SIGTERM or
    SIGINT, on ``stop``, or when ``parent_pid`` is no longer the parent.
    """
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        _stop_on_signals(stop)
    gone = _parent_gone(parent_pid)
    path = lock_file(settings, SCHEDULER_LOCK)
    fd = wait_lock(path, 0)
    if fd is None:
        log.info("another scheduler holds %s; standing by", path)
        fd = wait_lock(path, None, give_up=lambda: stop.is_set() or gone())
    if fd is None:
        return
    try:
        _own(settings, events, clock, stop, gone)
    finally:
        release(fd)


def _own(settings: Settings, events: bool, clock: Clock, stop: threading.Event,
         gone: Callable[[], bool]) -> None:
    watcher = None
    writes = Writes(close_events=False)
    refresher = Refresher(settings, clock, writes)
    scheduler = Scheduler(refresher)
    if events:  # watch first: a change during the first build wakes a second one
        watcher = Watcher.for_platform(settings.seeds_dir, scheduler.wake)
        refresher.writes = watcher.writes
        if watcher.start():
            log.info("watching %s (%s)", watcher.root, "close events" if
                     watcher.writes.close_events else "settle time")
    scheduler.start()
    try:
        while not stop.wait(0.5):
            if gone():
                log.info("parent process ended; stopping")
                break
            if watcher is not None and watcher.revive():
                log.info("watching %s again", watcher.root)
                scheduler.wake("seeds folder is back")
    finally:
        if watcher is not None:
            watcher.stop()
        scheduler.shutdown()
        log.info("scheduler stopped after %d runs", refresher.runs)
