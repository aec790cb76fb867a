"""Processes that end with the process that started them (issue 17).

A scheduler left running after its server is gone keeps a core busy and
holds ``scheduler.lock``, so the next server publishes nothing.  Three
mechanisms, from the most to the least robust:

- :func:`die_with_parent`: the kernel (Linux ``PR_SET_PDEATHSIG``) sends a
  signal when the parent ends, however it ends (``kill -9``, the OOM
  killer), whatever this process is doing: no Python code needs to run.
  The serve command's scheduler child asks for ``SIGKILL``.
- :func:`bind_children`: every process this one forks from then on (the
  build's ``multiprocessing`` pools and bare forks) asks for
  :data:`CHILD_SIGNAL` the same way.  Not ``SIGKILL``: Linux sends the
  signal when the *thread* that forked the child ends, and a ``Pool``
  forks its replacement workers from a helper thread that ends before the
  pool does; a worker killed then could hold the pool's queue lock and
  hang the build.  So the child's handler leaves only when its parent
  process is really gone (``getppid()`` changed).
- :func:`watch_parent`: a thread polling ``getppid()``, for platforms
  without ``prctl`` (it needs the interpreter lock, so a long call in C
  delays it).

Everything here is process-wide state set once, on purpose: it describes
the process, not a build.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
CHILD_SIGNAL = signal.SIGUSR2  # nothing in feedserver or its libraries uses it
ORPHAN_EXIT = 3  # exit status of a forked child whose parent died
POLL = 0.2  # seconds between two looks at the parent in watch_parent

_forker = 0  # pid of the process that forked this one (set just before each fork)
_bound = False


def _prctl() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """libc's prctl, or None where there is none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def parent_death_signal(sig: int) -> bool:
    """Ask the kernel for ``sig`` when the thread that forked this process ends.

    False where that is not available (then :func:`watch_parent` is the fallback).
    """
    if _PRCTL is None:
        return False
    return _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> None:
    """End this process when ``parent`` (the pid that started it) ends.

    The kernel's signal where there is one, and a polling thread always (it
    also covers a parent that died before the signal was asked for).
    """
    parent_death_signal(sig)
    if os.getppid() != parent:  # gone already, before the request above
        os._exit(ORPHAN_EXIT)
    watch_parent(parent)


def watch_parent(parent: int, interval: float = POLL) -> threading.Thread:
    """A daemon thread that ends the process within ``interval`` of ``parent`` ending."""
    def look() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        log.warning("parent process %d ended; exiting at once", parent)
        os._exit(ORPHAN_EXIT)

    thread = threading.Thread(target=look, name="feedserver-lifeline", daemon=True)
    thread.start()
    return thread


def bind_children() -> None:
    """Every process this one forks from now on ends when this one ends (idempotent)."""
    global _bound
    if _bound:
        return
    _bound = True
    os.register_at_fork(before=_before_fork, after_in_child=_bind_child)


def _before_fork() -> None:
    global _forker
    _forker = os.getpid()


def _bind_child() -> None:
    """In a freshly forked child: ask for CHILD_SIGNAL when the parent goes."""
    if not _forker:
        return
    signal.signal(CHILD_SIGNAL, _parent_ended)
    if parent_death_signal(CHILD_SIGNAL) and os.getppid() != _forker:
        os._exit(ORPHAN_EXIT)  # the parent died between the fork and the request


def _parent_ended(_signum: int, _frame: FrameType | None) -> None:
    """CHILD_SIGNAL: leave if the parent process is gone (not only the thread that forked)."""
    if os.getppid() != _forker:
        os._exit(ORPHAN_EXIT)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def parent_of(pid: int) -> int | None:
    """The parent pid of ``pid`` (Linux /proc), or None when it cannot be told."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None
