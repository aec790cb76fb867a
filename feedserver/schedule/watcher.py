"""File-system events for the scheduler: wake the job early, and know when a file is whole.

Two jobs, kept apart:

- :class:`Writes` remembers what the events said about each article file
  (who has it open, its size and mtime when a writer closed it or renamed it
  into place) and turns that into the *hold rule* the build applies to every
  changed file (:meth:`Writes.rule`).  It is plain data with a lock, so the
  job-level tests drive it without a real observer.
- :class:`Watcher` is the watchdog observer on the seeds folder that feeds
  :class:`Writes` and calls ``wake`` (debounced by the scheduler).

The hold rule, for a file whose size or mtime changed since the last build:

1. it is whole if a writer closed it (inotify ``IN_CLOSE_WRITE``, watchdog's
   ``FileClosedEvent``) or renamed it into place and its size and mtime are
   still what they were then: a normal save is published at once;
2. otherwise, where the platform reports opens and closes (Linux), it waits
   while anyone has it open: a slow writer that pauses for seconds with the
   file open is never published half-way (after ``STALE_OPEN`` seconds without
   a write the file is taken as finished: a lost close event must not hold it
   forever);
3. otherwise it waits until it has been left alone for ``settle`` seconds
   (its mtime is that old): the rule on platforms without close events, for
   changes made while nothing was watching, and for a bare ``touch``.

A held file keeps its last good version (a new one is not published yet);
the scheduler looks again when the hold can end (``retry_at``) or when the
next event arrives.  Where close events exist, a changed file the events
call whole is also not read while the kernel says a process has it open for
writing (:func:`open_for_writing`): that covers a writer that opened it before
the watcher started, and events handled out of order.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from feedserver.build.scan import ScannedFile, is_article_path, is_candidate
from feedserver.core.media import media_type

log = logging.getLogger(__name__)

SETTLE = 2.0  # seconds a change must rest when no close event vouches for it
SKEW = 60.0  # an mtime further ahead than this is another machine's clock: do not wait for it
STALE_OPEN = 60.0  # open but unwritten this long: taken as finished (a close event was lost)
MOVE_MEMORY = 600.0  # seconds a seen move is offered to builds (the ledger uses it once)
FileStamp = tuple[int, int]  # (size, mtime_ns)


@dataclass
class _FileState:
    opens: int = 0
    whole: FileStamp | None = None


@dataclass
class HoldRule:
    """The hold rule for one build at ``now``; records what it held and until when."""

    writes: Writes
    now: datetime
    held: list[str] = field(default_factory=list)
    retry_at: datetime | None = None

    _writing: set[str] | None = field(default=None, init=False, repr=False)

    def __call__(self, entry: ScannedFile) -> bool:
        wait = self.writes.wait_for(entry, self.now)
        if wait is None and self.writes.close_events \
                and self.now.timestamp() - entry.mtime_ns / 1e9 < STALE_OPEN:
            if self._writing is None:  # once per build, only if a changed file is due
                self._writing = open_for_writing()
            if entry.abspath in self._writing:
                wait = self.writes.settle  # its close will wake the job
        if wait is None:
            return False
        self.held.append(entry.path)
        when = self.now + timedelta(seconds=wait)
        self.retry_at = min(self.retry_at or when, when)
        return True


class Writes:
    """What the events said about article files being written (thread-safe)."""

    def __init__(self, close_events: bool, settle: float = SETTLE) -> None:
        self.close_events = close_events
        self.settle = settle
        self._lock = threading.Lock()
        self._files: dict[str, _FileState] = {}
        self._moves: dict[str, tuple[str, float]] = {}  # dest -> (source, when)
        self._changed: set[str] = set()  # article paths named by events since changes()
        self._rescan = True  # something events cannot describe happened: scan it all
        self.watching = False  # set by the Watcher while its observer runs

    def touched(self, path: str) -> None:
        """An event named this article path: the next build stats it again."""
        with self._lock:
            self._changed.add(path)

    def rescan(self) -> None:
        """A folder changed, or events may have been missed: the next build scans it all."""
        with self._lock:
            self._rescan = True

    def changes(self) -> set[str] | None:
        """The article paths events named since the last call, or None when only a full
        scan can tell (no watcher running, a folder event, a restart)."""
        with self._lock:
            named, self._changed = self._changed, set()
            full, self._rescan = self._rescan or not self.watching, False
        return None if full else named

    def rule(self, now: datetime) -> HoldRule:
        """A fresh hold rule for a build at ``now``."""
        return HoldRule(self, now)

    def opened(self, path: str) -> None:
        with self._lock:
            self._files.setdefault(path, _FileState()).opens += 1

    def closed(self, path: str, whole: FileStamp | None, wrote: bool) -> None:
        """A close; ``whole`` is the file's (size, mtime_ns) when a writer closed it.

        A writer's close also clears the count of opens: one left over from a
        reader that held the old file of an editor's save would otherwise
        hold every later change that comes without a close.
        """
        with self._lock:
            state = self._files.setdefault(path, _FileState())
            state.opens = 0 if wrote else max(0, state.opens - 1)
            if whole is not None:
                state.whole = whole
            if state.opens == 0 and state.whole is None:
                del self._files[path]  # nothing to remember (our own reads end here)

    def renamed_in(self, path: str, whole: FileStamp | None) -> None:
        """A file renamed into place is whole (the writer finished it elsewhere)."""
        with self._lock:
            self._files[path] = _FileState(whole=whole)

    def forget(self, path: str) -> None:
        with self._lock:
            self._files.pop(path, None)

    def moved(self, src: str, dest: str, when: float) -> None:
        """Remember that the article at ``src`` now lives at ``dest``.

        Each hop is kept (not collapsed to the first source): a build may have
        seen the article at any path of a chain of renames.
        """
        with self._lock:
            self._moves[dest] = (src, when)

    def moves(self, now: float) -> dict[str, str]:
        """Recent moves, dest -> source: a move plus an edit keeps the article's id."""
        with self._lock:
            for dest in [d for d, (_, t) in self._moves.items() if now - t > MOVE_MEMORY]:
                del self._moves[dest]
            return {dest: src for dest, (src, _) in self._moves.items()}

    def wait_for(self, entry: ScannedFile, now: datetime) -> float | None:
        """Seconds to wait before ``entry`` may be read, or None if it is whole now."""
        age = now.timestamp() - entry.mtime_ns / 1e9
        with self._lock:
            state = self._files.get(entry.path)
            if state is not None and state.whole == (entry.size, entry.mtime_ns):
                return None
            if self.close_events and state is not None and state.opens > 0 \
                    and age < STALE_OPEN:
                return self.settle  # a close will wake the job; look again anyway
        if -SKEW < age < self.settle:
            return self.settle - age + 0.05
        return None


