"""Which published files are missing from the output folder, looked for beside the build.

A build republishes a file whose bytes would not change when the file, or one of the
compressed bodies its manifest entry lists, is gone from disk (deleted by hand, a
CDN's ``gzip_static`` copy lost): :func:`feedserver.publish.output.on_disk`.  That is
one ``stat`` per published file and body: 274,000 at 50,000 articles, a second of
every build, even one that changes nothing, in the same process that assembles the site.

:class:`Presence` does those same checks in one bare fork started at the beginning of
a build, while this process gathers and assembles; the build asks for the answer
(:meth:`Presence.missing`) only when it decides what is fresh.  Nothing is trusted
that was not checked: the answer is every manifest path whose file or a listed body
was absent when the child looked, after the last publish (one build at a time holds
the output folder).  A small output is checked here (a fork costs more than a few
thousand stats), and so is everything when the fork fails or the child dies or goes
silent: the answer is the same, only slower.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import Any

from feedserver.build import heap
from feedserver.build.forks import drained, write_all
from feedserver.publish.output import on_disk

FORK_FROM = 5_000  # published paths: below this the checks run here
__all__ = ["Presence"]


def absent(root: str, files: Mapping[str, dict[str, Any]]) -> frozenset[str]:
    """The manifest paths whose file or a compressed body it lists is not on disk."""
    return frozenset(path for path, entry in files.items() if not on_disk(root, path, entry))


class Presence:
    """The missing published files of one build, found by a fork (see the module)."""

    def __init__(self, root: str, files: Mapping[str, dict[str, Any]]) -> None:
        self.root, self.files = root, files
        self.child: tuple[int, int] | None = None  # (pid, read end of its pipe)
        self.found: frozenset[str] | None = None
        if files and len(files) >= FORK_FROM:
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
                write_all(send, pickle.dumps(sorted(absent(self.root, self.files))))
                status = 0
            finally:
                os._exit(status)  # no atexit handlers, no flush of the parent's buffers
        os.close(send)
        return pid, back

    def missing(self) -> frozenset[str]:
        """The published paths not (wholly) on disk: the child's answer, or the checks
        made here when it has none."""
        if self.found is None:
            found = self._received() if self.child is not None else None
            self.found = found if found is not None else absent(self.root, self.files)
        return self.found

    def _received(self) -> frozenset[str] | None:
        """What the child sent, or None if it sent nothing whole (it failed, or was found
        stuck and killed: :func:`feedserver.build.forks.drained`)."""
        assert self.child is not None
        try:
            data = drained(*self.child)
        finally:
            self.close()
        try:
            return frozenset(pickle.loads(data)) if data else None
        except (pickle.UnpicklingError, EOFError, ValueError):
            return None  # cut short: the checks run here

    def close(self) -> None:
        """Reap the child (a build that raises before asking leaves none behind)."""
        if self.child is not None:
            pid, pipe = self.child
            self.child = None
            os.close(pipe)  # a child still writing gets EPIPE and leaves
            os.waitpid(pid, 0)
            heap.release()
