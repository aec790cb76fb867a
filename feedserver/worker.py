"""The gunicorn worker ``feedserver serve`` runs: gevent's, stopping as soon as it may.

gunicorn's own gevent worker (``gunicorn.workers.ggevent.GeventWorker``) checks
whether it was told to stop once a second: its main loop sleeps ``gevent.sleep(1.0)``
between heartbeats, and after a graceful stop signal (SIGTERM: a deploy, systemd,
a Procfile runner) it waits for the requests under way in further one-second steps.
A stop therefore took up to a second longer than it had to, at every deploy and in
every test that stops a server (``python -m benchmarks.stop_time``).

This worker keeps everything else of gunicorn's (accepting, HTTP, keep-alive, the
header deadline, the heartbeat, ``graceful_timeout``) and changes only how it waits:
on an event that the stop signal sets, and on the connection pools' own "all done"
event.  Its run loop is written here (gunicorn's keeps its servers and pools in local
variables, so no hook of its can reach them).
"""

from __future__ import annotations

import time
from typing import Any

from gevent.event import Event
from gevent.pool import Pool
from gevent.server import StreamServer
from gunicorn.workers.ggevent import GeventWorker

HEARTBEAT = 1.0  # seconds between heartbeats to the master (gunicorn's own cadence)


class PromptGeventWorker(GeventWorker):  # type: ignore[misc]
    """gunicorn's gevent worker whose waits end when they have something to wait for."""

    _stopping: Event | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: stop taking connections, finish the ones under way (graceful)."""
        super().handle_exit(sig, frame)  # alive = False, as gunicorn does
        if self._stopping is not None:
            self._stopping.set()  # wakes the run loop now instead of at its next second

    def run(self) -> None:
        """Serve until told to stop, then let the requests under way finish (bounded by
        ``graceful_timeout``), waking at once for either."""
        self._stopping = Event()
        servers = [self._server(listener) for listener in self.sockets]
        for server in servers:
            server.start()
        while self.alive:
            self.notify()
            self._stopping.wait(HEARTBEAT)
        for server in servers:
            server.close()  # no new connections; those under way go on
        deadline = time.monotonic() + self.cfg.graceful_timeout
        for server in servers:
            while not server.pool.join(timeout=min(HEARTBEAT,
                                                   max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
                    for each in servers:
                        each.stop(timeout=1)
                    return
                self.notify()

    def _server(self, listener: Any) -> StreamServer:
        """A gevent server on one of gunicorn's listening sockets, each connection a
        greenlet of a bounded pool, handled by gunicorn's own request loop."""
        listener.setblocking(1)
        ssl_args: dict[str, Any] = {}
        if self.cfg.is_ssl:
            from gunicorn.sock import ssl_context

            ssl_args = {"ssl_context": ssl_context(self.cfg)}
        server = StreamServer(listener, handle=lambda client, addr: self.handle(
            listener, client, addr), spawn=Pool(self.worker_connections), **ssl_args)
        if self.cfg.workers > 1:
            server.max_accept = 1  # leave the next connection to a less busy worker
        return server