def open_for_writing() -> set[str]:
    """Article files some process has open for writing right now (Linux: /proc).

    The events cannot tell about a writer that opened its file before the
    watcher started, nor about an open whose event came after a late move
    event (watchdog delays moves; the move's snapshot, taken when it is
    handled, may already be the rewrite's first half).  The kernel can: this
    asks it, once per build that has a changed file to read (cheap: see
    benchmarks/README.md).  Only processes we may inspect are seen (our own user,
    or all as root); elsewhere the events and the settle time still apply.
    """
    found: set[str] = set()
    for pid in (p for p in _listdir("/proc") if p.isdigit()):
        for fd in _listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if not is_candidate(os.path.basename(target)):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as info:
                    flags = int(info.read().split("flags:", 1)[1].split()[0], 8)
            except (OSError, IndexError, ValueError):
                continue  # closed or gone meanwhile
            if flags & (os.O_WRONLY | os.O_RDWR):
                found.add(target)
    return found


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _snapshot(abspath: str) -> FileStamp | None:
    try:
        info = os.stat(abspath)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


class _Handler(FileSystemEventHandler):
    """Turns watchdog events into :class:`Writes` updates and wake-ups."""

    def __init__(self, root: str, writes: Writes, wake: Callable[[str], None]) -> None:
        self.root = root
        self.writes = writes
        self.wake = wake

    def _relative(self, path: str | bytes) -> str | None:
        """The seeds-relative path, or None outside the folder or in a hidden folder."""
        path = os.fsdecode(path)
        if not path:
            return None
        rel = os.path.relpath(path, self.root).replace(os.sep, "/")
        if rel == ".." or rel.startswith("../") or \
                any(p.startswith(".") for p in rel.split("/")[:-1]):
            return None
        return rel

    def _article(self, path: str | bytes) -> str | None:
        """The seeds-relative path the scan would use, or None if the scan skips it."""
        rel = self._relative(path)
        return rel if rel is not None and is_article_path(rel) else None

    def _media(self, path: str | bytes) -> str | None:
        """The seeds-relative path of a media file the build publishes, or None."""
        rel = self._relative(path) if path else None
        name = rel.rsplit("/", 1)[-1] if rel is not None else ""
        return rel if rel is not None and not name.startswith(".") and media_type(name) \
            else None

    def _folder(self, path: str | bytes) -> str | None:
        rel = self._relative(path)
        return rel if rel is not None and not rel.rsplit("/", 1)[-1].startswith(".") else None

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            folder = self._folder(event.src_path) or \
                self._folder(getattr(event, "dest_path", "") or "")
            if folder is not None and \
                    isinstance(event, DirCreatedEvent | DirDeletedEvent | DirMovedEvent):
                self.writes.rescan()
                self.wake(f"folder {folder} changed")
            return
        if isinstance(event, _MEDIA_EVENTS):  # a picture or sound written, added, removed
            media = self._media(event.src_path) or \
                self._media(getattr(event, "dest_path", "") or "")
            if media is not None:  # the media files are walked on a full scan only
                self.writes.rescan()
                self.wake(f"{media} changed")
                return
        src = self._article(event.src_path)
        if src is not None and not isinstance(event, FileOpenedEvent | FileClosedNoWriteEvent):
            self.writes.touched(src)
        if isinstance(event, FileMovedEvent):
            self._moved(src, self._article(event.dest_path), os.fsdecode(event.dest_path))
        elif src is None:
            return
        elif isinstance(event, FileOpenedEvent):
            self.writes.opened(src)
        elif isinstance(event, FileClosedNoWriteEvent):
            self.writes.closed(src, None, wrote=False)
        elif isinstance(event, FileClosedEvent):
            self.writes.closed(src, _snapshot(os.fsdecode(event.src_path)), wrote=True)
            self.wake(f"{src} written")
        elif isinstance(event, FileDeletedEvent):
            self.writes.forget(src)
            self.wake(f"{src} deleted")
        elif isinstance(event, FileCreatedEvent | FileModifiedEvent):
            self.wake(f"{src} changed")

    def _moved(self, src: str | None, dest: str | None, dest_abs: str) -> None:
        if src is not None:
            self.writes.forget(src)
        if src is not None and dest is not None:
            self.writes.moved(src, dest, time.time())
        if dest is not None:
            self.writes.touched(dest)
            self.writes.renamed_in(dest, _snapshot(dest_abs))
        if src is not None or dest is not None:
            self.wake(f"{src or dest} moved")


