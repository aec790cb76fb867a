"""A gunicorn worker stopped while it boots goes at once (CI found it in teardowns).

Between its fork and gunicorn's ``Worker.init_signals`` (gevent patching the
standard library, the app's import), a worker still has the master's signal
handlers, which only queue the signal in the worker's own copy of the master's
queue.  A server stopped just as it started (a test's teardown, a deploy that
restarts twice, Ctrl-C) lost its stop signal to such a worker, and the master
waited out ``graceful_timeout`` (10 s) before killing it.

The test asks a running ``feedserver serve --workers 2`` for one more worker
(SIGTTIN, gunicorn's own), watches for the new process, and sends it SIGTERM at
once, as the master's stop does.  The worker must be gone within a few seconds; a
worker that lost the signal is never gone (the master is not stopping, so nothing
kills it).  When the signal lands after the worker's own handlers are in place
(a slow machine), the worker leaves gracefully, also within seconds.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.system.test_serve_e2e import serve_site

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(),
                                reason="follows gunicorn's workers through /proc")

GONE_WITHIN = 5.0  # seconds; a worker that lost the signal never leaves


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found |= {int(child) for child in handle.read().split()}
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for the master to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_worker_stopped_while_it_boots_leaves_at_once(site_dir: Path) -> None:
    with serve_site(site_dir) as server:
        master = server.process.pid
        time.sleep(1.0)  # both workers and the scheduler are forked
        before = children(master)
        os.kill(master, signal.SIGTTIN)  # gunicorn: one more worker
        deadline = time.monotonic() + 10
        while not (new := children(master) - before):
            assert time.monotonic() < deadline, "no worker was forked"
            time.sleep(0.0005)
        worker = new.pop()
        os.kill(worker, signal.SIGTERM)  # what the master sends each worker on a stop
        deadline = time.monotonic() + GONE_WITHIN
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(worker), f"the booting worker {worker} kept running after SIGTERM"
