"""Which published files are missing from the output folder, looked for beside the build.

A build republishes a file whose bytes would not change when the file, or one of the
compressed bodies its manifest entry lists, is gone from disk (deleted by hand, a
CDN's ``gzip_static`` copy lost): :func:`feedserver.publish.output.on_disk`.  That is
one ``stat`` per published file and body: 274,000 at 50,000 articles, a second of
every build, even one that changes nothing, in the same process that assembles the site.

:class:`Presence` does those same checks in one bare fork started at the beginning of
a build, while this process gathers, assembles and renders what its signatures say is
stale; the build asks for the answer (:meth:`Presence.missing`) only before it publishes,
and leaves what it finds gone unsigned, for a build right after it to make
(:func:`feedserver.build.run.run_build`).  Files deleted by hand are rare, and waiting
for the answer before rendering had become the longest wait of a one-file build at
50,000 articles (benchmarks/README.md).  The child goes through
the manifest's paths from the first and reports each stretch it has checked as it goes
(:data:`STRETCH` paths: where it got to, and which of them are missing).  A build that
asks before the child is done does not wait: it checks from the last path backwards,
reading the child's reports between its own stretches, until the two meet; then the
child is stopped.  Nothing is trusted that was not checked: every path is looked at by
one of the two, after the last publish (one build at a time holds the output folder).
A small output is checked here (a fork costs more than a few thousand stats); a child
that fails to fork, dies or stalls only leaves more of the checks to this process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
from collections.abc import Mapping
from typing import Any

from feedserver.build import heap
from feedserver.build.forks import write_all
from feedserver.publish.output import on_disk

FORK_FROM = 5_000  # published paths: below this the checks run here
STRETCH = 1_024  # paths the child checks between two reports (a few milliseconds)
_HERE = 512  # paths this process checks between two looks at the child's reports
_HEAD = struct.Struct("<II")  # a report: paths checked so far, how many missing follow
__all__ = ["Presence"]
Entries = list[tuple[str, dict[str, Any]]]


def _lacking(root: str, entries: Entries, start: int, end: int) -> list[int]:
    """The positions in ``entries[start:end]`` whose file or a listed body is not on disk."""
    return [at for at in range(start, end) if not on_disk(root, *entries[at])]


class Presence:
    """The missing published files of one build, found by a fork and by this process
    (see the module)."""

    def __init__(self, root: str, files: Mapping[str, dict[str, Any]]) -> None:
        self.root = root
        self.entries: Entries = list(files.items())  # the one order both processes go by
        self.child: tuple[int, int] | None = None  # (pid, read end of its pipe)
        self.found: frozenset[str] | None = None
        if len(self.entries) >= FORK_FROM:
            try:
                self.child = self._fork()
            except OSError:
                self.child = None  # no fork (out of processes or memory): checked here

    def _fork(self) -> tuple[int, int]:
        back, send = os.pipe()
        # Frozen until the child is reaped (:meth:`close`): a collection in either process
        # would write to every object's header, and each page written is then copied.
        heap.hold()
        try:
            pid = os.fork()
        except BaseException:
            heap.release()
            os.close(back)
            os.close(send)
            raise
        if pid == 0:  # the child: never returns
            status = 1
            try:
                os.close(back)
                count = len(self.entries)
                for start in range(0, count, STRETCH):
                    end = min(count, start + STRETCH)
                    lost = _lacking(self.root, self.entries, start, end)
                    write_all(send, _HEAD.pack(end, len(lost))
                              + struct.pack(f"<{len(lost)}I", *lost))
                status = 0
            finally:
                os._exit(status)  # no atexit handlers, no flush of the parent's buffers
        os.close(send)
        os.set_blocking(back, False)
        return pid, back

    def missing(self) -> frozenset[str]:
        """The published paths not (wholly) on disk."""
        if self.found is None:
            if self.child is not None:
                self.found = self._shared()
            else:  # a small output, or no fork
                lost = _lacking(self.root, self.entries, 0, len(self.entries))
                self.found = frozenset(self.entries[at][0] for at in lost)
        return self.found

    def _shared(self) -> frozenset[str]:
        """The child's reports, and this process's own checks from the end until the
        two meet (all of them when the child sends nothing more)."""
        assert self.child is not None
        entries, pipe = self.entries, self.child[1]
        lost: list[int] = []
        reports = bytearray()
        checked, top = 0, len(entries)  # the child's [0, checked), this process's [top, end)
        listening = True
        try:
            while checked < top:
                if listening:
                    listening, checked = _read(pipe, reports, lost, checked)
                if checked >= top:
                    break
                low = max(checked, top - _HERE)
                lost += _lacking(self.root, entries, low, top)
                top = low
        finally:
            self.close()
        return frozenset(entries[at][0] for at in lost)

    def close(self) -> None:
        """Stop and reap the child (a build that raises before asking leaves none behind)."""
        if self.child is not None:
            pid, pipe = self.child
            self.child = None
            os.close(pipe)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # done or not, nothing more is wanted of it
            os.waitpid(pid, 0)
            heap.release()


def _read(pipe: int, reports: bytearray, lost: list[int], checked: int) -> tuple[bool, int]:
    """Take the whole reports waiting in ``pipe`` (never blocking): whether the child may
    send more, and how far it has checked."""
    listening = True
    while True:
        try:
            chunk = os.read(pipe, 1 << 16)
        except BlockingIOError:
            break
        if not chunk:
            listening = False  # done, or dead: what it sent whole stands
            break
        reports += chunk
    at = 0
    while at + _HEAD.size <= len(reports):
        end, count = _HEAD.unpack_from(reports, at)
        if at + _HEAD.size + 4 * count > len(reports):
            break  # the rest of this report is still on its way
        lost += struct.unpack_from(f"<{count}I", reports, at + _HEAD.size)
        checked = max(checked, end)
        at += _HEAD.size + 4 * count
    del reports[:at]
    return listening, checked
