"""feedserver's app under gunicorn with gevent workers: what ``feedserver serve`` ran
until it moved to granian, kept to measure the two side by side
(:mod:`benchmarks.serve_bench`).  The ``bench`` extra installs gunicorn and gevent.

Stock gunicorn: its gevent worker, its own access logger in the Common Log Format
(feedserver's serve had a leaner logger, about 15 us a request less, and a gevent worker
that stopped without a one-second wait), the scheduler started once in the master.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from feedserver.config import Settings
from feedserver.metrics.logs import COMMON_ACCESS_FORMAT


def options(settings: Settings, port: int, workers: int | None = None) -> dict[str, Any]:
    """gunicorn's settings as ``feedserver serve`` gave them."""
    return {"bind": [f"127.0.0.1:{port}"], "workers": workers or settings.workers,
            "worker_class": "gevent", "worker_connections": 1000, "keepalive": 5,
            "timeout": 30, "graceful_timeout": 10, "accesslog": "-",
            "access_log_format": COMMON_ACCESS_FORMAT, "errorlog": "-",
            "control_socket_disable": True}


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """gunicorn running an app factory, ``background`` started once in the master."""

    def __init__(self, factory: Callable[[], Any], settings: dict[str, Any],
                 background: Callable[[], Callable[[], None]] | None = None) -> None:
        self.factory = factory
        self.settings = settings
        self.background = background
        self.stops: list[Callable[[], None]] = []
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.settings.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)
        if self.background is not None:
            background = self.background
            self.cfg.set("when_ready", lambda server: self.stops.append(background()))
        self.cfg.set("on_exit", lambda server: [stop() for stop in self.stops])

    def load(self) -> Any:
        return self.factory()


def run(port: int, fast_path: bool) -> None:
    """Serve the shipped config's site on ``port`` until stopped (a child process)."""
    from benchmarks.serve_bench import ROOT
    from feedserver.config import load_settings
    from feedserver.metrics import multiproc
    from feedserver.serve import start_background
    from feedserver.web.app import create_app

    settings = load_settings(ROOT / "config.toml")
    metrics_dir = multiproc.private_dir() if settings.metrics_allow else None
    try:
        GunicornServer(lambda: create_app({"FEEDSERVER_SETTINGS": settings,
                                           "FEEDSERVER_FAST_PATH": fast_path}),
                       options(settings, port), lambda: start_background(settings)).run()
    finally:
        if metrics_dir is not None:
            multiproc.remove(metrics_dir)
