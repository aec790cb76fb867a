"""Numbered tasks shared by this process and a few bare forks of it (a shell).

For the few tasks of an incremental build, a ``multiprocessing.Pool`` costs
more than it saves: starting one (its threads, its queues, its workers'
bootstrap) costs several times a bare ``os.fork`` and ``waitpid``
(benchmarks/README.md).  So :func:`shared` forks ``processes - 1`` children for one job and
works alongside them.  Task numbers wait in a pipe that every process reads
4 bytes at a time (reads of whole records from a pipe holding only whole
records do not tear), so whoever is free takes the next task and the cores
stay busy whatever each task costs.  Each child streams its results back,
pickled, on a pipe of its own, and leaves with ``os._exit``.

The children are forked with the garbage collector's objects frozen, and they
stay frozen here until every child is reaped (:func:`feedserver.build.heap.hold`):
a collection in either process writes to every object's header, and every page
written is then copied.
Nothing outlives the call: the children are waited for even when it raises,
and one silent for :data:`STUCK` seconds is killed.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
from collections.abc import Callable, Iterator
from typing import TypeVar

from feedserver.build import heap

T = TypeVar("T")
_NUMBER = struct.Struct("<I")
# A child silent this long while the parent waits for it is taken for stuck (forked
# from a threaded process, it may wait for a lock another thread held at the fork):
# it is killed and its tasks run here.
STUCK = 120.0


def shared(count: int, run: Callable[[int], T], processes: int,
           undo: Callable[[list[T]], object]) -> list[T]:
    """``[run(0), ..., run(count - 1)]``, computed here and in ``processes - 1`` forks.

    ``run`` must be deterministic and its result picklable; a task a child
    took but never reported (the child was killed) is run again here, so the
    result is whole.  If anything raises, ``undo`` gets the results gathered so
    far (to remove what they staged) before the exception goes on.
    """
    queue, feed = os.pipe()
    os.write(feed, b"".join(_NUMBER.pack(n) for n in range(count)))  # < a pipe's 64 kB
    os.close(feed)
    results: dict[int, T] = {}
    try:
        _share(queue, run, min(processes, count) - 1, results)
        for number in range(count):
            if number not in results:
                results[number] = run(number)
    except BaseException:
        undo(list(results.values()))
        raise
    return [results[number] for number in range(count)]


def _share(queue: int, run: Callable[[int], T], forks: int, results: dict[int, T]) -> None:
    """Fork the children, run tasks here until the queue is empty, gather theirs."""
    children: list[tuple[int, int]] = []
    heap.hold()
    try:
        try:
            for _ in range(forks):
                children.append(_fork(queue, run))
        except OSError:
            pass  # no fork (out of processes or memory): fewer hands, same result
        try:
            for number in _taken(queue):
                results[number] = run(number)
        finally:
            for _ in _taken(queue):  # left by an error here: the children start no more
                pass
            for pid, pipe in children:  # and what they did is undone with the rest
                results.update(_received(pid, pipe))
    finally:
        _reap(queue, children)
        heap.release()


def _taken(queue: int) -> Iterator[int]:
    """Task numbers this process takes from the shared pipe, until it is empty."""
    while len(chunk := os.read(queue, _NUMBER.size)) == _NUMBER.size:
        yield _NUMBER.unpack(chunk)[0]


def _fork(queue: int, run: Callable[[int], T]) -> tuple[int, int]:
    """A child that runs tasks from ``queue`` and reports each on a pipe: (pid, read end)."""
    back, send = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(back)
            for number in _taken(queue):
                if os.getppid() != parent:
                    break  # the parent was killed: stage nothing more for nobody
                record = pickle.dumps((number, run(number)))
                write_all(send, _NUMBER.pack(len(record)) + record)
            status = 0
        finally:
            os._exit(status)  # no atexit handlers, no flush of the parent's buffers
    os.close(send)
    return pid, back


def write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to a pipe (a write to a full pipe takes only part)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _drained(pid: int, pipe: int) -> bytearray:
    """What child ``pid`` wrote to ``pipe`` until it closed its end; a child silent for
    :data:`STUCK` seconds is killed (what it sent so far is returned, maybe cut short)."""
    data = bytearray()
    while True:
        if not select.select([pipe], [], [], STUCK)[0]:
            os.kill(pid, signal.SIGKILL)  # its end closes when it is gone
            continue
        chunk = os.read(pipe, 1 << 16)
        if not chunk:
            return data
        data += chunk


def _received(pid: int, pipe: int) -> dict[int, T]:
    """Every whole record a child sent, until it closed its end (or was found stuck)."""
    data = _drained(pid, pipe)
    found: dict[int, T] = {}
    at = 0
    while at + _NUMBER.size <= len(data):
        size = _NUMBER.unpack_from(data, at)[0]
        at += _NUMBER.size
        if at + size > len(data):
            break  # cut short by a killed child: its task runs again in the parent
        number, result = pickle.loads(data[at:at + size])
        found[number] = result
        at += size
    return found


def _reap(queue: int, children: list[tuple[int, int]]) -> None:
    """Close the pipes (a child still writing gets EPIPE and leaves) and wait for every
    child, so none outlives the job."""
    os.close(queue)
    for pid, pipe in children:
        os.close(pipe)
        os.waitpid(pid, 0)
