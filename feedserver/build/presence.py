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

A long-lived build in a process too big to fork for it (:mod:`feedserver.build.forkcost`)
hands the check to a helper program instead (:mod:`feedserver.build.helper`,
:class:`PresenceWork`): it is told, when the build starts, which manifest is live (its
file's stamp) and answers with the paths it found missing.  It reads the file when it
holds no other; after each publish the build tells it which entries changed (:func:`tell`),
so it does not read 50 MB again for a one-file build.  An answer about another manifest,
or none, and the check is made here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from feedserver.build import heap
from feedserver.build.forks import write_all
from feedserver.build.helper import Helper, HelperGone
from feedserver.core.layout import MANIFEST
from feedserver.publish.manifest import Stamp, load_manifest, stamp_of
from feedserver.publish.output import PublishResult, on_disk

FORK_FROM = 5_000  # published paths: below this the checks run here
STRETCH = 1_024  # paths the child checks between two reports (a few milliseconds)
_HERE = 512  # paths this process checks between two looks at the child's reports
_HEAD = struct.Struct("<II")  # a report: paths checked so far, how many missing follow
HELPER_WAIT = 60.0  # seconds a build waits for the helper's answer before checking here
# Seconds after which a folder's change time is trusted to change again with its next
# change (file systems with 1 or 2 s timestamps included): see PresenceWork.
SETTLED = 3.0
__all__ = ["Presence", "PresenceWork", "tell"]
Entries = list[tuple[str, dict[str, Any]]]


def _lacking(root: str, entries: Entries, start: int, end: int) -> list[int]:
    """The positions in ``entries[start:end]`` whose file or a listed body is not on disk."""
    return [at for at in range(start, end) if not on_disk(root, *entries[at])]


class Presence:
    """The missing published files of one build, found by a fork and by this process
    (see the module)."""

    def __init__(self, root: str, files: Mapping[str, dict[str, Any]],
                 helper: Helper | None = None, stamp: Stamp = None) -> None:
        """Start checking ``files`` (the manifest's) under ``root``: in a fork, or by
        ``helper`` when there is one and ``stamp`` says which manifest file ``files``
        were read from."""
        self.root = root
        self.files = files
        self.entries: Entries = []  # the one order a fork and this process go by
        self.child: tuple[int, int] | None = None  # (pid, read end of its pipe)
        self.helped: tuple[Helper, int, Stamp] | None = None  # (helper, request, stamp)
        self.found: frozenset[str] | None = None
        if len(files) < FORK_FROM:
            return
        if helper is not None and stamp is not None:
            with contextlib.suppress(HelperGone):
                self.helped = (helper, helper.ask(("check", root, stamp)), stamp)
                return
        self.entries = list(files.items())
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
        if self.found is None and self.helped is not None:
            self.found = self._helped(*self.helped)
            self.helped = None
        if self.found is None:
            if self.child is not None:
                self.found = self._shared()
            else:  # a small output, no fork, or no answer from the helper
                self.entries = self.entries or list(self.files.items())
                lost = _lacking(self.root, self.entries, 0, len(self.entries))
                self.found = frozenset(self.entries[at][0] for at in lost)
        return self.found

    def _helped(self, helper: Helper, request: int, stamp: Stamp) -> frozenset[str] | None:
        """The helper's answer, if it is about the manifest ``files`` came from."""
        try:
            reply = helper.answer(request, HELPER_WAIT)
        except HelperGone:
            return None
        if not (isinstance(reply, tuple) and reply[:2] == ("missing", stamp)):
            return None
        return frozenset(path for path in reply[2] if path in self.files)

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


def tell(helper: Helper, root: str, was: Stamp, live: tuple[Stamp, dict[str, Any]],
         published: PublishResult) -> None:
    """Tell a running presence helper what a publish changed: the manifest it holds
    (stamped ``was``) became ``live`` by the entries ``published`` set and removed.  It
    applies that, or reads the new file when it does not hold that one, before the next
    build asks (the answer is not waited for)."""
    stamp, manifest = live
    if stamp is None or helper.process is None:
        return
    files = manifest["files"]
    entered = {path: _checked(files[path]) for path in published.entered if path in files}
    with contextlib.suppress(HelperGone):
        helper.ask(("update", root, was, stamp, entered, published.removed, len(files)))


def _checked(entry: dict[str, Any]) -> dict[str, Any]:
    """What :func:`on_disk` reads of a manifest entry: the encodings."""
    return {"encodings": entry["encodings"]} if entry.get("encodings") else {}


class PresenceWork:
    """The check as the helper program makes it (:mod:`feedserver.build.helper`): the
    entries of the manifest file with the stamp it is asked about, read by itself once
    and then kept up to date by what each publish tells it.

    It does not stat every file every time.  A folder whose files were all found is
    remembered by its inode and change time (``ctime``: any entry added, removed or
    renamed in it changes it, and no program can set it back), taken before its files
    were looked at; while a later check finds the folder with that same stamp, its
    files are still there.  A stamp younger than :data:`SETTLED` seconds is not
    remembered: a file system counts time in ticks (a few milliseconds, or seconds on
    some), and a deletion in the same tick as the stamp would not change it.  What a
    publish enters or removes makes its folder checked again.  So a check stats the
    56,000 folders of 50,000 articles, and the files of the few folders that changed,
    instead of 274,000 files.
    """

    def __init__(self) -> None:
        self.stamp: Stamp = None
        self.folders: dict[str, dict[str, dict[str, Any]]] = {}  # folder -> name -> entry
        self.count = 0  # entries held
        self.seen: dict[str, tuple[int, int]] = {}  # folder -> (inode, ctime) all found in

    def handle(self, request: tuple[Any, ...]) -> tuple[Any, ...]:
        """``("check", root, stamp)`` -> ``("missing", stamp, paths)``, or
        ``("unknown", stamp)`` when the manifest file with that stamp is not there to
        read; ``("update", root, was, stamp, entered, removed, count)`` -> ``("held",
        stamp)``: the publish applied to the entries held for ``was`` (read anew when
        those are not what it holds, or the count differs)."""
        if request[0] == "update":
            _, root, was, stamp, entered, removed, count = request
            if self.stamp == was and was is not None:
                for path in removed:
                    self._file(path, None)
                for path, entry in entered.items():
                    self._file(path, entry)
                self.stamp = stamp if self.count == count else None
            if self.stamp != stamp:
                self._read(root, stamp)
            return ("held", self.stamp)
        _, root, stamp = request
        if stamp != self.stamp:
            self._read(root, stamp)
        if self.stamp != stamp:
            return ("unknown", stamp)
        return ("missing", stamp, self._missing(root))

    def _missing(self, root: str) -> list[str]:
        settled = (time.time() - SETTLED) * 1e9
        lost: list[str] = []
        for folder, names in self.folders.items():
            where = f"{root}/{folder}" if folder else root
            prefix = f"{folder}/" if folder else ""
            try:
                info = os.stat(where)
            except OSError:
                info = None
            stamp = (info.st_ino, info.st_ctime_ns) if info is not None else None
            if stamp is not None and self.seen.get(folder) == stamp:
                continue  # nothing in it changed since all its files were found
            self.seen.pop(folder, None)
            gone = [prefix + name for name, entry in names.items()
                    if not on_disk(root, prefix + name, entry)]
            lost += gone
            if stamp is not None and not gone and stamp[1] < settled:
                self.seen[folder] = stamp
        return lost

    def _file(self, path: str, entry: dict[str, Any] | None) -> None:
        """Enter (``entry``) or remove (None) one path; its folder is checked anew."""
        folder, _, name = path.rpartition("/")
        self.seen.pop(folder, None)
        names = self.folders.setdefault(folder, {})
        self.count -= name in names
        if entry is None:
            names.pop(name, None)
            if not names:
                del self.folders[folder]
        else:
            names[name] = entry
            self.count += 1

    def _read(self, root: str, stamp: Stamp) -> None:
        path = str(Path(root) / MANIFEST)
        self.stamp, self.folders, self.seen, self.count = None, {}, {}, 0
        if stamp is None or stamp_of(path) != stamp:
            return
        files = load_manifest(Path(root))["files"]
        if stamp_of(path) != stamp:  # replaced while it was read
            return
        for name, entry in files.items():
            self._file(name, _checked(entry))
        self.stamp = stamp
