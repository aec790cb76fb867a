"""Helper programs for a big long-lived build: the work it would otherwise fork for.

A one-file build in a scheduler holding a large site forks three times: the presence
check (:mod:`feedserver.build.presence`), the parse of the changed file under its
time budget (:mod:`feedserver.build.timebox`) and the render of its few channels.
Each fork costs such a process a page fault on nearly every page it writes afterwards
(:mod:`feedserver.build.forkcost`), more than the work the fork takes off it.  So
when :func:`forkcost.costly` says so, a long-lived build hands the first two to
helper programs instead: new Python processes (started with ``subprocess``, which
uses ``vfork``: nothing of the build's heap is shared), one per kind of work, started
once and kept for the builds that follow.  A helper runs the same code the forks
would: the presence check over the manifest as published (it reads the file once,
then applies what each publish tells it changed), and the parse through the same
:mod:`~feedserver.build.timebox`, whose children it forks from its own small heap, so
a parse stuck in a regular expression is still killed at its budget.  The parse
helper is started when a build is done (the first that finds the process too big to
fork), not by the next changed file (:func:`feedserver.build.sources.ready`): it loads
the language model and the gazetteer then, and that edit's build does not wait for them.

A helper answers one request at a time, in order, over a pair of pipes (a pickle
with its length before it; stdout stays free for what the code it runs prints).  It
leaves when its request pipe ends: when the build's process ends, however it ends (at
once when idle, else once its current request is done, which its own time budgets
bound: a parse is killed at ``parse_timeout``, and its children with it).  It stays in
the build's process group, so a stop signal sent to the group reaches it too.
Anything wrong with a helper (it died, it is slow past its deadline, its answer is
about another manifest) makes the build do that work the way it did before, in
this process or in a fork, so a helper can make a build slower but never wrong.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import struct
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

from feedserver.build.forks import write_all

_LENGTH = struct.Struct("<Q")
KINDS = ("presence", "parse")


class HelperGone(Exception):
    """The helper died, broke the protocol or missed its deadline (it is stopped)."""


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise HelperGone("no answer before its deadline")
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise HelperGone("its pipe ended")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def send(fd: int, message: object) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    write_all(fd, _LENGTH.pack(len(body)) + body)


def receive(fd: int, deadline: float | None = None) -> Any:
    (size,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size, deadline))
    return pickle.loads(_read_exactly(fd, size, deadline))


def _stop(process: subprocess.Popen[bytes], fds: tuple[int, int]) -> None:
    """Close the pipes (the helper leaves on its own), then make sure it has gone."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Helper:
    """One helper program (``kind``: one of :data:`KINDS`), started on first use.

    :meth:`ask` sends a request and returns its tag; :meth:`answer` waits for that
    request's answer (the answers to earlier requests not waited for are dropped on
    the way).  Either raises :class:`HelperGone`, and the next :meth:`ask` starts a
    new helper."""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"no helper for {kind!r}")
        self.kind = kind
        self.process: subprocess.Popen[bytes] | None = None
        self.fds: tuple[int, int] = (-1, -1)  # (to it, from it)
        self.sent = 0  # tags of the requests sent
        self.answered = 0  # tag of the last answer read
        self.memo: dict[str, Any] = {}  # what the running helper was told (emptied anew)
        self._finalizer: Callable[[], None] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def _start(self) -> None:
        to_it, its_input = os.pipe()
        its_output, from_it = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "feedserver.build.helper", self.kind,
                 str(to_it), str(from_it)],
                pass_fds=(to_it, from_it), stdin=subprocess.DEVNULL, close_fds=True)
        finally:
            os.close(to_it)
            os.close(from_it)
        self.fds = (its_input, its_output)
        self.sent = self.answered = 0
        self.memo = {}
        self._finalizer = weakref.finalize(self, _stop, self.process, self.fds)

    @property
    def alive(self) -> bool:
        """Whether its program runs now (started, not ended)."""
        return self.process is not None and self.process.poll() is None

    def running(self) -> Helper:
        """Start the helper unless it runs (what it was told is in :attr:`memo`)."""
        if not self.alive:
            self.close()
            self._start()
        return self

    def ask(self, request: tuple[Any, ...]) -> int:
        """Send ``request``; its tag, for :meth:`answer`."""
        self.running()
        try:
            send(self.fds[0], request)
        except OSError as exc:
            self.close()
            raise HelperGone(f"cannot write to it: {exc}") from None
        self.sent += 1
        return self.sent

    def answer(self, tag: int, timeout: float) -> Any:
        """The answer to the request tagged ``tag``, waiting at most ``timeout`` s."""
        if self.process is None or not self.answered < tag <= self.sent:
            raise HelperGone("no such request outstanding")
        deadline = time.monotonic() + timeout
        try:
            while True:
                reply = receive(self.fds[1], deadline)
                self.answered += 1
                if self.answered == tag:
                    return reply
        except (HelperGone, OSError, pickle.UnpicklingError, EOFError) as exc:
            self.close()
            raise HelperGone(str(exc)) from None

    def close(self) -> None:
        """Stop the helper, if one runs."""
        if self._finalizer is not None:
            self._finalizer()  # runs _stop once
            self._finalizer = None
        self.process = None
        self.fds = (-1, -1)


def main(argv: list[str]) -> int:
    """The helper program: answer requests until the request pipe ends."""
    kind, inbound, outbound = argv[0], int(argv[1]), int(argv[2])
    if kind == "presence":
        from feedserver.build.presence import PresenceWork
        handle: Callable[[tuple[Any, ...]], Any] = PresenceWork().handle
    elif kind == "parse":
        from feedserver.build.sources import ParseWork
        handle = ParseWork().handle
    else:
        return 2
    while True:
        try:
            request = receive(inbound)
        except HelperGone:
            return 0  # the build's process is gone, or done with this helper
        try:
            reply = handle(request)
        except Exception as exc:  # the build does this work itself: say why, go on
            reply = ("failed", f"{type(exc).__name__}: {exc}")
        try:
            send(outbound, reply)
        except OSError:
            return 0  # nobody is listening any more


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
