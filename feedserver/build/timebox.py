"""Run numbered tasks in forked children, each task under a hard time budget.

Why children: a parse stuck in a C loop (a regular expression backtracking,
a huge document in a pure-Python parser calling into C) cannot be stopped
reliably from inside the process (signals are only handled between bytecodes),
so the only budget that holds is one the parent enforces by killing the child.

Why not one child per task: a fork per file would cost a cold 10,000-file
build more than the parses themselves.  So the tasks are split into ranges
(chunks) waiting in a pipe; ``processes`` children each take a range, report
"took range" and then one record per finished task.  The parent knows which
task each child is on and since when (its last record), so it can kill a child
whose current task is over the budget, report that task as timed out, put the
rest of its range back in the pipe and fork a replacement.  The budget is CPU
time (read from ``/proc``), with a wall-time backstop of :data:`WALL_FACTOR`
times the budget: see there why.  A child that dies
on its own (a crash, the OOM killer) is handled the same way, its task
reported as crashed.

Results are yielded in task order, so the caller sees the same sequence
whatever the sharing and whatever was killed.  Nothing outlives the call:
every child is killed (if still running) and reaped, even when the caller
stops iterating or an exception goes through.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import select
import signal
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from feedserver.build import heap

T = TypeVar("T")
_RANGE = struct.Struct("<II")  # start, stop: what the queue holds, 8 bytes a record
_HEAD = struct.Struct("<BIId")  # kind, number, length of the pickled payload, child's CPU s
_TOOK, _DONE, _RAISED = 0, 1, 2
_PIPE_RECORDS = 4096  # ranges written to the queue at once: 32 kB, half a pipe
# A task is killed when it has used ``timeout`` seconds of CPU, or this many times
# ``timeout`` of wall time whatever its CPU (a child that sleeps or waits).  CPU time,
# because a parse on a loaded machine (a 2-core box with a load of 10) takes several
# times its CPU time in wall time, and a file skipped for a busy machine would stay
# skipped until it changes.
WALL_FACTOR = 10
# Each child's pipe holds this much (the default is 64 kB, ~15 parsed articles): while
# the caller stores a batch of results, the children go on instead of waiting for it.
_PIPE_SIZE = 1 << 20
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Overrun:
    """A task that did not finish: over the budget (``seconds``), or its child died."""

    seconds: float
    crashed: str = ""


@dataclass
class _Child:
    pid: int
    pipe: int
    buffer: bytearray
    current: int = -1  # the task it is on (-1: waiting for a range)
    stop: int = -1  # end of its range
    since: float = 0.0  # when it started ``current`` (monotonic clock)
    cpu: float = 0.0  # its CPU seconds then
    check: float = 0.0  # when to look at its CPU time next


@dataclass
class _Run(Generic[T]):
    """The parent's state: the queue's write end, the children, results not yet yielded."""

    run: Callable[[int], T]
    feed: int
    queue: int
    timeout: float
    children: dict[int, _Child]
    results: dict[int, T | Overrun]
    queued: int = 0


def run(count: int, task: Callable[[int], T], processes: int,
        timeout: float) -> Iterator[tuple[int, T | Overrun]]:
    """Yield ``(n, task(n))`` for n in ``range(count)``, in order, computed in children.

    ``timeout`` (seconds, 0 for none) bounds each task: one over it gives an
    :class:`Overrun` instead of a result.  ``task`` runs in a forked child, so
    it sees this process's memory as it was at the fork; its result must be
    picklable.  An exception raised by ``task`` is raised here.
    """
    if count == 0:
        return
    size = max(1, -(-count // _PIPE_RECORDS), min(32, count // max(1, processes)))
    ranges = [(start, min(start + size, count)) for start in range(0, count, size)]
    queue, feed = os.pipe()
    state: _Run[T] = _Run(task, feed, queue, timeout, {}, {}, len(ranges))
    os.write(feed, b"".join(_RANGE.pack(*r) for r in ranges))  # <= _PIPE_RECORDS * 8 bytes
    heap.hold()  # a collection in either process would copy every page it touched
    try:
        for _ in range(min(processes, len(ranges))):
            with contextlib.suppress(OSError):  # out of processes or memory: fewer hands
                _spawn(state)
        if not state.children:  # no fork at all: here, without a budget, rather than not
            yield from ((number, task(number)) for number in range(count))
            return
        following = 0
        while following < count:
            while following in state.results:
                yield following, state.results.pop(following)
                following += 1
            if following < count:
                _wait(state)
    finally:
        _end(state)
        heap.release()


def _spawn(state: _Run[T]) -> None:
    """Fork one more child taking ranges from the queue."""
    back, send = os.pipe()
    with contextlib.suppress(OSError, AttributeError):  # Linux; elsewhere 64 kB it is
        fcntl.fcntl(send, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(back)
            os.close(state.feed)  # or the queue never ends for the children
            for child in state.children.values():
                os.close(child.pipe)
            _serve(state.queue, send, state.run)
            status = 0
        finally:
            os._exit(status)  # no atexit handlers, no flush of the parent's buffers
    os.close(send)
    state.children[pid] = _Child(pid, back, bytearray())


def _serve(queue: int, send: int, task: Callable[[int], object]) -> None:
    """The child's loop: take a range, say so, run and report each task in it."""
    while len(record := os.read(queue, _RANGE.size)) == _RANGE.size:
        start, stop = _RANGE.unpack(record)
        _send(send, _TOOK, start, _RANGE.pack(start, stop))
        for number in range(start, stop):
            try:
                result = pickle.dumps(task(number))
            except Exception as exc:  # handed to the parent, which raises it
                _send(send, _RAISED, number, pickle.dumps(exc))
                return
            _send(send, _DONE, number, result)


