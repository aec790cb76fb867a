"""The one scheduler of a ``feedserver serve`` deployment, owned by the server's main process.

The main process (the "master" below) starts :class:`SchedulerProcess` in granian's
startup hook and stops it in its shutdown hook; workers never start anything, so N
workers still mean one scheduler.  The scheduler runs in a
child process of its own rather than in a thread of the master because:

- builds (CPU, memory, SQLite) stay out of the master, whose heap every
  freshly forked worker would otherwise inherit, and the master keeps
  answering signals while a long build runs;
- the master forks workers at any time (crashes, ``max_requests``); forking
  while a build thread holds a lock or an SQLite connection is asking for
  trouble, and a server's reaping of its children could take a process a
  build forked itself.

The child is a fresh interpreter (``python -m feedserver.schedule.owner``) and gets
the exact :class:`Settings` of the ``serve`` command on stdin (pickled).  It
must never outlive the master (issue 17), so:

- it stays in the master's process group: a supervisor (or a terminal's
  Ctrl-C) that signals the group reaches it directly, and a KILL of the
  group ends it with everything it forked;
- the kernel kills it the moment the master dies, however (``kill -9``, the
  OOM killer), even in the middle of a parse (:func:`lifeline.die_with_parent`);
  what it forks for a build dies with it (:func:`lifeline.bind_children`);
- a signal that stops the master is passed on at once (:meth:`forward`),
  not after the server's workers have drained, and the child gives a running
  build :data:`feedserver.schedule.scheduler.STOP_GRACE` seconds before it leaves.

A publish cut short this way is finished or undone by the next build
(:func:`feedserver.publish.output.recover`).  A supervisor thread in the master
restarts the child if it ever exits unasked, waiting longer each time it
fails again soon (capped), and says so in ``status.json``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from feedserver.config import Settings

log = logging.getLogger(__name__)

RESTART_FIRST = 1.0  # seconds before the first restart
RESTART_CAP = 300.0  # the wait doubles after each quick failure, up to this
_HEALTHY_AFTER = 60.0  # a child that lived this long resets the restart back-off
STOP_TIMEOUT = 2.0  # seconds the master waits for the child to leave before killing it


def restart_delay(failures: int) -> float:
    """Seconds to wait before restarting a child that failed ``failures`` times in a row."""
    return min(RESTART_CAP, RESTART_FIRST * 2 ** max(0, failures - 1))


class SchedulerProcess:
    """Start, supervise and stop the child process that runs the scheduler."""

    def __init__(self, settings: Settings, events: bool = True) -> None:
        self.settings = settings
        self.events = events
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._forwarded = False  # a stop signal was passed on (forward)

    def start(self) -> None:
        """Spawn the child and the supervisor thread (call once, in the master)."""
        self._spawn()
        self._thread = threading.Thread(target=self._supervise, name="feedserver-supervisor",
                                        daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        payload = pickle.dumps({"settings": self.settings, "events": self.events,
                                "parent": os.getpid()})
        # Same process group as the master (no new session): see the module docstring.
        self.proc = subprocess.Popen([sys.executable, "-m", "feedserver.schedule.owner"],
                                     stdin=subprocess.PIPE)
        assert self.proc.stdin is not None
        self.proc.stdin.write(payload)
        self.proc.stdin.close()
        log.info("scheduler process %d started", self.proc.pid)

    def _supervise(self) -> None:
        failures = 0
        while self.proc is not None:
            started = time.monotonic()
            code = self.proc.wait()
            if self._stopping.is_set():
                return
            failures = 0 if time.monotonic() - started > _HEALTHY_AFTER else failures + 1
            delay = restart_delay(failures)
            log.error("scheduler process %d exited unasked (status %s); restarting it in "
                      "%.0fs", self.proc.pid, code, delay)
            self._note(f"the scheduler process exited (status {code}); restarting it in "
                       f"{delay:.0f}s: see the server log")
            if self._stopping.wait(delay):
                return
            self._spawn()

    def _note(self, message: str) -> None:
        from feedserver.publish.output import note_status

        note_status(Path(self.settings.output_dir), last_error={
            "at": datetime.now(UTC).replace(microsecond=0).isoformat(), "message": message})

    def forward(self, signum: int) -> None:
        """Pass a stop signal on to the child now (safe in a signal handler: no lock)."""
        self._stopping.set()
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signum)
                self._forwarded = True

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Ask the child to stop (a running build gets a short grace), kill it after
        ``timeout`` seconds."""
        self._stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        if not self._forwarded:  # a second SIGTERM would cut a running build's grace
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("scheduler process %d did not stop in %.0fs; killing it",
                        proc.pid, timeout)
            proc.kill()
            proc.wait()


def chain_stop_signals(owner: SchedulerProcess,
                       signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT,
                                                   signal.SIGQUIT)) -> None:
    """Forward each stop signal the master gets to the child, then do what the master
    did with it (granian stops and drains its workers, which can take seconds)."""
    for sig in signals:
        previous = signal.getsignal(sig)

        def handle(signum: int, frame: object, previous: object = previous) -> None:
            owner.forward(signal.SIGTERM)
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(sig, handle)


def child_main() -> None:
    """Entry point of the child: read the settings from stdin and run the scheduler."""
    from feedserver.schedule import lifeline
    from feedserver.schedule.scheduler import configure_logging, run_forever

    spec = pickle.load(sys.stdin.buffer)
    lifeline.die_with_parent(spec["parent"])
    lifeline.bind_children()
    configure_logging(log_format=spec["settings"].log_format)
    run_forever(spec["settings"], events=spec["events"], parent_pid=spec["parent"],
                role="serve")


if __name__ == "__main__":
    child_main()
