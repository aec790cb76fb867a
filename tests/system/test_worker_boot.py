"""A web worker stopped while it boots goes at once (CI found it in teardowns).

Between its fork and the server's own signal handlers (under gunicorn: gevent patching
the standard library and the app's import; under granian: the app's import and
``create_app``, which run before granian's worker installs its handlers), a worker
still has the main process's handlers, which only note the signal in the worker's own
copy of the main process.  A server stopped just as it started (a test's teardown, a
deploy that restarts twice, Ctrl-C) lost its stop signal to such a worker, and the main
process waited out its graceful timeout (10 s) before killing it.

The first test kills a worker of a running ``feedserver serve --workers 2``, watches for
its replacement, and sends that SIGTERM at once, as the main process's stop does.  The
worker must be gone within a few seconds; a worker that lost the signal is never gone
(the main process is not stopping, so nothing kills it).  When the signal lands after
the worker's own handlers are in place (a slow machine), it leaves gracefully, also
within seconds.

The second test stops the whole server the same way: SIGTERM to ``feedserver serve`` the
moment its first worker is forked.  The last two are what a server must survive or take
along: a ``kill -9`` of the server (its workers and scheduler go too) and workers killed
one after another (each replaced).  The three failed under granian as first tried
(benchmarks/README.md, "A spike under granian").
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from tests.system.test_serve_e2e import get, serve_site

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(),
                                reason="follows the server's workers through /proc")

GONE_WITHIN = 5.0  # seconds; a worker that lost the signal never leaves


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found |= {int(child) for child in handle.read().split()}
        except OSError:  # a thread that ended meanwhile
            continue
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
        victim = min(workers(master))
        before = children(master)
        os.kill(victim, signal.SIGKILL)  # the server forks a replacement
        deadline = time.monotonic() + 10
        while not (new := children(master) - before):
            assert time.monotonic() < deadline, "no worker was forked"
            time.sleep(0.0005)
        worker = new.pop()
        os.kill(worker, signal.SIGTERM)  # what the main process sends each worker on a stop
        deadline = time.monotonic() + GONE_WITHIN
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(worker), f"the booting worker {worker} kept running after SIGTERM"
        deadline = time.monotonic() + 20  # and the server goes on, with two workers again
        while len(workers(master)) != 2 or get_status(server) != 200:
            assert server.process.poll() is None, server.log.read_text()
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.1)


def get_status(server: object) -> int | None:
    with contextlib.suppress(OSError):
        return get(server, "/healthz").status  # type: ignore[arg-type]
    return None


def _command(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:  # gone meanwhile (ProcessLookupError while reading, or no file)
        return b""


def workers(master: int) -> set[int]:
    """The master's web workers forked so far: its children other than the scheduler once
    the scheduler runs (the server starts it, its stop handlers in place, before it forks
    any worker; earlier children are the start's own, such as ``ldconfig`` for ctypes)."""
    found = children(master)
    scheduler = {c for c in found if b"feedserver.schedule" in _command(c)}
    return found - scheduler if scheduler else set()


def test_a_server_stopped_while_its_workers_boot_ends_at_once(site_dir: Path) -> None:
    """The same stop, as a deploy or a test's teardown gives it: SIGTERM to the server the
    moment its first worker is forked, before any worker has its own handlers.  The
    server and every process it started must be gone within a few seconds; a worker that
    lost the signal holds the stop until the server gives up waiting for it (10 s)."""
    with serve_site(site_dir) as built:  # built for this address: the next start on it
        port = built.port               # builds nothing and forks its workers at once
    with serve_site(site_dir, ready=False, port=port) as server:
        master = server.process.pid
        deadline = time.monotonic() + 60
        while not (forked := workers(master)):
            assert server.process.poll() is None, server.log.read_text()
            assert time.monotonic() < deadline, "no worker was forked"
            time.sleep(0.0005)
        everyone = children(master)
        os.kill(master, signal.SIGTERM)
        began = time.monotonic()
        code = server.process.wait(timeout=30)
        took = time.monotonic() - began
        deadline = time.monotonic() + GONE_WITHIN
        while any(alive(pid) for pid in everyone) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert took < GONE_WITHIN, f"the stop took {took:.1f}s (workers {sorted(forked)})"
    assert code == 0, server.log.read_text()
    assert not any(alive(pid) for pid in everyone), server.log.read_text()


def test_a_killed_server_takes_its_workers_and_scheduler_along(site_dir: Path) -> None:
    """``kill -9`` of ``feedserver serve`` (the OOM killer, a supervisor's last resort):
    its workers and its scheduler end within a few seconds and nothing answers on its
    port.  Under granian the workers went on serving with parent pid 1."""
    with serve_site(site_dir) as server:
        master = server.process.pid
        everyone = children(master)
        assert len(workers(master)) == 2 and len(everyone) == 3, everyone
        os.kill(master, signal.SIGKILL)
        server.process.wait(timeout=10)
        try:
            deadline = time.monotonic() + GONE_WITHIN
            while any(alive(pid) for pid in everyone) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not any(alive(pid) for pid in everyone), server.log.read_text()
            with pytest.raises(OSError):
                get(server, "/healthz")
        finally:  # what this test started ends with it, whatever it found
            for pid in everyone:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_workers_killed_one_after_another_are_replaced_and_the_server_goes_on(
        site_dir: Path) -> None:
    """A worker killed, its replacement killed again a second later (a memory limit hit
    twice): each is replaced and the server keeps answering.  Granian ended the whole
    server on the second death ("crash loop")."""
    with serve_site(site_dir) as server:
        master = server.process.pid
        victim = min(workers(master))
        for _ in range(2):  # a worker, then the one that replaced it
            before = workers(master)
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while not (new := workers(master) - before) or alive(victim):
                assert server.process.poll() is None, server.log.read_text()
                assert time.monotonic() < deadline, "the worker was not replaced"
                time.sleep(0.05)
            victim = min(new)
            time.sleep(1.0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a replacement may still be booting
            with contextlib.suppress(OSError):
                if get(server, "/healthz").status == 200:
                    break
            time.sleep(0.1)
        assert server.process.poll() is None, server.log.read_text()
        assert get(server, "/healthz").status == 200
        assert len(workers(master)) == 2


BROKEN_APP = """
import sys
from feedserver.config import load_settings
from feedserver.serve import FeedServer, server_options
settings = load_settings(sys.argv[1])
def broken():
    raise RuntimeError("the app cannot load: a broken install")
FeedServer(broken, server_options(settings, "127.0.0.1", int(sys.argv[2]), 2)).run()
"""


def test_workers_that_cannot_load_the_app_end_the_server_at_once(site_dir: Path) -> None:
    """A worker that fails before it has loaded the app (a broken install, a bad setting)
    is a crash loop: the server ends with an error status and the reason, at once, instead
    of forking workers that fail again every few seconds (or, as granian alone does, only
    when two failures come within 5.5 s of each other)."""
    import subprocess
    import sys

    from tests.system.test_serve_e2e import free_port

    log = site_dir / "broken.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", BROKEN_APP,
                                    str(site_dir / "config.toml"), str(free_port())],
                                   cwd=site_dir, stdout=out, stderr=subprocess.STDOUT)
    try:
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    said = log.read_text()
    assert code != 0, said
    assert "the app cannot load: a broken install" in said and "crash loop" in said, said
    assert said.count("Spawning worker") == 2, said  # the two first workers, no respawn


