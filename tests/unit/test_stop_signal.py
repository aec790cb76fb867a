"""The scheduler's stop signal handler takes no lock the interrupted code may hold.

A Python signal handler runs in the main thread between two bytecodes of whatever it
interrupted.  The scheduler's handler called ``stop.set()`` (the event's lock) and
started the grace thread (threading's own lock): when SIGTERM landed while the main
thread held either (waiting on ``stop``, starting a pool's threads), the handler waited
for a lock its own thread held, and the scheduler ignored the stop until the group's
KILL (test_lifecycle.py's "scheduler gone after 2.00s", about one run in twenty).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from feedserver.schedule import scheduler


def _in_child(body: object) -> int:
    """Run ``body`` in a forked child; its exit status (-1: still running after 10 s)."""
    pid = os.fork()
    if pid == 0:
        try:
            body()  # type: ignore[operator]
        finally:
            os._exit(0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1


@pytest.mark.parametrize("held", ["the stop event's lock", "threading's thread-start lock"])
def test_a_stop_signal_landing_under_a_held_lock_still_stops(held: str) -> None:
    def body() -> None:
        stop = threading.Event()
        scheduler._stop_on_signals(stop)
        lock = (stop._cond if held == "the stop event's lock"  # type: ignore[attr-defined]
                else threading._active_limbo_lock)  # type: ignore[attr-defined]
        with lock:  # as the main thread holds it inside stop.wait() or Thread.start()
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs here, under the lock
        assert stop.wait(5), "the stop was never set"
        time.sleep(scheduler.STOP_GRACE + 5)  # the grace thread ends the process first

    assert _in_child(body) == 128 + signal.SIGTERM


def test_a_second_signal_leaves_at_once() -> None:
    """The exit status says which way the child left: the second signal's number from its
    handler, at once; the grace thread would have ended it with the first's (SIGTERM)
    after STOP_GRACE.  No clock is asked: a busy machine may take that long to fork."""
    def body() -> None:
        stop = threading.Event()
        scheduler._stop_on_signals(stop)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(scheduler.STOP_GRACE + 5)

    assert _in_child(body) == 128 + signal.SIGINT
