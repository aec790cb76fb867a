"""The one scheduler of a ``feedserver serve`` deployment, owned by the gunicorn master.

The master starts :class:`SchedulerProcess` in its ``when_ready`` hook and
stops it in ``on_exit``; workers never start anything, so N workers (with or
without ``--preload``) still mean one scheduler.  The scheduler runs in a
child process of its own rather than in a thread of the master because:

- builds (CPU, memory, SQLite) stay out of the master, whose heap every
  freshly forked worker would otherwise inherit, and the master keeps
  answering signals while a long build runs;
- the master forks workers at any time (crashes, ``max_requests``); forking
  while a build thread holds a lock or an SQLite connection is asking for
  trouble, and gunicorn's ``waitpid(-1)`` would reap any process a build
  forked itself.

The child is a fresh interpreter (``python -m feedserver.owner``), gets the
exact :class:`Settings` of the ``serve`` command on stdin (pickled), runs in
its own session (a Ctrl-C on the terminal reaches the master, which stops it
in order), and exits by itself within a second if the master dies.  A
supervisor thread in the master restarts it if it ever exits unasked.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import threading
import time

from .config import Settings

log = logging.getLogger(__name__)

RESTART_DELAYS = (1.0, 2.0, 5.0, 15.0, 30.0)
_HEALTHY_AFTER = 60.0  # a child that lived this long resets the restart back-off


class SchedulerProcess:
    """Start, supervise and stop the child process that runs the scheduler."""

    def __init__(self, settings: Settings, events: bool = True) -> None:
        self.settings = settings
        self.events = events
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Spawn the child and the supervisor thread (call once, in the master)."""
        self._spawn()
        self._thread = threading.Thread(target=self._supervise, name="feedserver-supervisor",
                                        daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        payload = pickle.dumps({"settings": self.settings, "events": self.events,
                                "parent": os.getpid()})
        self.proc = subprocess.Popen([sys.executable, "-m", "feedserver.owner"],
                                     stdin=subprocess.PIPE, start_new_session=True)
        assert self.proc.stdin is not None
        self.proc.stdin.write(payload)
        self.proc.stdin.close()
        log.info("scheduler process %d started", self.proc.pid)

    def _supervise(self) -> None:
        attempt = 0
        while self.proc is not None:
            started = time.monotonic()
            code = self.proc.wait()
            attempt = 0 if time.monotonic() - started > _HEALTHY_AFTER else attempt + 1
            delay = RESTART_DELAYS[min(attempt, len(RESTART_DELAYS) - 1)]
            if self._stopping.wait(delay):
                return
            log.warning("scheduler process %d exited (%s); restarting", self.proc.pid, code)
            self._spawn()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the child to stop (a build in progress finishes), kill it after ``timeout``."""
        self._stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("scheduler process %d did not stop in %.0fs; killing it",
                        proc.pid, timeout)
            proc.kill()
            proc.wait()


def child_main() -> None:
    """Entry point of the child: read the settings from stdin and run the scheduler."""
    from .scheduler import configure_logging, run_forever

    spec = pickle.load(sys.stdin.buffer)
    configure_logging()
    run_forever(spec["settings"], events=spec["events"], parent_pid=spec["parent"])


if __name__ == "__main__":
    child_main()
