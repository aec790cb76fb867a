"""What a web worker of ``feedserver serve`` does before its first request.

granian forks each worker from the main process and calls the app loader in it
(:meth:`Boot.load`); everything a worker must be sure of starts there:

- it dies with the main process, however that ends (``kill -9``, the OOM killer):
  granian's workers do not notice a dead main process themselves, and went on
  answering on the port with no one to stop them
  (:func:`feedserver.schedule.lifeline.die_with_parent`);
- the metrics of workers that are gone are marked dead in the run's multiprocess
  folder (granian has no hook in the main process for a worker that exited, as
  gunicorn's ``child_exit`` was);
- its young-object collections run per many requests (:func:`collect_per_requests`);
- its answers are logged (:class:`feedserver.access_log.AccessLog`), and a request
  still running after :data:`REQUEST_TIMEOUT` seconds ends the worker, which granian
  replaces (:class:`Watchdog`: granian has no per-request timeout of its own);
- once the app is loaded it says so (:class:`Booted`): a worker that fails by itself
  before that is a crash loop that must end the server; one that dies after it, or is
  killed at any time, is replaced (``feedserver.serve._server_class``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from feedserver.schedule import lifeline

log = logging.getLogger(__name__)

YOUNG = 50_000  # container objects a web worker allocates between young collections
REQUEST_TIMEOUT = 30.0  # seconds a request may run before its worker is replaced
SLOTS = 256  # pids of booted workers the main process can tell apart at once


def collect_per_requests() -> None:
    """A booted web worker collects its young objects every :data:`YOUNG` allocations,
    not every 700 (Python's default).

    A computed answer (a filtered feed: feedparser reading its envelope) allocates a few
    thousand objects that all die when it is sent.  At 700, about one young collection
    ran inside each such answer and walked that answer's live objects, and about every
    tenth a middle one walked them again: 65 ms over the 280 requests of
    ``benchmarks/query_bench.py`` (0.23 ms a request, a fifth of a first answer), 17 ms
    at 50,000 (measured with ``gc.callbacks`` in the worker).  Between collections only
    garbage in reference cycles waits, bounded by the threshold.
    """
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)


class Booted:
    """The pids of workers that loaded the app, in memory the main process shares.

    Made in the main process before the first fork; each worker writes its pid into
    a free slot when it is ready.  The main process asks :meth:`ready` about a worker
    that died: only one that never got there is a crash loop (a broken app, a bad
    setting) that must end the server instead of being forked again and again.
    """

    def __init__(self, slots: int = SLOTS) -> None:
        self.pids = multiprocessing.get_context("fork").Array(ctypes.c_long, slots)

    def mark(self, pid: int) -> None:
        with self.pids.get_lock():
            values = self.pids.get_obj()
            free = next((i for i, held in enumerate(values) if held in (0, pid)), None)
            if free is None:  # every slot taken: forget those of workers that are gone
                for i, held in enumerate(values):
                    if not lifeline.alive(held):
                        values[i] = 0
                free = next((i for i, held in enumerate(values) if held == 0), 0)
            values[free] = pid

    def ready(self, pid: int) -> bool:
        with self.pids.get_lock():
            return pid in self.pids.get_obj()


class Watchdog:
    """Ends this worker when one request has run longer than ``timeout`` seconds.

    A worker answers one request at a time (one blocking thread); a request stuck in
    a view (a lock never released, a peer that never answers) would hold it for good.
    gunicorn's arbiter killed such a worker after ``timeout``; here a thread of the
    worker looks once a second and leaves with status 1, and granian forks a
    replacement (the worker had booted: no crash loop).
    """

    def __init__(self, app: Callable[..., Any], timeout: float | None = None,
                 leave: Callable[[int], None] = os._exit) -> None:
        self.app = app
        self.timeout = REQUEST_TIMEOUT if timeout is None else timeout
        self.leave = leave
        self.running: dict[int, tuple[float, str]] = {}  # thread id -> (start, path)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        key = threading.get_ident()
        self.running[key] = (time.monotonic(), environ.get("PATH_INFO", ""))
        try:
            return self.app(environ, start_response)
        finally:
            self.running.pop(key, None)

    def start(self, interval: float = 1.0) -> threading.Thread:
        thread = threading.Thread(target=self._watch, args=(interval,),
                                  name="feedserver-watchdog", daemon=True)
        thread.start()
        return thread

    def _watch(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            self.check(time.monotonic())

    def check(self, now: float) -> None:
        for started, path in list(self.running.values()):
            if now - started > self.timeout:
                print(f"feedserver: worker {os.getpid()}: a request for {path} ran "
                      f"{now - started:.0f}s (timeout {self.timeout:.0f}s); replacing the "
                      "worker", file=sys.stderr, flush=True)
                self.leave(1)
                return


def sweep_dead_metrics(folder: Path | None) -> None:
    """Mark the metrics of workers that are gone as dead (their live gauges go; their
    counters keep counting in the sum), at each worker's start."""
    if folder is None or not folder.is_dir():
        return
    from feedserver.metrics import multiproc

    pids = {int(part) for name in os.listdir(folder) if name.endswith(".db")
            for part in [name[:-3].rsplit("_", 1)[-1]] if part.isdigit()}
    for pid in pids - {os.getpid()}:
        if not lifeline.alive(pid):
            multiproc.mark_dead(pid)


class Boot:
    """The app loader granian calls in each worker (see the module docstring)."""

    def __init__(self, factory: Callable[[], Any], main: int, booted: Booted,
                 json_lines: bool, access_log: bool = True,
                 metrics_dir: Path | None = None) -> None:
        self.factory = factory
        self.main = main
        self.booted = booted
        self.json_lines = json_lines
        self.access_log = access_log
        self.metrics_dir = metrics_dir

    def load(self, *_: Any) -> Callable[..., Any]:
        lifeline.die_with_parent(self.main)
        with contextlib.suppress(OSError):
            sweep_dead_metrics(self.metrics_dir)
        app: Callable[..., Any] = self.factory()
        if self.access_log:
            from feedserver.access_log import AccessLog

            app = AccessLog(app, self.json_lines)
        watchdog = Watchdog(app)
        watchdog.start()
        collect_per_requests()
        self.booted.mark(os.getpid())
        return watchdog