# The events that change a media file's bytes or presence (not opens, not reads).
_MEDIA_EVENTS = (FileClosedEvent, FileDeletedEvent, FileMovedEvent, FileCreatedEvent,
                 FileModifiedEvent)


def _identity(folder: str) -> tuple[int, int] | None:
    """(device, inode) of a folder, or None if it is not one."""
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


def _observer() -> tuple[BaseObserver, bool]:
    """The platform's observer, and whether it reports opens and closes (inotify)."""
    try:
        from watchdog.observers.inotify import InotifyObserver
    except ImportError:  # not Linux
        return Observer(), False
    return InotifyObserver(generate_full_events=True), True


def _filter(close_events: bool) -> list[type[FileSystemEvent]]:
    kinds: list[type[FileSystemEvent]] = [
        FileCreatedEvent, FileDeletedEvent, FileMovedEvent,
        DirCreatedEvent, DirDeletedEvent, DirMovedEvent]
    if close_events:  # writes are reported by their close; IN_MODIFY would only add noise
        return [*kinds, FileOpenedEvent, FileClosedEvent, FileClosedNoWriteEvent]
    return [*kinds, FileModifiedEvent]


class Watcher:
    """A watchdog observer on the seeds folder, feeding ``writes`` and calling ``wake``."""

    def __init__(self, seeds_dir: str | Path, writes: Writes, wake: Callable[[str], None],
                 observer: BaseObserver | None = None) -> None:
        self.root = os.path.realpath(seeds_dir)
        self.writes = writes
        self.wake = wake
        self._observer = observer
        self._started = False
        self._watched: tuple[int, int] | None = None

    @classmethod
    def for_platform(cls, seeds_dir: str | Path, wake: Callable[[str], None],
                     settle: float = SETTLE) -> Watcher:
        """A watcher with the best observer here and a :class:`Writes` to match."""
        observer, close_events = _observer()
        return cls(seeds_dir, Writes(close_events, settle), wake, observer)

    def start(self) -> bool:
        """Start watching; False (logged) when events are unavailable: the interval scan stays."""
        if self._observer is None:
            self._observer = Observer()
        handler = _Handler(self.root, self.writes, self.wake)
        self._watched = _identity(self.root)
        try:
            self._observer.schedule(handler, self.root, recursive=True,
                                    event_filter=_filter(self.writes.close_events))
            self._observer.start()
        except OSError as exc:
            log.warning("cannot watch %s (%s); scanning every refresh_interval only",
                        self.root, exc.strerror or exc)
            self.writes.close_events = False
            self.writes.watching = False
            return False
        self._started = True
        self.writes.watching = True
        self.writes.rescan()  # what changed before the observer ran is not in any event
        return True

    def revive(self) -> bool:
        """Watch again if seeds/ was removed or replaced (the observer watches an inode)."""
        if not self._started or self._observer is None:
            return False
        identity = _identity(self.root)
        if identity is None or (identity == self._watched and self._observer.is_alive()):
            return False
        self.stop()
        self._observer, _ = _observer()
        return self.start()

    def stop(self) -> None:
        self.writes.watching = False
        if self._observer is not None and self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=5)
