"""Advisory file locks in ``state_dir``: one scheduler, one build at a time.

Two locks, both ``fcntl.flock`` on files beside the ledger, so they hold
across processes (two ``serve``/``watch`` commands pointed at the same state)
and vanish with the process that held them (a ``kill -9`` leaves no stale
lock to clean up by hand):

- ``scheduler.lock`` is held for the whole life of the process that runs the
  scheduler; a second one stands by until the first goes away.
- ``build.lock`` is held for one build; the scheduler's job and a manual
  ``feedserver build`` never publish at the same time.

flock locks belong to an open file, so two threads of one process that each
open the file also exclude each other (the tests rely on that).  A forked
child shares that open file: a build's worker processes would keep the lock
alive after a ``kill -9`` of their parent, so every child closes its copies
right after the fork (the parent's lock is untouched).

The process holding ``scheduler.lock`` writes who it is into it
(:class:`Holder`), so one standing by can tell a legitimate holder from a
serve command's scheduler whose server is gone (:func:`orphan_problem`).

Builders on several hosts may share ``state_dir`` on one file system (NFS,
CephFS: any whose locks hold across clients).  Who gets the lock is the
file system's business; a pid, though, means something only where it was
taken.  The record therefore says where (:func:`pid_scope`: hostname, boot
and pid namespace), and a holder from elsewhere is never judged by the pids
of the standby's host, where the same number names another process or none.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from feedserver.config import Settings
from feedserver.schedule.lifeline import alive, parent_of

SCHEDULER_LOCK = "scheduler.lock"
BUILD_LOCK = "build.lock"
_POLL = 0.05
_HELD: set[int] = set()  # descriptors holding a lock in this process


def _drop_inherited() -> None:
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_inherited)


def lock_file(settings: Settings, name: str) -> Path:
    """Where a lock lives: the state folder (created if needed)."""
    folder = Path(settings.state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on ``path``, or None if taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    _HELD.add(fd)
    return fd


def release(fd: int) -> None:
    """Drop a lock taken with :func:`try_lock` (closing the file releases it)."""
    _HELD.discard(fd)
    os.close(fd)


def wait_lock(path: Path, timeout: float | None,
              give_up: Callable[[], bool] = lambda: False) -> int | None:
    """Poll for the lock until it is ours, ``timeout`` passes or ``give_up()`` says so."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        fd = try_lock(path)
        if fd is not None:
            return fd
        if give_up() or (deadline is not None and time.monotonic() >= deadline):
            return None
        time.sleep(_POLL)


@contextlib.contextmanager
def build_lock(settings: Settings, timeout: float | None = None) -> Iterator[bool]:
    """Hold ``build.lock`` for the block; yields False when it was not had in time."""
    fd = wait_lock(lock_file(settings, BUILD_LOCK), timeout)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            release(fd)


def pid_scope() -> str:
    """Where this process's pids mean something: hostname, boot and pid namespace.

    Two containers on one machine have their own pid namespaces; two machines
    (or two boots of one) their own boot ids; the hostname is for people.
    """
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text("ascii").strip())
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    return " ".join(parts)


@dataclass(frozen=True)
class Holder:
    """Who holds ``scheduler.lock``: its pid, the server it belongs to (None for
    ``feedserver watch``, which belongs to nobody) and the command; ``host`` and
    ``scope`` (:func:`pid_scope`) say where those pids are, empty in a record
    written by a version that did not say."""

    pid: int
    parent: int | None
    role: str
    host: str = ""
    scope: str = ""

    @classmethod
    def here(cls, pid: int, parent: int | None, role: str) -> Holder:
        """A record of a process of this host (and pid namespace)."""
        return cls(pid, parent, role, socket.gethostname(), pid_scope())

    def is_local(self) -> bool:
        """Whether its pids can be looked up here (an older record is taken as local)."""
        return not self.scope or self.scope == pid_scope()


def write_holder(fd: int, holder: Holder) -> None:
    """Record ``holder`` in the lock file it holds (best effort: the lock is what counts)."""
    data = json.dumps(asdict(holder)).encode()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in ``path``, or None if there is no readable record."""
    try:
        data = json.loads(path.read_bytes() or b"null")
        return Holder(int(data["pid"]), data.get("parent"), str(data.get("role", "")),
                      str(data.get("host") or ""), str(data.get("scope") or ""))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def flock_holders(path: Path) -> set[int]:
    """Pids holding an flock on ``path`` according to the kernel (Linux /proc/locks)."""
    try:
        info = os.stat(path)
        lines = Path("/proc/locks").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return set()
    found = set()
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK":  # "->" lines are waiters, not holders
            continue
        with contextlib.suppress(ValueError, IndexError):
            _major, _minor, inode = parts[5].split(":")
            if int(inode) == info.st_ino:
                found.add(int(parts[4]))
    return found


def orphan_problem(path: Path) -> str | None:
    """A line naming the holder of ``path`` if it is a scheduler whose server is gone.

    The recorded holder is believed while the kernel agrees it holds the lock
    (or cannot say); it is an orphan when it was started by a server
    (``parent``) that is gone or is no longer its parent.  A holder without a
    record (an older version, the one this check was made for) is found in
    /proc/locks and judged by its command line and parent.  A holder on another
    host (or in another pid namespace) is not judged at all: its pids name
    nothing here, and the file system ends its lock if it dies.
    """
    holder = read_holder(path)
    kernel = flock_holders(path)
    if holder is not None and not holder.is_local():
        holder = None  # only what the kernel here shows (a process of this host) is judged
    if holder is not None and (not kernel or holder.pid in kernel):
        if holder.parent is None or not alive(holder.pid):
            return None
        if alive(holder.parent) and parent_of(holder.pid) in (holder.parent, None):
            return None
        return _orphan_line(holder.pid, f"the scheduler of a {holder.role} command whose "
                                        f"server (pid {holder.parent}) is gone")
    for pid in sorted(kernel):
        if _unrecorded_orphan(pid):
            return _orphan_line(pid, "a serve command's scheduler whose server is gone")
    return None


def _unrecorded_orphan(pid: int) -> bool:
    """A ``python -m feedserver.schedule.owner`` whose parent is init or not a
    feedserver server."""
    try:
        if b"feedserver.schedule.owner" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return False
    except OSError:
        return False
    parent = parent_of(pid)
    if parent is None:
        return False
    try:
        return parent == 1 or b"feedserver" not in Path(f"/proc/{parent}/cmdline").read_bytes()
    except OSError:
        return True


def _orphan_line(pid: int, who: str) -> str:
    return (f"scheduler.lock is held by pid {pid}, {who}: nothing is published until it "
            f"ends; stop it (kill {pid})")
