"""The scheduler: keep the output folder fresh, one build at a time.

:class:`Refresher` is the job itself: one build at the clock's ``now`` with
the watcher's hold rule (files still being written wait), under the build
lock.  :class:`Scheduler` runs it with APScheduler 3 on ``refresh_interval``
(``max_instances=1``, ``coalesce=True``) and moves the next run earlier
when something asks for it: a file-system event (debounced), a held file
whose hold can end, an article dated in the future coming due.

Nothing here starts by itself.  ``feedserver watch`` calls :func:`run_forever`;
``feedserver serve`` starts it in one child process of the server's main process
(:mod:`feedserver.schedule.owner`), so there is one scheduler whatever the number of
workers; ``scheduler.lock`` in ``state_dir`` keeps it at one even when two
commands share the same state.
"""

from __future__ import annotations

import json
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

from feedserver.build import heap
from feedserver.build.run import BuildMemory, BuildReport, run_build
from feedserver.config import Settings
from feedserver.core.errors import FeedserverError
from feedserver.metrics import instruments
from feedserver.metrics.logs import JSON, JsonFormatter, build_fields, failure_fields
from feedserver.publish.output import MANIFEST, STATUS, note_status
from feedserver.schedule import lifeline
from feedserver.schedule.apart import build_apart, is_cold
from feedserver.schedule.liveconfig import LiveConfig
from feedserver.schedule.locks import (
    BUILD_LOCK,
    SCHEDULER_LOCK,
    Holder,
    build_lock,
    lock_file,
    orphan_problem,
    read_holder,
    release,
    wait_lock,
    write_holder,
)
from feedserver.schedule.watcher import HoldRule, Watcher, Writes
from feedserver.websub.deliver import Deliverer

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
JOB_ID = "build"
DEBOUNCE = 0.05  # seconds: a burst of events (a save, a copied folder) makes one build
BACKOFF_FIRST = 2.0  # seconds before the first retry of a failed build
BACKOFF_CAP = 300.0  # the wait doubles after each failure in a row, up to this
STOP_GRACE = 1.5  # seconds a running build gets after SIGTERM before the process leaves
STANDBY_LOOK = 2.0  # seconds between two looks at the scheduler.lock holder while standing by


def utc_now() -> datetime:
    """The real clock (the default; tests pass their own)."""
    return datetime.now(UTC)


@dataclass
class RunResult:
    """One run of the job: the build's report (None if it did not run) and what waits."""

    report: BuildReport | None
    held: list[str] = field(default_factory=list)
    retry_at: datetime | None = None
    again: bool = False  # run again at once (a cold build made elsewhere: load it here)

    @property
    def next_due(self) -> datetime | None:
        return self.report.next_due if self.report else None


