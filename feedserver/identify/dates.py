"""Where an article's dates come from when its front matter gives none.

In this order (front matter always wins): the file name (``2026-10-02-solar-farm.md``,
the Jekyll convention), git when the seeds folder is inside a git work tree (the
first commit of the file for ``published``, the last for ``updated``, like Hugo's
``enableGitInfo``), and only then the ledger's first sight (the file's mtime when
the ledger first met it).  The ledger's times are local to one machine: a fresh
clone copies every file "now", so two clones of the same repository published
different dates (and bytes, and ETags).  The file name and the history are the same
in every clone.

The file-name rule is pure (:func:`name_date`, used by the core).  Git is I/O and
stays in the shell: :func:`git_dated` asks git once per build (``rev-parse HEAD``;
``git log`` for the whole folder only when HEAD moved; ``git diff`` only for files the
ledger saw change after their last commit, see :func:`suspects`) and hands the core
identities whose dates are git's, as plain values.  When the folder is not in a git
work tree, nothing is run at all.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

from feedserver.core.records import Identity

log = logging.getLogger(__name__)
Span = tuple[datetime, datetime]  # (first commit, last commit) of one path
_NAME_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})-")
GIT_TIMEOUT = 120.0
DIFF_PATHS = 200  # more suspects than this: one ``git diff`` of the whole folder
# Variables that would point git at another repository than the one holding the seeds.
_GIT_REDIRECTS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                  "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CEILING_DIRECTORIES",
                  "GIT_NAMESPACE", "GIT_COMMON_DIR")


def name_date(path: str) -> datetime | None:
    """The date a Jekyll-style file name starts with (midnight UTC), else None.

    Pure: only the last path component counts (``notes/2026-11-12-ports.md``),
    and an impossible date (``2026-13-40-x.md``) is no date.
    """
    name = path.rsplit("/", 1)[-1]
    found = _NAME_DATE.match(name)
    if found is None:
        return None
    try:
        day = date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return None
    return datetime.combine(day, time(0, 0), UTC)


def parse_log(output: bytes) -> dict[str, Span]:
    """Each path's (first, last) author date from ``git log -z --format=%x01%at
    --name-status -M --relative``, newest commit first.

    Renames are followed back (an article moved with ``git mv`` keeps the date it
    was first committed under its old name, as the ledger keeps its id), and a
    deletion does not cut the history: a file deleted and later re-created at the
    same path is the same article (the ledger's rule too).
    """
    spans: dict[str, list[int]] = {}
    alias: dict[str, str] = {}  # an older name -> the path it has at HEAD

    def record(path: str, stamp: int) -> None:
        key = alias.get(path, path)
        span = spans.get(key)
        if span is None:
            spans[key] = [stamp, stamp]
        else:
            span[0], span[1] = min(span[0], stamp), max(span[1], stamp)

    for commit in output.split(b"\x01")[1:]:
        head, _, rest = commit.partition(b"\0")
        stamp = int(head.strip() or b"0")
        tokens = rest.lstrip(b"\n").split(b"\0")
        at = 0
        while at < len(tokens) and tokens[at]:
            status = tokens[at].decode("ascii", "replace")
            if status[:1] in ("R", "C"):
                old, new = (t.decode("utf-8", "surrogateescape") for t in tokens[at + 1:at + 3])
                record(new, stamp)
                if status[0] == "R":
                    alias[old] = alias.get(new, new)
                at += 3
                continue
            if status[:1] != "D":
                record(tokens[at + 1].decode("utf-8", "surrogateescape"), stamp)
            at += 2
    return {path: (datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC))
            for path, (first, last) in spans.items()}


def overlay(identities: Mapping[str, Identity], spans: Mapping[str, Span],
            dirty: frozenset[str], made: dict[str, tuple[Identity, Span, bool, Identity]]
            ) -> dict[str, Identity]:
    """The ledger's identities with git's dates for every committed path (pure).

    ``first_seen`` becomes the first commit and ``changed`` the last, so an article
    committed once is never edited (``updated`` == ``published``).  A file with
    uncommitted changes (``dirty``) after the ledger saw an edit keeps the ledger's
    change time when it is later than the last commit.  ``made`` maps each path to
    the identity made last time from the same inputs, so a long-lived process hands
    the core the very same objects (its memo compares by identity first).
    """
    result = dict(identities)
    for path, ident in identities.items():
        span = spans.get(path)
        if span is None:
            continue
        edited = bool(dirty) and path in dirty and ident.changed != ident.first_seen
        kept = made.get(path)
        if kept is not None and kept[0] is ident and kept[1] is span and kept[2] is edited:
            result[path] = kept[3]
            continue
        first, last = span
        if edited:
            last = max(last, ident.changed.astimezone(UTC))
        dated = Identity(ident.id, ident.slug, first, last)
        made[path] = (ident, span, edited, dated)
        result[path] = dated
    return result


def work_tree(folder: Path) -> Path | None:
    """The git work tree holding ``folder``, found by looking for ``.git`` upwards
    (a few stats: no process is started for a folder outside git)."""
    try:
        here = folder.resolve()
    except OSError:
        return None
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


@dataclass
class GitDates:
    """What a long-lived process keeps between builds: the history read at ``head``
    (read again only when HEAD moves) and the identities made from it."""

    folder: str = ""
    head: str = ""
    spans: dict[str, Span] = field(default_factory=dict)
    made: dict[str, tuple[Identity, Span, bool, Identity]] = field(default_factory=dict)
    warned: bool = False


def _git(folder: str, *args: str) -> bytes:
    """Run one read-only git command in ``folder``; raises OSError/CalledProcessError."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REDIRECTS}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # never write the index from a build
    done = subprocess.run(
        ["git", "-c", "log.showSignature=false", "-c", "core.quotePath=false", *args],
        cwd=folder, env=env, stdin=subprocess.DEVNULL, capture_output=True,
        timeout=GIT_TIMEOUT, check=True)
    return done.stdout


def _history(folder: str, state: GitDates) -> dict[str, Span] | None:
    """Each committed path's span, the log re-read only when HEAD moved."""
    try:
        head = _git(folder, "rev-parse", "--verify", "-q", "HEAD").strip().decode()
    except subprocess.CalledProcessError as exc:
        if exc.returncode == 1 and not exc.stderr:
            return None  # a repository without commits yet: no history to date by
        raise
    if state.folder != folder or state.head != head:
        state.spans = parse_log(_git(folder, "log", "-z", "--format=%x01%at", "--name-status",
                                     "-M", "--relative", "--no-color", "--", "."))
        state.folder, state.head, state.made = folder, head, {}
    return state.spans


def suspects(identities: Mapping[str, Identity], spans: Mapping[str, Span]) -> list[str]:
    """Committed paths whose ledger change time is later than their last commit: the
    only ones whose uncommitted changes would change a date (a fresh clone has none,
    so it never asks ``git diff``)."""
    return sorted(path for path, ident in identities.items()
                  if ident.changed != ident.first_seen and path in spans
                  and ident.changed > spans[path][1])


def _dirty(folder: str, paths: list[str]) -> frozenset[str]:
    """Which of ``paths`` differ from HEAD (staged or not): ``git diff`` stats just them
    (the whole folder when there are many)."""
    if not paths:
        return frozenset()
    named = paths if len(paths) <= DIFF_PATHS else ["."]
    found = _git(folder, "--literal-pathspecs", "diff", "-z", "--name-only", "--no-renames",
                 "--relative", "--no-color", "HEAD", "--", *named)
    return frozenset(p.decode("utf-8", "surrogateescape") for p in found.split(b"\0") if p)


def git_dated(identities: dict[str, Identity], seeds_dir: str | Path,
              state: GitDates | None = None) -> dict[str, Identity]:
    """``identities`` with git's dates when the seeds folder is in a git work tree.

    The shell's half of :func:`overlay`.  Without a work tree (or without git, or
    when git refuses, e.g. a repository owned by another user) the ledger's dates
    stay, said once in the log.  ``state`` is kept by a long-lived process.
    """
    folder = Path(seeds_dir)
    if work_tree(folder) is None:
        return identities
    state = state if state is not None else GitDates()
    try:
        if shutil.which("git") is None:
            raise OSError("git is not installed")
        where = str(folder.resolve())
        spans = _history(where, state)
        dirty = _dirty(where, suspects(identities, spans)) if spans else frozenset()
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError) as exc:
        if not state.warned:
            reason = getattr(exc, "stderr", b"") or str(exc).encode()
            log.warning("seeds folder %s is in a git work tree but git gave no dates (%s); "
                        "using the ledger's", folder, reason.decode(errors="replace").strip())
            state.warned = True
        state.head = ""
        return identities
    if not spans:
        return identities
    return overlay(identities, spans, dirty, state.made)
