"""What a fork costs the process that forks, and when a build does without one.

``fork`` shares every page of the parent copy-on-write, and to do that it
write-protects them all in the parent too.  From then on the parent's first write to
each page is a page fault, and while the child lives a copy of the page as well.
CPython writes to an object whenever it so much as iterates over it (the reference
count), and a build walks most of its heap: every article, signature and manifest
entry, several times.  So a fork made during a build costs the parent about one fault
per page of its heap, whatever the child does; a process of a few gigabytes (a
scheduler holding 50,000 articles) pays more for that than the fork's second core
saves on a small job (a one-file build's few channels), and that is so for every fork,
however short its child's life.  The faults counted and timed are in
benchmarks/README.md ("Forks and the pages they cost").

:func:`costly` says when a process is big enough for that rule: the build then keeps
its small jobs to itself (:mod:`feedserver.build.parallel`), and a long-lived one has
its parse and presence check done by helper programs, which share no pages
(:mod:`feedserver.build.helper`).  A cold build's big jobs still fork: their work
outweighs the faults.
"""

from __future__ import annotations

import os

# Resident bytes from which a fork costs more than it saves on a small job: a one-file
# build's render forked gained at 170 MiB (1,000 articles) and lost at 300 MiB (10,000).
RESIDENT_MAX = 256 << 20
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident() -> int:
    """This process's resident bytes (``/proc/self/statm``), 0 where there is none."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def costly() -> bool:
    """Whether this process is big enough that a fork made now costs more than it saves
    on a small job."""
    return resident() >= RESIDENT_MAX