class Refresher:
    """The job: one incremental build with the hold rule, under ``build.lock``."""

    def __init__(self, settings: Settings, clock: Clock = utc_now,
                 writes: Writes | None = None, settle_heap: bool = False,
                 cold_apart: bool = False) -> None:
        self.settings = settings
        # The process's main work (not a thread of a test): what survives a build is
        # frozen for the next (feedserver.build.heap), which is a whole process's policy.
        self.settle_heap = settle_heap
        # A cold build runs in a forked child, and this process builds again from what it
        # published (feedserver.schedule.apart): its heap is its later builds' speed.
        self.cold_apart = cold_apart
        self._still_cold = False  # the last cold build apart held back most of the files
        self.clock = clock
        self.writes = writes if writes is not None else Writes(close_events=False)
        self.runs = 0
        self.memory = BuildMemory.empty()  # kept between runs (feedserver.build.memory)
        self.config = LiveConfig(settings)  # config.toml re-read when it changes
        self._scan_due = 0.0  # time.monotonic() by which the next full scan is due
        self.failures = 0  # builds failed in a row
        self.retry_at: datetime | None = None  # after a failure: no scheduled try before
        # Told the paths each publish changed (WebSub pushes and pings); never fails a run.
        self.after_publish: Callable[[list[str]], object] | None = None

    def backoff(self) -> float:
        """Seconds to wait after the current run of failures: doubling, capped."""
        cap = max(BACKOFF_CAP, float(self.settings.refresh_interval))
        return min(cap, BACKOFF_FIRST * 2 ** max(0, self.failures - 1))

    def waiting(self) -> RunResult | None:
        """After a failed build, until :attr:`retry_at`: the outcome of a run not tried.

        A failed build (a corrupt ledger, a full or read-only state disk) is
        one line in the log and ``last_error`` in status.json; the scheduler
        tries again :meth:`backoff` seconds later, not at every event or tick,
        and the last good output stays served meanwhile.  A direct call of
        :meth:`run` always tries.
        """
        if self.retry_at is not None and self.clock() < self.retry_at:
            return RunResult(None, retry_at=self.retry_at)
        return None

    def run(self, reason: str = "direct") -> RunResult:
        """Build once; another build holding the lock for a whole interval skips this one."""
        self.settings = self.config.current()
        if not os.path.isdir(self.settings.seeds_dir):  # unmounted, or being replaced
            log.error("run skipped (%s): seeds folder %s is missing; the last good output "
                      "stays", reason, self.settings.seeds_dir, extra={"fields": failure_fields(
                          "skipped", reason, "seeds folder is missing")})
            instruments.get().builds.labels("skipped").inc()
            self._note(last_error={"at": self.clock().isoformat(), "message":
                                   f"seeds folder {self.settings.seeds_dir} is missing; "
                                   "the last good output stays"})
            return RunResult(None)
        with build_lock(self.settings, timeout=self.settings.refresh_interval) as locked:
            if not locked:
                log.warning("run skipped (%s): another build holds %s", reason,
                            lock_file(self.settings, BUILD_LOCK), extra={"fields": failure_fields(
                                "skipped", reason, "another build holds the build lock")})
                instruments.get().builds.labels("skipped").inc()
                return RunResult(None)
            now = self.clock()
            rule = self.writes.rule(now)
            started = time.monotonic()
            apart = self.cold_apart and (self._still_cold or is_cold(
                self.settings, self.memory.manifest is not None))
            try:
                report = self._build_apart(now, rule) if apart else \
                    self._build(now, rule, reason)
            except FeedserverError as exc:
                instruments.get().build_seconds.observe(time.monotonic() - started)
                return self._failed(now, reason, exc)
            self._note()
        if self.settle_heap:  # published: what survived is kept out of later collections
            heap.settle()
        if self.failures:
            log.info("build succeeded again after %d failed attempts", self.failures)
        self.failures, self.retry_at = 0, None
        self.runs += 1
        self._log(reason, report, rule.held)
        self._announce(report)
        if apart:  # more files held back than built: most of the cold work is still to come
            self._still_cold = len(rule.held) > report.articles
        # What was built apart is read back here at once, unless the next run is apart too
        # (at the held files' due time) or nothing was published to read.
        again = apart and not self._still_cold and report.articles > 0
        return RunResult(report, rule.held, rule.retry_at, again=again)

    def _announce(self, report: BuildReport) -> None:
        """Hand what the publish changed to :attr:`after_publish` (it only queues)."""
        if self.after_publish is None or not report.written:
            return
        try:
            self.after_publish(list(report.written))
        except Exception:
            log.exception("websub: could not queue the notifications of run %d", self.runs)

    def _failed(self, now: datetime, reason: str, exc: FeedserverError) -> RunResult:
        """One line, ``last_error`` for /healthz, and the next try pushed back."""
        self.failures += 1
        wait = self.backoff()
        self.retry_at = now + timedelta(seconds=wait)
        log.error("build failed (%s; %d in a row): %s; next try in %.0fs", reason,
                  self.failures, exc, wait, extra={"fields": failure_fields(
                      "failed", reason, str(exc), failures=self.failures,
                      retry_in=round(wait, 1))})
        instruments.get().builds.labels("failed").inc()
        self._note(last_error={"at": now.isoformat(), "message": str(exc),
                               "failures": self.failures,
                               "retry_at": self.retry_at.isoformat()})
        return RunResult(None, retry_at=self.retry_at)

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
            return run_build(self.settings, now, self.memory, changed, hold=rule,
                             moves=self.writes.moves(now.timestamp()))
        except BaseException:
            self.memory.listing = None  # the events this build took are lost with it
            raise

    def _build_apart(self, now: datetime, rule: HoldRule) -> BuildReport:
        """The cold build, in a child process (:mod:`feedserver.schedule.apart`).  What
        this process kept of an output that is gone is dropped: the next run, at once
        (:attr:`RunResult.again`), reads back what the child published, scanning it all."""
        self.memory = BuildMemory.empty()
        self._scan_due = 0.0
        why = "most files were still being written at the last one" if self._still_cold \
            else f"nothing is published in {self.settings.output_dir}"
        log.info("cold build (%s): building it in a process of its own", why)
        return build_apart(self.settings, now, rule, self.writes.moves(now.timestamp()))

    def _note(self, **facts: Any) -> None:
        """What /healthz must show besides the build's report: a failure, a bad config."""
        if self.config.error:
            facts["config_error"] = self.config.error
        if facts:
            note_status(Path(self.settings.output_dir), **facts)

    def _log(self, reason: str, report: BuildReport, held: list[str]) -> None:
        """The run's summary line (text, or JSON with ``log_format = "json"``) and metrics."""
        outcome = instruments.build_outcome(report.published,
                                            bool(report.written or report.removed))
        tools = instruments.get()
        tools.builds.labels(outcome).inc()
        tools.build_seconds.observe(report.seconds)
        log.info("run %d (%s): %d articles, %d written, %d unchanged, %d removed, "
                 "%d held, %d problems, %.3fs", self.runs, reason, report.articles,
                 len(report.written), report.unchanged, len(report.removed), len(held),
                 len(report.problems), report.seconds,
                 extra={"fields": build_fields(report, outcome, reason, self.runs, held)})
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
                outcome = self.refresher.waiting() or self.refresher.run(reason)
            finally:
                with self._lock:
                    self._running = False
                    again = self._pending is not None
            self._follow_up(outcome, again)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _follow_up(self, outcome: RunResult, again: bool) -> None:
        """Schedule the next look: pending events, held files, articles coming due."""
        now, real = self.refresher.clock(), utc_now()
        times = [real + (t - now) for t in (outcome.retry_at, outcome.next_due) if t]
        if again or outcome.again:
            times.append(real + timedelta(seconds=self.debounce))
        if times:
            self._run_by(min(times))


