"""``feedserver serve``: build once if needed, then run the web app under gunicorn.

gunicorn is driven in-process through :class:`gunicorn.app.base.BaseApplication`
(no shell command line to assemble, settings passed as values): the current
process becomes the gunicorn master and forks N workers, each with its own
:func:`feedserver.web.app.create_app`.  ``--dev`` runs Flask's development server in
one process instead, for local work only.

The workers are gevent's (see :func:`gunicorn_options`; :mod:`feedserver.worker` is
gunicorn's gevent worker, stopping without waiting out a one-second loop): each
connection is a greenlet, and a request's headers are read under a deadline
(:data:`HEADER_TIMEOUT`), so clients that trickle their headers cost a few
kilobytes each and never hold a worker.  With gthread workers, 16 such
connections took every thread and nothing else was answered (issue 12).

Work that must happen exactly once per deployment (the scheduler of issue 4)
belongs in :func:`start_background`, which gunicorn's ``when_ready`` hook calls
in the master and ``on_exit`` stops; workers never run it, whatever their
number, and neither does ``create_app``.  A replica (``--no-scheduler``) runs
neither it nor the first build: it serves what one builder elsewhere publishes.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from feedserver.access_log import CommonAccessLogger, JsonAccessLogger
from feedserver.build.run import BuildReport, run_build
from feedserver.config import Settings
from feedserver.listen import (
    needs_build,
    pages_note,
    problem_lines,
    published_base,
    serving_settings,
)
from feedserver.metrics import multiproc
from feedserver.metrics.logs import COMMON_ACCESS_FORMAT, JSON
from feedserver.publish.manifest import load_manifest
from feedserver.web.app import create_app

# gunicorn's gevent worker reads each request's headers under a gevent.Timeout of
# ``keepalive`` seconds (the first request of a connection too): a client that has
# not sent whole headers by then is closed.
HEADER_TIMEOUT = 5
# Open connections per worker (each a greenlet: small, see benchmarks/README.md); past
# this a worker stops accepting until some close.
WORKER_CONNECTIONS = 1000
Stop = Callable[[], None]
Echo = Callable[[str], None]


def start_background(settings: Settings) -> Stop:
    """Start what runs once per deployment; return how to stop it.

    Called in the gunicorn master (``when_ready``, before workers fork) or in
    the ``--dev`` server's process: the one scheduler of the deployment, in a
    supervised child process (:mod:`feedserver.schedule.under_gunicorn` says why not a thread).
    A stop signal the server gets reaches the scheduler at once (issue 17).
    """
    import threading

    from feedserver.schedule.under_gunicorn import SchedulerProcess, chain_stop_signals

    owner = SchedulerProcess(settings)
    owner.start()
    if threading.current_thread() is threading.main_thread():
        chain_stop_signals(owner)
    return owner.stop


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def ensure_built(settings: Settings) -> BuildReport | None:
    """Build once when nothing is published yet (or from another base_url), so the first
    request has feeds with working links."""
    if not needs_build(settings):
        return None
    return run_build(settings, one_shot=True)


def address(host: str, port: int) -> str:
    """The URL to open in a browser for a bind address (wildcards -> loopback)."""
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def gunicorn_options(settings: Settings, host: str, port: int, workers: int | None = None,
                     access_log: bool = True) -> dict[str, Any]:
    """gunicorn settings for feedserver (shared with benchmarks/serve_bench.py)."""
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {
        "bind": [bind],
        "workers": workers or settings.workers,
        "worker_class": "feedserver.worker.PromptGeventWorker",
        "worker_connections": WORKER_CONNECTIONS,
        "keepalive": HEADER_TIMEOUT,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": "-" if access_log else None,
        "access_log_format": COMMON_ACCESS_FORMAT,
        "logger_class": JsonAccessLogger if settings.log_format == JSON else CommonAccessLogger,
        "errorlog": "-",
        "proc_name": "feedserver",
        # gunicorn >= 25 opens a control socket at one fixed path per user; several
        # servers (tests, benchmarks) on one machine would fight over it.
        "control_socket_disable": True,
    }


class FeedServer(BaseApplication):  # type: ignore[misc]
    """gunicorn running ``create_app`` with feedserver's settings, no argv parsing.

    With ``metrics_dir`` (the run's prometheus multiprocess folder), a worker that
    exits is marked dead there (``child_exit``) and the folder goes when the master
    does (``on_exit``).
    """

    def __init__(self, app_factory: Callable[[], Any], options: dict[str, Any],
                 background: Callable[[], Stop] | None = None,
                 metrics_dir: Path | None = None) -> None:
        self.app_factory = app_factory
        self.options = options
        self.background = background
        self.metrics_dir = metrics_dir
        self._stop: Stop | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # skip settings newer than the installed gunicorn
                self.cfg.set(key, value)
        self.cfg.set("pre_fork", _BootingWorker.arm)
        self.cfg.set("post_worker_init", self._post_worker_init)
        self.cfg.set("worker_exit", self._worker_exit)
        if self.background is not None:
            self.cfg.set("when_ready", self._when_ready)
        self.cfg.set("on_exit", self._on_exit)
        if self.metrics_dir is not None:
            self.cfg.set("child_exit", self._child_exit)

    def load(self) -> Any:
        return self.app_factory()

    def _when_ready(self, server: Any) -> None:
        assert self.background is not None
        self._stop = self.background()

    def _on_exit(self, server: Any) -> None:
        if self._stop is not None:
            self._stop()
        if self.metrics_dir is not None:
            multiproc.remove(self.metrics_dir)
        skip_last_collection()

    def _post_worker_init(self, worker: Any) -> None:
        collect_per_requests()

    def _worker_exit(self, server: Any, worker: Any) -> None:
        end_worker()

    def _child_exit(self, server: Any, worker: Any) -> None:
        multiproc.mark_dead(worker.pid)


YOUNG = 50_000  # container objects a web worker allocates between young collections


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


def skip_last_collection() -> None:
    """Let this process end without the interpreter's last full garbage collection.

    The master builds the site before it forks (:func:`ensure_built`), so its heap and
    every worker's copy of it hold that build's objects, and the collection Python makes
    while it finalizes walked them all: about 0.4 s in each worker and 0.3 s in the
    master, at every stop, restart and deploy (``python -m benchmarks.stop_time``).
    Frozen objects are left to the kernel.  Called when nothing is left to run: the
    master has stopped its workers and the scheduler (``on_exit``; the master's
    threading is not gevent's, so its logging ends cleanly), or a worker leaves
    otherwise than gunicorn means it to (:func:`end_worker`, which ends the usual
    leaving itself); logging's own exit handler still flushes the logs.
    """
    gc.freeze()


def end_worker() -> None:
    """End a worker that has answered its last request, here and now: gunicorn's
    ``worker_exit`` hook, the last thing a worker runs.

    A worker is a fork of the master, which built the site before forking; letting the
    interpreter finalize it cost, and said, more than it should:

    - its last full garbage collection walked the build's heap: about 0.4 s a worker at
      every stop, restart and deploy (``python -m benchmarks.stop_time``);
    - with that collection skipped (:func:`skip_last_collection`, the former answer
      here), logging's handlers died during the teardown of the modules instead, after
      gevent's patched ``threading`` had lost its globals, and every worker printed
      "Exception ignored ... TypeError: 'NoneType' object is not callable" at every stop
      (gevent/gevent#2148);
    - it ran the ``atexit`` handlers inherited from the master, which are the master's
      to run (``multiprocessing`` ends the processes it forks with ``os._exit`` for
      the same reason).

    So a worker leaving as gunicorn means it to (the ``SystemExit`` under way, its code)
    flushes its logs and standard streams and exits with that code at once.  Anything
    else under way is left to the interpreter, as before.
    """
    import logging

    leaving = sys.exc_info()[1]
    if not isinstance(leaving, SystemExit) or not isinstance(leaving.code, int | None):
        skip_last_collection()
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or gone: nothing to say
            stream.flush()
    os._exit(leaving.code or 0)


class _BootingWorker:
    """A new worker leaves at once on a stop signal until it installs its own handlers.

    From its fork to gunicorn's ``Worker.init_signals`` (gevent patching the standard
    library, the app's import) a worker still has the master's handlers, which only
    queue the signal in the worker's copy of the master's queue: a server stopped just
    as it started (Ctrl-C, a restart, a test's teardown) lost its SIGTERM (graceful
    stop) or SIGQUIT (quick stop, after Ctrl-C) to such a worker, and the master waited
    out ``graceful_timeout`` before killing it.

    gunicorn's ``pre_fork`` hook arms this; at the fork itself (``os.register_at_fork``)
    the master blocks the stop signals, the child starts with default actions (a worker
    that has not booted has no request to finish) and only then unblocks them, so one
    sent at any moment of the fork ends the child; ``init_signals`` later puts
    gunicorn's graceful handlers in place.  Other forks of the master are left alone.
    """

    STOPS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
    armed = False
    registered = False

    @classmethod
    def arm(cls, server: Any, worker: Any) -> None:
        if not cls.registered:
            os.register_at_fork(before=cls._before, after_in_parent=cls._parent,
                                after_in_child=cls._child)
            cls.registered = True
        cls.armed = True

    @classmethod
    def _before(cls) -> None:
        if cls.armed:
            signal.pthread_sigmask(signal.SIG_BLOCK, cls.STOPS)

    @classmethod
    def _parent(cls) -> None:
        if cls.armed:
            cls.armed = False
            signal.pthread_sigmask(signal.SIG_UNBLOCK, cls.STOPS)

    @classmethod
    def _child(cls) -> None:
        if cls.armed:
            cls.armed = False
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGQUIT, _leave)  # its default action would dump core
            signal.pthread_sigmask(signal.SIG_UNBLOCK, cls.STOPS)


def _leave(signum: int, frame: Any) -> None:
    os._exit(0)


def replica_settings(settings: Settings, echo: Echo) -> Settings:
    """A replica's settings: ``base_url`` from the published output when not set.

    A replica's headers (``Link: rel="self"``, the pages' CSP) must name the
    address the builder built the feeds for, not the replica's own port.
    """
    out = Path(settings.output_dir)
    published = None if settings.base_url_set else published_base(out)
    if published is not None:
        settings = replace(settings, base_url=published, base_url_set=True)
    echo(f"feedserver: replica: serving {out} as the builder publishes it; nothing is "
         "built or watched here (--no-scheduler)")
    if not load_manifest(out)["files"]:
        echo(f"feedserver: nothing is published in {out} yet: /healthz answers 503 until "
             "the builder publishes")
    return settings


def run(settings: Settings, host: str, port: int, workers: int | None = None,
        dev: bool = False, echo: Echo = print, scheduler: bool = True) -> None:
    """Build if nothing is published, print where to look, then serve until stopped.

    Without ``scheduler`` this is a replica: it never builds (not even the first
    time), runs no scheduler and only serves what the builder publishes.
    """
    url = address(host, port)
    if not scheduler:
        settings = replica_settings(settings, echo)
    settings = serving_settings(settings, host, url, echo, warn=_stderr)
    if scheduler and (note := pages_note(settings)):
        _stderr(note)
    report = ensure_built(settings) if scheduler else None
    if report is not None:
        echo(f"built {report.articles} articles in {report.channels} channels "
             f"({len(report.errors)} errors) into {settings.output_dir}")
    for line in problem_lines(report, settings):
        echo(line)
    echo(f"feedserver: open {url} (feeds: {url}feed.rss, {url}feeds.opml)")

    def factory() -> Any:
        return create_app({"FEEDSERVER_SETTINGS": settings})

    def background() -> Stop:
        return start_background(settings)

    # Before the scheduler and the workers start: they inherit the folder's name.
    metrics_dir = multiproc.private_dir() if settings.metrics_allow else None
    if dev:
        stop = background() if scheduler else None
        try:
            factory().run(host=host, port=port, threaded=True, use_reloader=False)
        finally:
            if stop is not None:
                stop()
            if metrics_dir is not None:
                multiproc.remove(metrics_dir)
        return
    FeedServer(factory, gunicorn_options(settings, host, port, workers),
               background if scheduler else None, metrics_dir).run()
