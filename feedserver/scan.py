"""The filesystem edge on the way in: find article files and read them safely.

The scan only stats; reading happens later and only for new or changed files.
It skips hidden files, editor leftovers and anything that is not a regular
file (a FIFO must never block a scan).  It follows no symbolic link: one that
leaves the seeds folder is reported, one inside it is passed over (its target
is scanned on its own), a loop is reported.  Every unreadable file becomes a
:class:`Problem` naming it.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .articles import SUFFIXES
from .models import Problem, SourceFile

_EDITOR_JUNK = re.compile(r"(^\.|^#.*#$|~$|\.(swp|swo|swx|tmp|temp|part|partial|crdownload|bak)$)",
                          re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Entry:
    """One candidate article file: where it is and what stat said."""

    path: str
    abspath: str
    size: int
    mtime_ns: int


def is_candidate(name: str) -> bool:
    """True for names that may hold an article (.txt/.md), not editor or hidden files."""
    if os.path.splitext(name)[1].lower() not in SUFFIXES:  # the cheap test first
        return False
    return not _EDITOR_JUNK.search(name)


def _inside(root: str, target: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def list_files(seeds_dir: str | Path) -> tuple[list[Entry], list[Problem]]:
    """Every candidate article under ``seeds_dir`` (sorted), and problems met."""
    root = os.path.realpath(seeds_dir)
    entries: list[Entry] = []
    problems: list[Problem] = []
    if not os.path.isdir(root):
        return [], [Problem(str(seeds_dir), "seeds folder does not exist")]

    def on_error(exc: OSError) -> None:
        where = os.path.relpath(exc.filename, root) if exc.filename else str(seeds_dir)
        problems.append(Problem(where, f"cannot read folder: {exc.strerror}"))

    for folder, dirs, files in os.walk(root, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not is_candidate(name):
                continue
            entry = _entry(root, os.path.join(folder, name), problems)
            if entry is not None:
                entries.append(entry)
    return entries, problems


def _entry(root: str, full: str, problems: list[Problem]) -> Entry | None:
    prefix = root + os.sep  # os.walk yields paths under root: slicing is relpath, 10x cheaper
    rel = full[len(prefix):] if full.startswith(prefix) else os.path.relpath(full, root)
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        problems.append(Problem(ascii(rel), "file name is not valid UTF-8; rename the file"))
        return None
    rel = rel.replace(os.sep, "/")
    try:
        info = os.lstat(full)
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
    return Entry(rel, full, info.st_size, info.st_mtime_ns)


def read(entry: Entry, limit: int) -> SourceFile:
    """Read one file without following links or blocking; raises OSError.

    At most ``limit + 1`` bytes are read, so the parser can say the file is
    too large without the process holding a 50 MB file in memory.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(entry.abspath, flags)
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
    finally:
        os.close(fd)
    return SourceFile(entry.path, b"".join(chunks), info.st_mtime_ns / 1e9)