def _send(fd: int, kind: int, number: int, payload: bytes) -> None:
    times = os.times()
    view = memoryview(_HEAD.pack(kind, number, len(payload), times.user + times.system)
                      + payload)
    while view:
        view = view[os.write(fd, view):]


def _wait(state: _Run[T]) -> None:
    """Wait for records (or a deadline), then handle what came and who overran."""
    now = time.monotonic()
    busy = [c.check for c in state.children.values() if c.current >= 0]
    wait = None if state.timeout <= 0 or not busy else max(0.0, min(busy) - now)
    pipes = {c.pipe: c for c in state.children.values()}
    ready, _, _ = select.select(list(pipes), [], [], wait)
    for pipe in ready:
        child = pipes[pipe]
        chunk = os.read(pipe, 1 << 16)
        if chunk:
            child.buffer += chunk
            _records(state, child)
        else:
            _lost(state, child, Overrun(state.timeout, crashed=_exit_reason(child.pid)))
    if state.timeout > 0:
        now = time.monotonic()
        for child in list(state.children.values()):
            if child.current >= 0 and now >= child.check:
                _judge(state, child, now)


def _judge(state: _Run[T], child: _Child, now: float) -> None:
    """Kill a child whose task used up its CPU budget (or far more wall time), or say
    when to look again: when the task could have used the budget at the earliest."""
    used = _cpu_of(child.pid)
    if used is None or used - child.cpu >= state.timeout \
            or now - child.since >= state.timeout * WALL_FACTOR:
        os.kill(child.pid, signal.SIGKILL)
        _lost(state, child, Overrun(state.timeout))
    else:
        child.check = now + max(0.05, state.timeout - (used - child.cpu))


def _cpu_of(pid: int) -> float | None:
    """A process's user + system CPU seconds (Linux ``/proc``), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime: fields 14 and 15


def _records(state: _Run[T], child: _Child) -> None:
    """Handle every whole record in the child's buffer."""
    data, at = child.buffer, 0
    while at + _HEAD.size <= len(data):
        kind, number, length, cpu = _HEAD.unpack_from(data, at)
        if at + _HEAD.size + length > len(data):
            break
        payload = bytes(data[at + _HEAD.size:at + _HEAD.size + length])
        at += _HEAD.size + length
        if kind == _TOOK:
            state.queued -= 1
            child.current, child.stop = _RANGE.unpack(payload)
        elif kind == _DONE:
            state.results[number] = pickle.loads(payload)
            child.current = number + 1 if number + 1 < child.stop else -1
        else:
            raise pickle.loads(payload)
        child.since, child.cpu = time.monotonic(), cpu
        child.check = child.since + state.timeout
    del data[:at]


def _lost(state: _Run[T], child: _Child, overrun: Overrun) -> None:
    """A child killed or dead: its task overran, the rest of its range goes back."""
    del state.children[child.pid]
    os.close(child.pipe)
    _reap(child.pid)
    if child.current >= 0:
        state.results[child.current] = overrun
        if child.current + 1 < child.stop:
            os.write(state.feed, _RANGE.pack(child.current + 1, child.stop))
            state.queued += 1
    if state.queued > 0:
        _spawn(state)


def _exit_reason(pid: int) -> str:
    """Why a child that closed its pipe ended (it is reaped here)."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return f"the parse was killed by signal {os.WTERMSIG(status)}"
    return f"the parse ended with status {os.waitstatus_to_exitcode(status)}"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # already reaped by _exit_reason
        os.waitpid(pid, 0)


def _end(state: _Run[T]) -> None:
    """Close the queue (idle children leave), kill any still working, reap them all."""
    os.close(state.feed)
    os.close(state.queue)
    for child in state.children.values():
        if child.current >= 0:
            os.kill(child.pid, signal.SIGKILL)
        os.close(child.pipe)
        _reap(child.pid)
    state.children.clear()
