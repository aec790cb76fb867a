"""The multiprocess folder of one server run (prometheus_client's multiprocess mode).

Every process of a ``feedserver serve`` (the web workers, the scheduler child)
writes its counters to memory-mapped files in one folder named by
``PROMETHEUS_MULTIPROC_DIR``; ``/metrics`` in any worker adds them up.  The folder
must belong to this run alone: files left by an earlier run (or another server
on the machine) would be summed in, and counters would not start from zero.  So
:func:`private_dir` makes a fresh one (``mkdtemp``: empty, mode 0700) and points
the environment at it before any worker or the scheduler is started; the server
removes it when it exits (:func:`remove`), and a folder left behind by a server that
was killed is removed by the next start (:func:`sweep`).

Which folders are left behind is decided by a lock, not by the pid in the name: the
main process of the server holds an ``flock`` on the folder's :data:`OWNER` file from before the
folder has its name, the workers it forks share it, and the kernel lets go of it when
the last of them ends, whatever killed them (the scheduler's process is started anew,
without it, and dies with the master: :mod:`feedserver.schedule.lifeline`).

A pid names a process only in its own pid namespace: a server in a container or on a
replica host that shares the temp folder saw this one's pid as nobody's and swept the
folder of a live server, whose workers then failed to boot (found by the replica-hosts
test, on CI).  A folder without the lock file (made by a version before it) is still
judged by its pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "feedserver-metrics-"
OWNER = ".owner"  # locked by the run for as long as any of its processes lives
_held: dict[str, int] = {}  # folder -> the open lock file, in the process that made it


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _in_use(folder: Path) -> bool:
    """Whether a live process (of any pid namespace) holds the folder's lock; a folder
    without a lock file is judged by the pid its name carries."""
    try:
        fd = os.open(folder / OWNER, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        pid = folder.name[len(PREFIX):].split("-", 1)[0]
        return not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid))
    except OSError:
        return True  # unreadable: not ours to judge
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # and the lock, if it was taken
    return False


def sweep(parent: Path) -> None:
    """Remove folders of earlier runs whose processes are all gone (SIGKILL, a crash)."""
    for folder in parent.glob(f"{PREFIX}*-*"):
        if str(folder) not in _held and not _in_use(folder):
            shutil.rmtree(folder, ignore_errors=True)


def private_dir() -> Path:
    """A new, empty folder for this run, set as ``PROMETHEUS_MULTIPROC_DIR``.

    Call in the process that becomes the server's main process, before the first
    metric is created anywhere (workers and the scheduler inherit the variable; the
    forked workers share the lock).  The folder is made under a name no sweep looks
    at, locked, and only then renamed to its own: another server's sweep never sees it
    unlocked.
    """
    parent = Path(tempfile.gettempdir())
    sweep(parent)
    making = Path(tempfile.mkdtemp(prefix=f".{PREFIX}", dir=parent))
    fd = os.open(making / OWNER, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    folder = parent / f"{PREFIX}{os.getpid()}-{making.name[len(PREFIX) + 1:]}"
    os.rename(making, folder)
    _held[str(folder)] = fd
    os.environ[ENV] = str(folder)
    return folder


def remove(folder: Path) -> None:
    """Delete the run's folder (at server exit); the variable goes with it."""
    if os.environ.get(ENV) == str(folder):
        del os.environ[ENV]
    shutil.rmtree(folder, ignore_errors=True)
    fd = _held.pop(str(folder), None)
    if fd is not None:
        os.close(fd)


def mark_dead(pid: int) -> None:
    """A worker has exited: drop its live gauges (its counters keep counting in the sum)."""
    if not os.environ.get(ENV):
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid)