def configure_logging(level: int = logging.INFO, log_format: str = "common") -> None:
    """One line per run on stderr, with the pid (a deployment may run several processes);
    with ``log_format = "json"`` each line is a JSON object (:mod:`feedserver.metrics.logs`)."""
    logging.basicConfig(level=level, format="%(asctime)s [%(process)d] %(name)s: %(message)s")
    if log_format == JSON:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set ``stop`` here; in a process forked by a build they stay fatal.

    A build may fork worker processes (multiprocessing's fork context), which
    inherit Python's signal handlers: with a plain ``stop.set()`` handler a
    pool worker would shrug off the SIGTERM its pool sends when it closes,
    and the build would hang in ``Pool.terminate``.

    A running build gets :data:`STOP_GRACE` seconds, then the process leaves
    without waiting for it (a parse or render can take minutes; a supervisor
    stops the whole group a few seconds after its TERM): publishing is atomic,
    the ledger transactional, and the next build finishes or undoes a publish
    cut short.  A second signal while stopping exits at once.

    The handler takes no lock: it runs in the main thread between two bytecodes of
    whatever it interrupted, which may hold the stop event's lock (inside
    ``stop.wait()``) or threading's (starting a pool's threads); setting the event or
    starting a thread there waited for that lock for good, and the stop was lost until
    the supervisor's KILL (tests/unit/test_stop_signal.py).  It writes the signal's
    number to a pipe instead; a thread started here, at once, reads it, sets ``stop``
    and ends the process after the grace.
    """
    owner = os.getpid()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signalled: list[int] = []  # appended by the handler alone (no lock)

    def handle(signum: int, _frame: object) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        elif signalled:
            os.write(2, b"feedserver: second signal: exiting without waiting for the build\n")
            os._exit(128 + signum)
        else:
            signalled.append(signum)
            os.write(wake_write, bytes([signum]))

    def stop_then_leave() -> None:
        signum = os.read(wake_read, 1)[0]
        stop.set()
        time.sleep(STOP_GRACE)
        log.warning("a build was still running %.1fs after the stop signal; leaving "
                    "without it (the next start finishes or undoes its publish)", STOP_GRACE)
        logging.shutdown()
        os._exit(128 + signum)

    threading.Thread(target=stop_then_leave, name="feedserver-stop-grace",
                     daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)


def _parent_gone(parent_pid: int | None) -> Callable[[], bool]:
    return lambda: parent_pid is not None and os.getppid() != parent_pid


def run_forever(settings: Settings, events: bool = True, parent_pid: int | None = None,
                stop: threading.Event | None = None, clock: Clock = utc_now,
                role: str = "watch") -> None:
    """``feedserver watch``: own the scheduler (and watcher) until told to stop.

    Waits on ``scheduler.lock`` first, so a second process on the same state
    stands by and takes over when the first one ends; while it waits, it
    reports a holder that outlived its server (:func:`standby`).  Stops on
    SIGTERM or SIGINT, on ``stop``, or when ``parent_pid`` is no longer the
    parent.  Run as a process's main work (not in a thread), what it forks for
    builds ends with it (:func:`lifeline.bind_children`).
    """
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        _stop_on_signals(stop)
        lifeline.bind_children()
    gone = _parent_gone(parent_pid)
    fd = _take_lock(settings, stop, gone)
    if fd is None:
        return
    try:
        write_holder(fd, Holder.here(os.getpid(), parent_pid, role))
        _own(settings, events, clock, stop, gone)
    finally:
        release(fd)


def _take_lock(settings: Settings, stop: threading.Event,
               gone: Callable[[], bool]) -> int | None:
    """``scheduler.lock``, once it is ours; None when told to stop first.

    A state folder that cannot hold the lock (read-only, full, missing
    rights) is one line in the log and ``last_error``, then tried again later
    (doubling, capped): never a crash that a supervisor restarts in a loop.
    """
    failures = 0
    while not (stop.is_set() or gone()):
        try:
            return standby(settings, give_up=lambda: stop.is_set() or gone())
        except OSError as exc:
            failures += 1
            wait = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (failures - 1))
            message = (f"cannot take {Path(settings.state_dir) / SCHEDULER_LOCK}: "
                       f"{exc.strerror or exc}; check that the state folder is writable "
                       f"(state_dir); trying again in {wait:.0f}s")
            log.error("%s", message)
            note_status(Path(settings.output_dir), last_error={
                "at": utc_now().replace(microsecond=0).isoformat(), "message": message})
            stop.wait(wait)
    return None


def standby(settings: Settings, give_up: Callable[[], bool]) -> int | None:
    """Wait for ``scheduler.lock``; report a holder that is an orphan meanwhile.

    A lock held by a dead process is no obstacle (``flock`` ends with its
    holder).  A live holder whose server is gone (an orphaned scheduler of a
    serve command, from an older version or a parent that could not take it
    along) keeps everything from being published: it is named in the log and
    in ``scheduler_error`` in status.json (/healthz), renewed while it lasts,
    since the orphan's own builds rewrite that file.
    """
    path = lock_file(settings, SCHEDULER_LOCK)
    fd = wait_lock(path, 0)
    if fd is not None:
        return fd
    holder = read_holder(path)
    log.info("another scheduler holds %s%s; standing by", path,
             f" ({holder.role} pid {holder.pid} on {holder.host})" if holder and holder.host
             else "")
    reported: str | None = None
    while fd is None and not give_up():
        problem = orphan_problem(path)
        if problem is not None:
            if problem != reported:
                log.error("%s", problem)
                reported = problem
            _note_scheduler_error(Path(settings.output_dir), problem)
        fd = wait_lock(path, STANDBY_LOOK, give_up=give_up)
    if fd is not None and reported is not None:
        log.info("the orphaned scheduler is gone; this one takes over")
        note_status(Path(settings.output_dir), scheduler_error=None)
    return fd


def _note_scheduler_error(out_dir: Path, problem: str) -> None:
    """Put ``scheduler_error`` into status.json unless it says so already."""
    try:
        current = json.loads((out_dir / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = {}
    if not isinstance(current, dict) or current.get("scheduler_error") != problem:
        note_status(out_dir, scheduler_error=problem)


def _own(settings: Settings, events: bool, clock: Clock, stop: threading.Event,
         gone: Callable[[], bool]) -> None:
    # Everything this thread will use is imported before the first other thread starts:
    # the scheduler's thread forks (the cold build's process, a build's workers), and a
    # module half-imported here at that moment stays locked in the child for good
    # (tests/system/test_fork_safety.py).
    tools = instruments.get()
    output = OutputWatch(settings)
    watcher = None
    writes = Writes(close_events=False)
    main_work = threading.current_thread() is threading.main_thread()
    refresher = Refresher(settings, clock, writes, settle_heap=main_work, cold_apart=main_work)
    deliverer = Deliverer(settings) if settings.hubs else None
    if deliverer is not None:
        refresher.after_publish = deliverer.published
        deliverer.start()
    scheduler = Scheduler(refresher)
    if events:  # watch first: a change during the first build wakes a second one
        watcher = Watcher.for_platform(settings.seeds_dir, scheduler.wake)
        refresher.writes = watcher.writes
        if watcher.start():
            log.info("watching %s (%s)", watcher.root, "close events" if
                     watcher.writes.close_events else "settle time")
    scheduler.start()
    tools.scheduler_active.set(1)
    tools.scheduler_heartbeat.set(time.time())
    try:
        while not stop.wait(0.5):
            tools.scheduler_heartbeat.set(time.time())
            if gone():
                log.info("parent process ended; stopping")
                break
            if watcher is not None and watcher.revive():
                log.info("watching %s again", watcher.root)
                scheduler.wake("seeds folder is back")
            if output.lost(refresher.runs):
                log.warning("output folder %s is gone; rebuilding it now",
                            refresher.settings.output_dir)
                scheduler.wake("output folder is gone")
    finally:
        if watcher is not None:
            watcher.stop()
        scheduler.shutdown()
        if deliverer is not None:
            deliverer.stop()
        tools.scheduler_active.set(0)
        log.info("scheduler stopped after %d runs", refresher.runs)


class OutputWatch:
    """Notices, with one stat per tick, that the published output was removed.

    It watches the manifest, not the folder: a build still finishing when the folder
    was deleted (its status file) can bring an empty folder back, and that folder holds
    no feed.  ``runs`` counts successful builds, each of which left a manifest: a site
    that has never published (a seeds folder missing from the start) is not rebuilt in
    a loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._manifest = os.path.join(settings.output_dir, MANIFEST)
        self._reported_at_run: int | None = None

    def lost(self, runs: int) -> bool:
        """True once per disappearance (after a build has published it at least once)."""
        if runs == 0 or os.path.isfile(self._manifest):
            self._reported_at_run = None
            return False
        if self._reported_at_run is not None and self._reported_at_run == runs:
            return False  # already asked; the build that brings it back is on its way
        self._reported_at_run = runs
        return True
