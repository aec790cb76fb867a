"""``feedserver serve``: build once if needed, then run the web app under granian.

granian (HTTP/1 and the connections in Rust, the WSGI call in Python) is driven
in-process (:class:`FeedServer`): the current process becomes its main process and
forks N workers, each loading its own :func:`feedserver.web.app.create_app`
(:mod:`feedserver.worker` says what else a worker does first).  Measured against
gunicorn with gevent workers, the server before it, it answers 2.4-3.4 times the
requests a second on the same two cores, for a quarter to two fifths of the CPU per
request (benchmarks/README.md, "The port to granian").  ``--dev`` runs Flask's
development server in one process instead, for local work only.

Clients that trickle their headers are closed after :data:`HEADER_TIMEOUT` seconds
(granian's header read deadline), and each costs a connection in Rust, not a
thread: they never hold a worker (issue 12).

Work that must happen exactly once per deployment (the scheduler of issue 4)
belongs in :func:`start_background`, which granian's startup hook calls in the
main process before the workers fork and its shutdown hook stops; workers never
run it, whatever their number, and neither does ``create_app``.  A replica
(``--no-scheduler``) runs neither it nor the first build: it serves what one
builder elsewhere publishes.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

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
from feedserver.metrics.logs import JSON
from feedserver.publish.manifest import load_manifest
from feedserver.web.app import create_app
from feedserver.worker import Boot, Booted

# A connection that has not sent whole request headers this many seconds after it
# opened (or after its last answer, kept alive) is closed.
HEADER_TIMEOUT = 5
# Seconds a stopping worker gets to finish the requests under way before it is killed.
GRACEFUL_TIMEOUT = 10
# Each worker answers one request at a time in Python (the WSGI call; the connections
# and HTTP are granian's, in Rust): more threads only contend for the interpreter
# (benchmarks/README.md, "Serving").
BLOCKING_THREADS = 1
# granian's own test for a crash loop: a worker dying this soon after it was forked.
CRASH_LOOP = 5.5
# Signals that end a worker from outside (the OOM killer, an operator, a stop): a worker
# they end is replaced however young it was; only one that fails by itself (an error
# while the app loads, a crash) before it has booted is a crash loop.
KILLED = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
Stop = Callable[[], None]
Echo = Callable[[str], None]


def start_background(settings: Settings) -> Stop:
    """Start what runs once per deployment; return how to stop it.

    Called in granian's main process (its startup hook, before workers fork) or in
    the ``--dev`` server's process: the one scheduler of the deployment, in a
    supervised child process (:mod:`feedserver.schedule.owner` says why not a thread).
    A stop signal the server gets reaches the scheduler at once (issue 17).
    """
    import threading

    from feedserver.schedule.owner import SchedulerProcess, chain_stop_signals

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


def server_options(settings: Settings, host: str, port: int, workers: int | None = None,
                   access_log: bool = True) -> dict[str, Any]:
    """granian settings for feedserver (shared with the benchmarks), plus feedserver's own
    two about the access log it writes from the WSGI layer (``access_log``,
    ``json_lines``; :mod:`feedserver.access_log`)."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings

    return {
        "address": host,
        "port": port,
        "interface": Interfaces.WSGI,
        "http": HTTPModes.http1,
        "workers": workers or settings.workers,
        "blocking_threads": BLOCKING_THREADS,
        "http1_settings": HTTP1Settings(header_read_timeout=HEADER_TIMEOUT * 1000),
        "respawn_failed_workers": True,
        "workers_kill_timeout": GRACEFUL_TIMEOUT,
        "websockets": False,
        "log_access": False,  # granian's line has no size: feedserver writes its own
        "log_dictconfig": JSON_LOGGING if settings.log_format == JSON else None,
        "access_log": access_log,
        "json_lines": settings.log_format == JSON,
    }


# granian's logging, for ``log_format = "json"``: its own lines (start, workers, stop)
# one JSON object each as well, like the access lines and the scheduler's (granian
# merges this into its configuration, key by key: both formatters are given).
JSON_LOGGING: dict[str, Any] = {
    "formatters": {
        "generic": {"()": "feedserver.metrics.logs.JsonFormatter"},
        "access": {"()": "logging.Formatter", "fmt": "%(message)s"},
    },
}


OWN_OPTIONS = ("access_log", "json_lines")


class FeedServer:
    """granian running ``create_app`` with feedserver's settings, in this process.

    ``background`` (the scheduler) starts in the main process before the workers
    fork and stops when it stops, after the workers.  With ``metrics_dir`` (the run's
    prometheus multiprocess folder), workers mark the metrics of workers that are
    gone (:mod:`feedserver.worker`) and the folder goes when the main process does.
    """

    def __init__(self, app_factory: Callable[[], Any], options: dict[str, Any],
                 background: Callable[[], Stop] | None = None,
                 metrics_dir: Path | None = None) -> None:
        self.app_factory = app_factory
        self.options = {k: v for k, v in options.items() if k not in OWN_OPTIONS}
        self.access_log = bool(options.get("access_log", True))
        self.json_lines = bool(options.get("json_lines", False))
        self.background = background
        self.metrics_dir = metrics_dir
        self._stop: Stop | None = None

    def run(self) -> None:
        """Serve until a stop signal; the exit status is 1 when granian ended on a worker
        that kept failing to boot."""
        booted = Booted()
        server = _server_class()("feedserver", **self.options)
        server.booted = booted
        boot = Boot(self.app_factory, os.getpid(), booted, self.json_lines,
                    self.access_log, self.metrics_dir)
        server.on_startup(self._startup)
        server.on_shutdown(self._shutdown)
        server.serve(target_loader=boot.load, wrap_loader=False)

    def _startup(self) -> None:
        if self.background is not None:
            self._stop = self.background()
        _BootingWorker.arm()

    def _shutdown(self) -> None:
        _BootingWorker.disarm()
        if self._stop is not None:
            self._stop()
        if self.metrics_dir is not None:
            multiproc.remove(self.metrics_dir)
        skip_last_collection()