STUCK_APP = """
import sys, time
from feedserver import worker
from feedserver.config import load_settings
from feedserver.serve import FeedServer, server_options
worker.REQUEST_TIMEOUT = 1.0  # seconds, for the test (30 in production)
settings = load_settings(sys.argv[1])
def app(environ, start_response):
    if environ["PATH_INFO"] == "/hang":
        time.sleep(3600)  # a view that never returns (a lock never released)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
FeedServer(lambda: app, server_options(settings, "127.0.0.1", int(sys.argv[2]), 1)).run()
"""


def test_a_request_past_the_timeout_replaces_its_worker_and_the_server_goes_on(
        site_dir: Path) -> None:
    """granian has no request timeout of its own: a worker stuck in one request would
    answer nothing more, ever.  The watchdog ends it after REQUEST_TIMEOUT (naming the
    path), the server forks another (it had booted: no crash loop) and answers again."""
    import http.client
    import subprocess
    import sys

    from tests.system.test_serve_e2e import free_port

    port = free_port()
    log = site_dir / "stuck.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", STUCK_APP,
                                    str(site_dir / "config.toml"), str(port)],
                                   cwd=site_dir, stdout=out, stderr=subprocess.STDOUT)

    def ask(path: str, timeout: float) -> int | None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    try:
        deadline = time.monotonic() + 30
        while ask("/ok", 2) != 200:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        first = children(process.pid)  # one worker, no scheduler
        assert len(first) == 1
        assert ask("/hang", 10) != 200  # cut off when its worker is ended
        deadline = time.monotonic() + 10
        while ask("/ok", 2) != 200:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        said = log.read_text()
        assert "a request for /hang ran" in said, said
        assert children(process.pid) != first and process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=20)
