"""The multiprocess folder of one server run (prometheus_client's multiprocess mode).

Every process of a ``feedserver serve`` (the gunicorn workers, the scheduler child)
writes its counters to memory-mapped files in one folder named by
``PROMETHEUS_MULTIPROC_DIR``; ``/metrics`` in any worker adds them up.  The folder
must belong to this run alone: files left by an earlier run (or another server
on the machine) would be summed in, and counters would not start from zero.  So
:func:`private_dir` makes a fresh one (``mkdtemp``: empty, mode 0700) and points
the environment at it before any worker or the scheduler is started; the server
removes it when it exits (:func:`remove`), and a folder left behind by a server that
was killed is removed by the next start (:func:`sweep`: its master pid is gone).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "feedserver-metrics-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(parent: Path) -> None:
    """Remove folders of earlier runs whose server process is gone (SIGKILL, a crash)."""
    for folder in parent.glob(f"{PREFIX}*-*"):
        pid = folder.name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def private_dir() -> Path:
    """A new, empty folder for this run, set as ``PROMETHEUS_MULTIPROC_DIR``.

    Call in the process that becomes the gunicorn master, before the first
    metric is created anywhere (workers and the scheduler inherit the variable).
    """
    parent = Path(tempfile.gettempdir())
    sweep(parent)
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    os.environ[ENV] = str(folder)
    return folder


def remove(folder: Path) -> None:
    """Delete the run's folder (at server exit); the variable goes with it."""
    if os.environ.get(ENV) == str(folder):
        del os.environ[ENV]
    shutil.rmtree(folder, ignore_errors=True)


def mark_dead(pid: int) -> None:
    """A worker has exited: drop its live gauges (its counters keep counting in the sum)."""
    if not os.environ.get(ENV):
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid)
