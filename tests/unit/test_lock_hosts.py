"""scheduler.lock shared by builders on several hosts (issue 16, "Several machines").

A standby judges the recorded holder of ``scheduler.lock`` by its pid only
when that pid means something where the standby runs: on another host (or in
another pid namespace) the same number names an unrelated process, or none.
There the standby cannot see the holder, and the kernel's ``/proc/locks``
lists nobody (the lock is held through the shared file system), so the
record is all it has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from feedserver.schedule import locks
from feedserver.schedule.locks import Holder, orphan_problem, read_holder, write_holder


def _foreign_record(path: Path, pid: int, parent: int) -> None:
    """What a newer feedserver on host A writes: its pid there, its server's, where."""
    path.write_text(json.dumps({"pid": pid, "parent": parent, "role": "serve",
                                "host": "host-a", "scope": "host-a 0000 pid:[1]"}))


@pytest.fixture
def gone_pid() -> int:
    """A pid that ended (it stands for a server that is not on this host)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_holder_on_another_host_is_never_judged_by_local_pids(
        tmp_path: Path, gone_pid: int, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = tmp_path / locks.SCHEDULER_LOCK
    # Host A's scheduler happens to have the number of a live process here (this test),
    # and its server's number is unused here: judged locally, it looks like an orphan.
    _foreign_record(lock, os.getpid(), gone_pid)
    monkeypatch.setattr(locks, "flock_holders", lambda path: set())  # held from elsewhere
    assert orphan_problem(lock) is None


def test_a_holder_here_whose_server_is_gone_is_still_an_orphan(
        tmp_path: Path, gone_pid: int, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = tmp_path / locks.SCHEDULER_LOCK
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        write_holder(fd, Holder.here(os.getpid(), gone_pid, "serve"))
    finally:
        os.close(fd)
    monkeypatch.setattr(locks, "flock_holders", lambda path: set())
    problem = orphan_problem(lock)
    assert problem is not None and f"kill {os.getpid()}" in problem


def test_the_record_names_the_host_and_reads_back(tmp_path: Path) -> None:
    lock = tmp_path / locks.SCHEDULER_LOCK
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        write_holder(fd, Holder.here(os.getpid(), None, "watch"))
    finally:
        os.close(fd)
    holder = read_holder(lock)
    assert holder is not None and holder.pid == os.getpid() and holder.is_local()
    assert holder.host == os.uname().nodename and holder.scope
    _foreign_record(lock, 7, 1)
    foreign = read_holder(lock)
    assert foreign is not None and foreign.host == "host-a" and not foreign.is_local()
    lock.write_text(json.dumps({"pid": 7, "parent": 1, "role": "serve"}))  # an older version
    older = read_holder(lock)
    assert older is not None and older.is_local()  # judged here, as before
