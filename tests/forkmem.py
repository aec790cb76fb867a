"""Which of the parent's pages a forked child's work copies (Linux's ``/proc/self/pagemap``).

A child shares its parent's pages until either writes to one, and CPython writes to
every object it merely reads (its reference count): these helpers count which of the
parent's named pages a child's reading makes its own, the point of ``core/packed.py``
and ``build/shelf.py``.  Named pages, not the child's whole private memory: that one
also moves with whatever its allocator reuses, which made such tests flaky on a clean
clone.  The child's collector is off (a collection writes to every tracked object's
header, the parent's included)."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable

PAGE = 4096


def pages_of(objects: Iterable[object]) -> set[int]:
    """The pages these objects start on (their headers: what a reference count write
    copies)."""
    return {id(obj) // PAGE for obj in objects}


def span_of(buffer: bytes) -> set[int]:
    """Every page a bytes object's text lies on (its header's page left out)."""
    start = id(buffer) // PAGE + 1
    return set(range(start, (id(buffer) + len(buffer)) // PAGE + 1))


def copied_in_child(pages: set[int], work: Callable[[], object]) -> int:
    """How many of ``pages`` (of this process) a forked child holds as a copy of its own
    after ``work()``: present and mapped by it alone (``/proc/self/pagemap`` bit 56, no
    privilege needed).  Unlike :func:`grown_in_child` this counts only the pages named,
    so what the child's allocator does elsewhere cannot blur it."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            gc.disable()
            work()
            copied = 0
            with open("/proc/self/pagemap", "rb") as pagemap:
                for page in pages:
                    pagemap.seek(page * 8)
                    flags = int.from_bytes(pagemap.read(8), "little")
                    copied += flags >> 63 & 1 and flags >> 56 & 1
            os.write(write, str(copied).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        found = int(pipe.read())
    os.waitpid(pid, 0)
    return found
