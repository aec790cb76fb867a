"""The filesystem edge on the way in: find article files and read them safely.

The scan only stats; reading happens later and only for new or changed files.
It skips hidden files, editor leftovers and anything that is not a regular
file (a FIFO must never block a scan).  It follows no symbolic link: one that
leaves the seeds folder is reported, one inside it is passed over (its target
is scanned on its own), a loop is reported.  Folders and files are opened
relative to their parent folder's descriptor with ``O_NOFOLLOW``, from the
seeds folder down, so a folder swapped for a link mid-scan is never followed.
Every unreadable file becomes a :class:`Problem` naming it.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from operator import attrgetter
from pathlib import Path

from feedserver.core.records import Problem, SourceFile
from feedserver.parse.article import SUFFIXES

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_NOT_A_FOLDER = {errno.ELOOP, errno.ENOTDIR, errno.ENOENT}
_EDITOR_JUNK = re.compile(r"(^\.|^#.*#$|~$|\.(swp|swo|swx|tmp|temp|part|partial|crdownload|bak)$)",
                          re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ScannedFile:
    """One candidate article file: where it is and what stat said."""

    path: str
    abspath: str
    size: int
    mtime_ns: int


def is_candidate(name: str) -> bool:
    """True for names that may hold an article (.txt/.md), not editor or hidden files."""
    dot = name.rfind(".")
    if dot <= 0 or name[dot:].lower() not in SUFFIXES:  # the cheap test first
        return False
    return not _EDITOR_JUNK.search(name)


def is_article_path(rel: str) -> bool:
    """True for a seeds-relative path whose name the scan would list: no hidden (or
    empty) folder on the way, a candidate file name.  The watcher filters its events
    with it, so the two agree."""
    *folders, name = rel.split("/")
    return all(part and not part.startswith(".") for part in folders) and is_candidate(name)


def _inside(root: str, target: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def list_files(seeds_dir: str | Path) -> tuple[list[ScannedFile], list[Problem]]:
    """Every candidate article under ``seeds_dir`` (in walk order), and problems met.

    ``os.scandir`` rather than ``os.walk`` + ``lstat``: the directory entry
    already says what is a folder or a link, and its cached ``lstat`` is the
    only syscall per file (half the time of a scan: benchmarks/README.md).  Each
    folder is listed through a descriptor opened from its parent's with
    ``O_NOFOLLOW``: a folder swapped for a link after it was listed is not
    entered (checking the path and then listing it would follow the link).
    """
    root = os.path.realpath(seeds_dir)
    entries: list[ScannedFile] = []
    problems: list[Problem] = []
    try:
        fd = os.open(root, _FOLDER)
    except OSError:
        return [], [Problem(str(seeds_dir), "seeds folder does not exist")]
    try:
        _walk(root, fd, "", entries, problems, str(seeds_dir))
    finally:
        os.close(fd)
    return entries, problems


def _walk(root: str, fd: int, rel: str, entries: list[ScannedFile], problems: list[Problem],
          shown: str) -> None:
    """Files of the folder open as ``fd`` (sorted) then its visible subfolders, as
    ``os.walk`` went."""
    try:
        with os.scandir(fd) as listing:
            found = sorted(listing, key=attrgetter("name"))
    except OSError as exc:
        problems.append(Problem(rel.rstrip("/") or shown, f"cannot read folder: {exc.strerror}"))
        return
    folders: list[os.DirEntry[int]] = []
    here = f"{root}/{rel}"
    for item in found:
        if _is_folder(item):  # a link to a folder is not followed (nor reported)
            if not item.name.startswith(".") and not item.is_symlink():
                folders.append(item)
        elif is_candidate(item.name):
            entry = _entry(root, here + item.name, rel + item.name, problems,
                           partial(item.stat, follow_symlinks=False))
            if entry is not None:
                entries.append(entry)
    for item in folders:
        try:
            sub = os.open(item.name, _FOLDER, dir_fd=fd)
        except OSError as exc:
            if exc.errno not in _NOT_A_FOLDER:  # else: now a link or gone, not entered
                problems.append(Problem(rel + item.name, f"cannot read folder: {exc.strerror}"))
            continue
        try:
            _walk(root, sub, f"{rel}{item.name}/", entries, problems, shown)
        finally:
            os.close(sub)


def _open_folder(root: str, folders: list[str]) -> int:
    """A descriptor of ``root/folders...``, each step opened ``O_NOFOLLOW`` from the one
    before: a component that is a link (now) raises ELOOP or ENOTDIR instead of being
    followed.  The caller closes it."""
    fd = os.open(root, _FOLDER)
    for name in folders:
        try:
            step = os.open(name, _FOLDER, dir_fd=fd)
        finally:
            os.close(fd)
        fd = step
    return fd


def _is_folder(item: os.DirEntry[str]) -> bool:
    try:
        return item.is_dir()
    except OSError:
        return False


def entry_at(seeds_dir: str | Path, rel: str) -> tuple[ScannedFile | None, list[Problem]]:
    """The entry a full scan would list for the seeds-relative ``rel``, if any.

    For builds told which paths changed (the watcher's events): the same rules
    as :func:`list_files` (hidden folders, names, links, regular files only)
    for one path, so a watched build and a full scan cannot disagree.  The
    folders on the way are opened ``O_NOFOLLOW`` one from the other, so one
    under a linked folder (now) is not listed.
    """
    root = os.path.realpath(seeds_dir)
    if not is_article_path(rel):
        return None, []
    *folders, name = rel.split("/")
    try:
        fd = _open_folder(root, folders)
    except OSError:
        return None, []  # under a linked folder (the scan does not enter it), or gone
    full = f"{root}/{rel}"
    problems: list[Problem] = []
    try:
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None, []  # gone: nothing to list, nothing to report
        except OSError:
            return _entry(root, full, rel, problems,
                          partial(os.stat, name, dir_fd=fd, follow_symlinks=False)), problems
        if stat.S_ISLNK(info.st_mode) and os.path.isdir(full):
            return None, []  # a link to a folder: the scan passes over it silently
        return _entry(root, full, rel, problems, lambda: info), problems
    finally:
        os.close(fd)


def _entry(root: str, full: str, rel: str, problems: list[Problem],
           lstat: Callable[[], os.stat_result]) -> ScannedFile | None:
    if not rel.isascii():
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(Problem(ascii(rel), "file name is not valid UTF-8; rename the file"))
            return None
    try:
        info = lstat()
        if stat.S_ISLNK(info.st_mode):
            target = os.path.realpath(full)
            if not _inside(root, target):
                problems.append(Problem(rel, "symbolic link out of the seeds folder; ignored"))
            else:
                os.stat(target)  # a loop raises here and is reported below
            # A link inside the folder points at a file the scan reads on its own:
            # following it too would publish the same article twice.
            return None
    except OSError as exc:
        problems.append(Problem(rel, f"cannot stat: {exc.strerror}"))
        return None
    if not stat.S_ISREG(info.st_mode):
        return None  # FIFOs, sockets, devices, folders named like articles: not articles
    return ScannedFile(rel, full, info.st_size, info.st_mtime_ns)


class ChangedWhileRead(OSError):
    """The file's size or modification time changed while it was read: a writer is at
    it, and what was read may be a mix of two versions."""


def read(entry: ScannedFile, limit: int) -> SourceFile:
    """:func:`read_stamped` without the stamp (for callers that only need the bytes)."""
    return read_stamped(entry, limit)[0]


def read_stamped(entry: ScannedFile, limit: int) -> tuple[SourceFile, tuple[int, int]]:
    """Read one file without following any link or blocking; raises OSError.

    Also returns the (size, mtime_ns) the bytes were read under, which may not be the
    scan's: a writer may have opened the file since (the caller asks its hold rule
    again).  A file whose stamp changes during the read raises
    :class:`ChangedWhileRead`: its bytes may be half of one version and half of another.

    The file is opened relative to its folder's descriptor, and that folder
    from the seeds folder's, each step ``O_NOFOLLOW``: no component of the
    path can have been swapped for a link to an outside folder since the scan
    (checking first and opening later is a race; this is one walk).  At most
    ``limit + 1`` bytes are read, so the parser can say the file is too large
    without the process holding a 50 MB file in memory.
    """
    *folders, name = entry.path.split("/")
    folder = _open_folder(entry.abspath[:len(entry.abspath) - len(entry.path) - 1], folders)
    try:
        fd = os.open(name, _FILE, dir_fd=folder)
    finally:
        os.close(folder)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{entry.path} is not a regular file")
        chunks, remaining = [], limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    stamp = (info.st_size, info.st_mtime_ns)
    if (after.st_size, after.st_mtime_ns) != stamp:
        raise ChangedWhileRead(f"{entry.path} changed while it was read")
    return SourceFile(entry.path, b"".join(chunks), info.st_mtime_ns / 1e9), stamp


@dataclass
class Listing:
    """A full scan kept by a long-lived process and patched path by path.

    The watcher names the article paths its events touched; re-stating those
    (:func:`entry_at`) instead of the whole folder is what keeps a one-file
    build of a large folder cheap.  Anything the events cannot describe (a
    folder created, moved or deleted; the watcher restarted; the periodic run)
    calls for a new :meth:`full` scan instead.
    """

    root: str
    entries: dict[str, ScannedFile]
    problems: list[Problem]

    @classmethod
    def full(cls, seeds_dir: str | Path) -> Listing:
        entries, problems = list_files(seeds_dir)
        return cls(os.path.realpath(seeds_dir), {e.path: e for e in entries}, problems)

    def patch(self, paths: Iterable[str]) -> None:
        """Re-stat ``paths`` (seeds-relative): new, changed, gone or now failing."""
        for rel in sorted(set(paths)):
            named = {rel, ascii(rel)}
            self.problems = [p for p in self.problems if p.where not in named]
            entry, found = entry_at(self.root, rel)
            self.problems += found
            if entry is None:
                self.entries.pop(rel, None)
            else:
                self.entries[rel] = entry

    def scanned(self) -> tuple[list[ScannedFile], list[Problem]]:
        """What :func:`list_files` would return now, given the events were all seen."""
        return list(self.entries.values()), list(self.problems)