def _server_class() -> type:
    """granian's process-per-worker server, told which dead workers are a crash loop.

    granian ends the whole server when a worker dies within :data:`CRASH_LOOP` seconds
    of its respawn.  That is wrong both ways: a worker that served and was killed (the
    OOM killer, a request past its timeout, an operator's ``kill``) must be replaced
    however soon after the last one (gunicorn forks another, and so must this), and a
    worker that cannot load the app (a broken install, a bad setting) must end the
    server at once, however long its loading took, not be forked again every few
    seconds (gunicorn halts on a worker that failed to boot).  So granian's record of
    respawn times answers 'long ago' for a worker that had loaded the app
    (:class:`feedserver.worker.Booted`) or was killed (:data:`KILLED`), and 'just now'
    for one that failed on its own before it booted.
    """
    from granian.server import MPServer

    class Server(MPServer):  # type: ignore[misc, valid-type]
        booted: Booted | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.respawned_wrks = _Respawns(self)

    return Server


class _Respawns(dict[int, float]):
    """granian's ``respawned_wrks`` (worker index -> when it was respawned), which reads
    as never respawned for a worker that had booted (see :func:`_server_class`)."""

    def __init__(self, server: Any) -> None:
        super().__init__()
        self.server = server

    def get(self, idx: int, default: Any = None) -> Any:  # type: ignore[override]
        booted = self.server.booted
        workers = self.server.wrks
        if booted is None or idx >= len(workers):
            return super().get(idx, default)
        inner = workers[idx].inner
        if (inner.pid is not None and booted.ready(inner.pid)) \
                or (inner.exitcode is not None and -inner.exitcode in KILLED):
            return time.monotonic() - 2 * CRASH_LOOP - 1  # long ago: replace it
        return time.monotonic()  # it failed before it booted: a crash loop at once


def skip_last_collection() -> None:
    """Let this process end without the interpreter's last full garbage collection.

    The main process builds the site before it forks (:func:`ensure_built`), so its
    heap holds that build's objects, and the collection Python makes while it finalizes
    walked them all: about 0.3 s at every stop, restart and deploy (``python -m
    benchmarks.stop_time``).  Frozen objects are left to the kernel.  Called when
    nothing is left to run: the workers and the scheduler have stopped (granian's
    shutdown hook); logging's own exit handler still flushes the logs.  (The workers
    are ``multiprocessing`` processes, which end with ``os._exit``: no collection.)
    """
    gc.freeze()


class _BootingWorker:
    """A new worker leaves at once on a stop signal until granian installs its handlers.

    From its fork until granian's worker sets its own signal handlers (after the app
    is imported and built: :class:`feedserver.worker.Boot`), a worker still has the
    main process's handlers, which only set a flag in the worker's copy of the main
    process: a server stopped just as it started (Ctrl-C, a restart, a test's
    teardown) lost its SIGTERM to such a worker, and the main process waited out
    :data:`GRACEFUL_TIMEOUT` before killing it.

    Armed once the server has started (granian's startup hook, before the workers
    fork): at each fork of the main process (``os.register_at_fork``) the stop signals
    are blocked, the child starts with default actions (a worker that has not booted
    has no request to finish) and only then unblocks them, so one sent at any moment
    of the fork ends the child.  The scheduler is started with ``subprocess``, whose
    fork runs no such handler.
    """

    STOPS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
    main = 0
    registered = False

    @classmethod
    def arm(cls) -> None:
        if not cls.registered:
            os.register_at_fork(before=cls._before, after_in_parent=cls._parent,
                                after_in_child=cls._child)
            cls.registered = True
        cls.main = os.getpid()

    @classmethod
    def disarm(cls) -> None:
        cls.main = 0

    @classmethod
    def _armed(cls) -> bool:
        return cls.main == os.getpid()

    @classmethod
    def _before(cls) -> None:
        if cls._armed():
            signal.pthread_sigmask(signal.SIG_BLOCK, cls.STOPS)

    @classmethod
    def _parent(cls) -> None:
        if cls._armed():
            signal.pthread_sigmask(signal.SIG_UNBLOCK, cls.STOPS)

    @classmethod
    def _child(cls) -> None:
        if cls.main and cls.main == os.getppid():
            cls.main = 0
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
    FeedServer(factory, server_options(settings, host, port, workers),
               background if scheduler else None, metrics_dir).run()
