"""What a forked child's work costs in private memory (Linux's ``smaps_rollup``).

A child shares its parent's pages until either writes to one, and CPython writes to
every object it merely reads (its reference count): these helpers measure how much of
the parent a child's reading copies, the point of ``core/packed.py`` and
``build/shelf.py``.  The child's collector is off while it measures (a collection writes
to every tracked object's header, the parent's included)."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROLLUP = Path("/proc/self/smaps_rollup")


def private_dirty_kib() -> int:
    """This process's private dirty memory, KiB."""
    for line in ROLLUP.read_text().splitlines():
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1])
    raise AssertionError("no Private_Dirty line")


def grown_in_child(work: Callable[[Any], object],
                   prepare: Callable[[], Any] = lambda: None) -> int:
    """KiB of private memory a forked child gains by ``work(prepare())`` (while it keeps
    what ``work`` returns); ``prepare`` runs first, unmeasured (what the child makes
    there is its own, so reading it copies nothing of this process)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            given = prepare()
            gc.disable()
            before = private_dirty_kib()
            kept = work(given)
            os.write(write, str(private_dirty_kib() - before).encode())
            del kept
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        grown = int(pipe.read())
    os.waitpid(pid, 0)
    return grown
