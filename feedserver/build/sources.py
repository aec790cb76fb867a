"""Scan the seeds folder and parse only what changed, in parallel when there is a lot.

The scan only stats.  A file whose size, mtime and settings fingerprint match
the ledger's cache is not opened; a changed one is read and hashed, and parsed
only if its bytes changed.  When many files need parsing (a cold build), they
are split into chunks over worker processes (``build_processes``; 0 means one
per core): parsing is pure, so the results do not depend on how the work was
shared.  A file that fails to parse keeps its last good version (the cache)
and adds a problem; a new file that fails is only a problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feedserver.build import language_model, scan, timebox
from feedserver.build.assemble import parse_source
from feedserver.build.codeversion import parse_version
from feedserver.build.helper import Helper, HelperGone
from feedserver.build.signatures import split
from feedserver.config import Settings
from feedserver.core.media import NO_MEDIA, MediaIndex
from feedserver.core.records import Body, Problem, Stub
from feedserver.identify.ledger import CachedFile, Ledger
from feedserver.parse import language
from feedserver.topics import detect

Progress = Callable[[str, int, int], None]
Hold = Callable[[scan.ScannedFile], bool]
PARALLEL_MIN = 64
# Seconds a build waits for the parse helper beyond the files' budgets (its first
# request also loads the language model), and the budget a file without one counts.
PARSE_WAIT = 30.0
CHUNK = 32
STORE_BATCH = 500
SKIPS_FILE = "parse-skips.json"


class Moments(Mapping[str, datetime]):
    """Each path's modification time, made a datetime only when asked: the ledger
    needs it for new and changed articles, not for the 10,000 others."""

    def __init__(self, mtimes_ns: dict[str, int]) -> None:
        self._ns = mtimes_ns

    def __getitem__(self, path: str) -> datetime:
        return datetime.fromtimestamp(self._ns[path] / 1e9, UTC)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ns)

    def __len__(self) -> int:
        return len(self._ns)


@dataclass
class Sources:
    """Stubs by path, what to cache, and what was met on the way."""

    stubs: dict[str, Stub] = field(default_factory=dict)
    fresh: dict[str, CachedFile] = field(default_factory=dict)
    bodies: dict[str, Body] = field(default_factory=dict)
    generation: str | None = None
    touched: dict[str, tuple[int, int]] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    seen_at: Moments = field(default_factory=lambda: Moments({}))
    problems: list[Problem] = field(default_factory=list)
    read: int = 0
    forgotten: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class FileRead:
    """What reading one file gave: a new parse, the same bytes again, or a failure."""

    path: str
    size: int
    mtime_ns: int
    read: bool = False
    sha256: str = ""
    stub: Stub | None = None
    body: Body | None = None
    problems: tuple[Problem, ...] = ()
    failure: str = ""
    overrun: bool = False
    # The file had another size or time when it was read than when the scan (and the hold
    # rule) saw it: ``size`` and ``mtime_ns`` are the read's, and the hold rule is asked
    # again about them before the read is taken (see gather).
    restamped: bool = False


CHANGED_WHILE_READ = "changed while it was read (a writer is at it); read again next build"
READ_ATTEMPTS = 3  # reads of a file that changes while it is read, before it is left
READ_PAUSE = 0.05  # seconds between them


def processes(settings: Settings) -> int:
    """Worker processes for a full build: the setting, or one per core."""
    return settings.build_processes or os.cpu_count() or 1


def read_one(entry: scan.ScannedFile, known_sha: str | None, settings: Settings,
             index: MediaIndex = NO_MEDIA) -> FileRead:
    """Read, hash and (unless the bytes are the cached ones) parse one file.
    ``index``: the media files and articles its relative references may name."""
    base: dict[str, Any] = {"path": entry.path, "size": entry.size, "mtime_ns": entry.mtime_ns}
    if entry.size > settings.max_file_bytes:
        return FileRead(**base, failure=f"file is {entry.size:,} bytes; the limit is "
                                       f"{settings.max_file_bytes:,} (max_file_bytes)")
    for attempt in range(READ_ATTEMPTS):
        try:
            source, stamp = scan.read_stamped(entry, settings.max_file_bytes)
            break
        except scan.ChangedWhileRead:
            if attempt == READ_ATTEMPTS - 1:
                return FileRead(**base, failure=CHANGED_WHILE_READ)
            time.sleep(READ_PAUSE)  # a save of a few writes is over in a moment
        except OSError as exc:
            return FileRead(**base, failure=f"cannot read: {exc.strerror or exc}")
    if stamp != (entry.size, entry.mtime_ns):
        base.update(size=stamp[0], mtime_ns=stamp[1], restamped=True)
    digest = hashlib.sha256(source.data).hexdigest()
    if digest == known_sha:
        return FileRead(**base, read=True, sha256=digest)
    parsed, found = parse_source(source, settings, index)
    if parsed is None:
        return FileRead(**base, read=True, failure=found[0].reason)
    stub, body = split(parsed, settings)
    return FileRead(**base, read=True, sha256=digest, stub=stub, body=body,
                   problems=tuple(found))


def _outcomes(todo: list[tuple[scan.ScannedFile, str | None]],
              settings: Settings, index: MediaIndex = NO_MEDIA,
              helper: Helper | None = None) -> Iterator[FileRead]:
    """Read every file in ``todo``, in order, in forked children under the parse budget.

    One child for a few files (a watched build's one or two: a bare fork costs
    a few milliseconds), ``build_processes`` for many, each taking ranges of
    files so that a cold build does not fork per file.  A few files go to ``helper``
    when there is one (it forks the same children from its own small heap); without
    its answer they are read here as before.
    """
    workers = 1 if len(todo) < PARALLEL_MIN else min(processes(settings), len(todo) // CHUNK)
    if todo and helper is not None and workers == 1:
        helped = _helped(helper, todo, settings, index)
        if helped is not None:
            yield from helped
            return
    if todo:
        warm(settings)

    def task(number: int) -> FileRead:
        entry, known = todo[number]
        return read_one(entry, known, settings, index)

    for number, result in timebox.run(len(todo), task, max(1, workers), settings.parse_timeout):
        if isinstance(result, timebox.Overrun):
            yield _overran(todo[number][0], result)
        else:
            yield result


def _helped(helper: Helper, todo: list[tuple[scan.ScannedFile, str | None]],
            settings: Settings, index: MediaIndex) -> list[FileRead] | None:
    """``todo`` read by the parse helper, or None (gone, late or failed).  The media
    index (every article path: large) is sent only when it is not the one it holds."""
    try:
        helper.running()
        told = helper.memo.get("index") == index
        request = helper.ask(("parse", todo, settings, None if told else index))
        helper.memo["index"] = index
        budget = (settings.parse_timeout or PARSE_WAIT) * timebox.WALL_FACTOR
        reply = helper.answer(request, budget * len(todo) + PARSE_WAIT)
    except HelperGone:
        return None
    if not (isinstance(reply, tuple) and reply[0] == "read" and len(reply[1]) == len(todo)):
        return None
    return list(reply[1])


def ready(helper: Helper | None, settings: Settings, index: MediaIndex) -> None:
    """Start the parse helper, if it does not run, and have it load the language model
    and the gazetteer and keep ``index`` now: called when a build is done, so the
    first file a long-lived build is asked to parse after that does not wait for them
    (a second or more).  Nothing waits for its answer (:meth:`Helper.answer` drops it
    on the way to the next); a helper that fails to start is started again when a
    parse asks for it, as before."""
    if helper is None or helper.alive:
        return
    try:
        tag = helper.ask(("warm", settings, index))
    except HelperGone:
        return
    helper.memo.update(warm=tag, index=index)


class ParseWork:
    """The parse as the helper program makes it (:mod:`feedserver.build.helper`):
    :func:`_outcomes` in its own process, keeping the media index it was last sent."""

    def __init__(self) -> None:
        self.index: MediaIndex | None = None

    def handle(self, request: tuple[Any, ...]) -> tuple[Any, ...]:
        """``("parse", todo, settings, index or None)`` -> ``("read", outcomes)``; None
        means the index it holds, and a helper that holds none (started again since the
        build looked) refuses, so the build reads the files itself.

        ``("warm", settings, index)`` -> ``("warmed", what is loaded)``: load the models
        and keep the index now, before any file is asked for (:func:`ready`)."""
        if request[0] == "warm":
            _, settings, self.index = request
            warm(settings)
            return ("warmed", {"language": language.is_loaded(), "topics": detect.is_warm()})
        _, todo, settings, index = request
        if index is not None:
            self.index = index
        if self.index is None:
            return ("failed", "no media index was sent to this helper")
        return ("read", list(_outcomes(todo, settings, self.index)))


def warm(settings: Settings) -> None:
    """Load what every parse uses and takes long to load (the language model, the
    gazetteer) in this process, before the workers fork: they inherit it, and a
    long-lived scheduler loads it once, not once per watched change."""
    if settings.detect_language:
        language.warm(language_model.load)
    if settings.detect_topics:
        detect.warm()


def release_detection() -> None:
    """Drop the language model and the gazetteer once a one-shot build has parsed (about
    70 MB, most of it the model's arrays): the render workers fork after the parse and
    would each inherit it, for nothing.  A long-lived scheduler keeps them (reloading
    the model costs a second per watched change)."""
    language.release()
    detect.release()


def _overran(entry: scan.ScannedFile, overrun: timebox.Overrun) -> FileRead:
    """The failure of a parse that was killed at the budget (or died)."""
    why = overrun.crashed or (f"parsing took longer than the {overrun.seconds:g} s budget "
                              "(parse_timeout, CPU time)")
    return FileRead(entry.path, entry.size, entry.mtime_ns, read=True, overrun=True,
                   failure=f"{why}; skipped until the file changes")


class Skips:
    """Files whose parse overran, by path: size, mtime, settings and budget of that try.

    Kept in a JSON file of its own beside the ledger (the ledger's schema is
    not this module's), read once per build.  A file is tried again when any
    of those changes, or when the budget grows; an unreadable record file only
    means everything is tried again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changed = False
        try:
            known = json.loads(path.read_bytes())
        except (OSError, ValueError):
            known = {}
        self.known: dict[str, list[object]] = known if isinstance(known, dict) else {}

    @classmethod
    def of(cls, settings: Settings) -> Skips:
        return cls(settings.ledger_file.parent / SKIPS_FILE)

    def reason(self, entry: scan.ScannedFile, shaping: str, seconds: float) -> str | None:
        """Why ``entry`` is not read again, or None to read it."""
        known = self.known.get(entry.path)
        if not isinstance(known, list) or len(known) != 5 or seconds <= 0:
            return None
        size, mtime_ns, shaped, limit, why = known
        if (size, mtime_ns, shaped) != (entry.size, entry.mtime_ns, shaping) \
                or not isinstance(limit, int | float) or seconds > limit:
            return None
        return str(why)

    def note(self, outcome: FileRead, shaping: str, seconds: float) -> None:
        self.known[outcome.path] = [outcome.size, outcome.mtime_ns, shaping, seconds,
                                    outcome.failure]
        self.changed = True

    def forget(self, paths: set[str] | list[str]) -> None:
        for path in paths:
            if self.known.pop(path, None) is not None:
                self.changed = True

    def save(self) -> None:
        """Write the records if they changed (atomically); a state folder that cannot
        be written only means an overrunning file is tried again next build."""
        if not self.changed:
            return
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            temp.write_text(json.dumps(self.known, sort_keys=True), encoding="utf-8")
            os.replace(temp, self.path)
        except OSError:
            temp.unlink(missing_ok=True)
        self.changed = False


def gather(settings: Settings, ledger: Ledger, progress: Progress | None = None,
           hold: Hold | None = None, cached: dict[str, CachedFile] | None = None,
           store: bool = False,
           scanned: tuple[list[scan.ScannedFile], list[Problem]] | None = None,
           media: MediaIndex | None = None, helper: Helper | None = None) -> Sources:
    """Scan, then read and parse only files whose size, mtime or hash changed.

    A changed file that ``hold`` says is still being written is not read: its
    last good version stays (a new one waits), and it is not gone either.
    ``cached`` is the ledger's parse cache when the caller already holds it.
    With ``store``, new parses go into the ledger's cache as they arrive (a
    parse is true of the file's bytes whatever happens to the build), so a
    cold build never holds every article's content at once; without it (a
    ``check``) their content is kept in ``Sources.bodies`` and nothing is written.
    ``scanned`` is the folder's listing when the caller keeps one up to date
    (:class:`scan.Listing`); without it the folder is scanned.  ``media``: the media
    files relative references may name (none when not given); a cached parse that
    looked up a file whose stamp changed since (a picture edited, added or deleted,
    an article linked to gone) is parsed again.  ``helper``: a parse helper
    (:class:`ParseWork`) for a few files, in a process too big to fork for them.
    """
    entries, problems = scanned if scanned is not None else scan.list_files(settings.seeds_dir)
    cached = ledger.cached_files() if cached is None else cached
    shaping = f"{settings.fingerprint()}/{parse_version()}"  # new parser code redoes parses
    out = Sources(problems=problems)
    skips = Skips.of(settings)
    index = media if media is not None else MediaIndex(
        {}, frozenset(entry.path for entry in entries))
    todo = _changed(entries, cached, shaping, hold, out, skips, settings.parse_timeout, index)
    where = {entry.path: entry.abspath for entry, _ in todo}
    batch: list[tuple[str, CachedFile, Body]] = []
    for done, outcome in enumerate(_outcomes(todo, settings, index, helper), 1):
        if _held_after_all(outcome, where, hold, cached, out):
            continue
        _record(outcome, cached.get(outcome.path), shaping, out)
        if outcome.overrun:
            skips.note(outcome, shaping, settings.parse_timeout)
        elif outcome.path in skips.known:
            skips.forget([outcome.path])
        if outcome.path in out.fresh and outcome.body is not None:
            batch.append((outcome.path, out.fresh[outcome.path], outcome.body))
        if store and len(batch) >= STORE_BATCH:
            out.generation = ledger.store_files(batch)
            batch = []
        if progress:
            progress("reading", done, len(todo))
    if store and batch:
        out.generation = ledger.store_files(batch)
    elif not store:
        out.bodies = {path: body for path, _, body in batch}
    out.forgotten = set(cached) - out.present
    skips.forget(set(skips.known) - out.present)
    if store:
        skips.save()
    return out


def _changed(entries: list[scan.ScannedFile], cached: dict[str, CachedFile], shaping: str,
             hold: Hold | None, out: Sources, skips: Skips,
             seconds: float, index: MediaIndex = NO_MEDIA
             ) -> list[tuple[scan.ScannedFile, str | None]]:
    """Files to read (with the hash they had), noting every file that is present.

    A file whose last parse overran (and that has not changed since) is not
    read: its problem is reported again and its last good version stays.
    """
    todo: list[tuple[scan.ScannedFile, str | None]] = []
    mtimes = {entry.path: entry.mtime_ns for entry in entries}
    out.seen_at, out.present = Moments(mtimes), set(mtimes)
    stubs = out.stubs
    for entry in entries:
        previous = cached.get(entry.path)
        needed = previous is not None and (not previous.stub.needs
                                           or _needs_hold(previous.stub, index))
        if previous is not None and previous.mtime_ns == entry.mtime_ns \
                and previous.size == entry.size and previous.settings == shaping and needed:
            stubs[entry.path] = previous.stub
        elif hold is not None and hold(entry):
            if previous is not None:
                stubs[entry.path] = previous.stub
        elif skips.known and (why := skips.reason(entry, shaping, seconds)) is not None:
            _record(FileRead(entry.path, entry.size, entry.mtime_ns, failure=why), previous,
                    shaping, out)
        else:
            same = previous.sha256 if previous and previous.settings == shaping and needed \
                else None
            todo.append((entry, same))
    return todo


def _held_after_all(outcome: FileRead, where: dict[str, str], hold: Hold | None,
                    cached: dict[str, CachedFile], out: Sources) -> bool:
    """Whether a file read under another stamp than the scan's, or changing while it
    was read, is still being written by the hold rule's lights: then the read is not
    taken and the last good version stays (as for a file held at the scan).

    The hold rule judged the scan's stamp; a writer that opened the file a moment later
    (an in-place save truncates it first) would have had its first half read and cached
    under that stamp, and published (benchmarks/README.md, "Under load").  Without a
    hold rule (``feedserver build``) a file changing during the read is a problem of
    this build (:data:`CHANGED_WHILE_READ`); the next build reads it again.
    """
    if hold is None or not (outcome.restamped or outcome.failure == CHANGED_WHILE_READ):
        return False
    now = time.time_ns()
    stamp = (outcome.size, outcome.mtime_ns) if outcome.restamped else (outcome.size, now)
    if not hold(scan.ScannedFile(outcome.path, where[outcome.path], *stamp)):
        return False
    previous = cached.get(outcome.path)
    if previous is not None:
        out.stubs[outcome.path] = previous.stub
    return True


def _needs_hold(stub: Stub, index: MediaIndex) -> bool:
    """Whether every file a cached parse looked up is as it was then (media stamps,
    articles present); almost every stub looked up nothing."""
    return all(index.stamp(path) == stamp for path, stamp in stub.needs)


def _record(outcome: FileRead, previous: CachedFile | None, shaping: str, out: Sources) -> None:
    out.read += outcome.read
    if outcome.failure:
        reason = outcome.failure
        if previous is not None:
            out.stubs[outcome.path] = previous.stub
            reason += "; the last good version stays published"
        out.problems.append(Problem(outcome.path, reason))
    elif outcome.stub is None and previous is not None:  # same bytes, new mtime
        out.stubs[outcome.path] = previous.stub
        out.touched[outcome.path] = (outcome.size, outcome.mtime_ns)
    elif outcome.stub is not None and outcome.body is not None:
        out.problems += outcome.problems
        out.stubs[outcome.path] = outcome.stub
        out.fresh[outcome.path] = CachedFile(outcome.size, outcome.mtime_ns, outcome.sha256,
                                             shaping, outcome.stub)
