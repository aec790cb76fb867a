"""A fork never lands inside one of the hub store's SQLite calls.

The scheduler's process forks from its job thread (the cold build's process, a build's
workers) while the delivery thread reads the hub's store a few times a second.  SQLite
holds process-wide mutexes inside a call (its allocator's, its file list's); a child
forked at that moment starts with one held by a thread it does not have, and its first
SQLite call (the cold build opens the ledger) waits forever.  Without the store's fork
gate, a thread reading the store without pause made about four forks in ten hang here.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

from feedserver.websub.store import HubStore

FORKS = 150
CHILD_LIMIT = 10.0  # seconds; a child does one tiny SQLite call, in milliseconds


def _child_ends(pid: int) -> bool:
    deadline = time.monotonic() + CHILD_LIMIT
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return True
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)  # our own child, stuck
    os.waitpid(pid, 0)
    return False


def test_children_forked_beside_a_busy_store_use_sqlite(tmp_path: Path) -> None:
    store = HubStore(tmp_path / "state")
    stop = threading.Event()
    calls = [0]

    def read_without_pause() -> None:
        while not stop.is_set():
            store.pending()
            calls[0] += 1

    reader = threading.Thread(target=read_without_pause, daemon=True)
    reader.start()
    stuck = 0
    try:
        for number in range(FORKS):
            pid = os.fork()
            if pid == 0:  # the child: one SQLite call of its own and one of the store's
                try:
                    db = sqlite3.connect(tmp_path / f"child-{number}.sqlite3")
                    db.execute("SELECT 1").fetchone()
                    db.close()
                    store.pending()
                finally:
                    os._exit(0)
            if not _child_ends(pid):
                stuck += 1
                break  # one is enough to fail; each costs CHILD_LIMIT
    finally:
        stop.set()
        reader.join(10)
    assert calls[0] > 0  # the store was in use while the process forked
    assert stuck == 0, f"a child forked beside a store call hung (after {number + 1} forks)"
