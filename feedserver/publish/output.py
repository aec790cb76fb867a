"""The filesystem edge on the way out: the output folder and its manifest.

The output folder mirrors the site's URLs (:mod:`feedserver.core.layout`: ``feed.rss``,
``topics/<slug>/feed.atom``, ...) so the Flask app, nginx or a CDN can serve
it as is.  Beside each file go precompressed ``.gz`` and ``.br`` bodies, made
once per publish.  The manifest (``.feedserver/manifest.json`` and its parts, see
:mod:`feedserver.publish.manifest`) records each file's ETag,
Last-Modified, media type, encodings, feed format and CORS, and the paths that went
away (served as 410 Gone); readers go through :mod:`feedserver.publish.manifest`.

A publish writes every new body, then the new manifest, to temporary files
first, then a journal listing the renames (and the paths to remove); only
then are they renamed into place, the manifest last.  A full disk or a crash
before the journal leaves the previous output untouched (its temp files are
removed by the next publish, which finds the marker file); a crash after it is rolled forward by
the next start (:func:`recover`).  A rename never leaves a torn file, so a
reader always gets a whole old or a whole new body.  Files whose bytes did not change are not
rewritten, nor compressed again: their mtime, ETag and Last-Modified stay put,
which is what keeps polling cheap.  The manifest also records each channel's
content signature, so the next build knows which channels it may skip.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import brotli
import orjson
from isal import igzip

from feedserver.core.errors import PublishError
from feedserver.core.layout import (
    ENCODINGS,
    JOURNAL,
    MANIFEST,
    META_DIR,
    PUBLISHING,
    QUERY_DIR,
    STATUS,
    is_internal,
)
from feedserver.core.media import TYPES
from feedserver.core.records import Rendered
from feedserver.publish.manifest import (
    DELTAS_PREFIX,
    PARTS_DIR,
    SECTIONS,
    VERSION,
    Shards,
    etag_of,
    load_manifest,
    part_body,
)

_MIN_COMPRESS = 256
# ISA-L's gzip 3 (python-isal, the same gzip format any client inflates) and brotli 3:
# slightly larger bodies for far less CPU than zlib's or brotli's higher levels (the
# figures: benchmarks/README.md).
BROTLI_QUALITY = 3
GZIP_LEVEL = 3


def _file_mode() -> int:
    """What ``open()`` would give a new file (0666 less the umask), read once at import.

    mkstemp makes 0600 files: renamed into place as they were, a static server
    running as another user (nginx as www-data) could not read the output.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()
_SERIAL = itertools.count()  # temp file names: unique within a process


@dataclass(frozen=True)
class PublishResult:
    """What a publish changed on disk."""

    written: list[str]
    unchanged: int
    removed: list[str]
    manifest: dict[str, Any] | None = None  # the manifest now live
    # Every path whose entry this publish set (written or not): with ``removed``, all
    # that tells the new manifest's files from the old one's.
    entered: tuple[str, ...] = ()


# The media types of files published beside articles (feedserver.core.media): compressed
# already.  An SVG icon is text, and compresses well.
_PRECOMPRESSED = frozenset(TYPES.values())


def compress(body: bytes, gzip_only: bool = False) -> dict[str, bytes]:
    """Deterministic gzip (mtime 0) and brotli bodies; none for tiny files; gzip alone
    where brotli is not worth its file (``gzip_only``): a full archive page and an RFC
    3229 delta.

    A full archive page never changes and is fetched once per reader (then cached for a
    week, ``immutable``), while every cold build compressed every page of every
    channel's history twice: 660 of the 920 MB a 10,000-article site writes, brotli
    taking three times gzip's CPU on them for bodies about 6% smaller than gzip's (4.4 of
    the build's 63 CPU seconds; benchmarks/README.md, "A new host: the whole table, where
    the CPU goes, and three cuts").  A delta is a few items, remade for every version
    a poller may hold whenever its feed changes: brotli saved 0.6% on them (120 deltas
    of a 50,000-article site, 2,506 against 2,520 bytes on average) for a third of the
    files a one-file build wrote (117 of 351 deltas' files, each written, renamed and
    listed in the manifest).  A client that takes both gets gzip (the app and nginx's
    ``brotli_static`` alike fall back to what is there).

    ISA-L's gzip is the same bytes for the same input on the same kind of CPU only: it
    picks its code by the CPU (AVX2, AVX-512), so a cold build on another kind of machine
    compresses the same file into another (equally valid) stream, under another ETag.
    """
    if len(body) < _MIN_COMPRESS:
        return {}
    gzipped = igzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    if gzip_only:
        return {"gzip": gzipped}
    return {"br": brotli.compress(body, quality=BROTLI_QUALITY), "gzip": gzipped}


def on_disk(root: str, path: str, entry: dict[str, Any]) -> bool:
    """The published file and each compressed body its manifest entry lists are there.

    A CDN or nginx with ``gzip_static`` serves the ``.gz``/``.br`` bodies on
    their own: one deleted by hand must be made again, not skipped because
    the plain file's bytes did not change.  Plain string paths: a build stats
    every published file this way.
    """
    base = f"{root}/{path}"
    return os.path.isfile(base) and all(os.path.isfile(base + ENCODINGS[name])
                                        for name in entry.get("encodings", ()))


def _facts(item: Rendered) -> dict[str, Any]:
    """What the build says about a file beyond its bytes (see publish.manifest): the
    channel always, the feed format, CORS and the channel's freshness only where they
    apply."""
    facts: dict[str, Any] = {"channel": item.channel}
    if item.format:
        facts["format"] = item.format
    if item.cors:
        facts["cors"] = True
    if item.max_age:
        facts["max_age"] = item.max_age
    if item.immutable:
        facts["immutable"] = True
    return facts


def _entry(item: Rendered, encoded: dict[str, bytes]) -> dict[str, Any]:
    return {
        "etag": etag_of(item.body),
        "size": len(item.body),
        "media_type": item.media_type,
        "last_modified": format_datetime(item.last_modified, usegmt=True),
        "encodings": {name: {"etag": etag_of(body), "size": len(body)}
                      for name, body in encoded.items()},
        **_facts(item),
    }


@dataclass(frozen=True)
class Prepared:
    """One output file ready to go live: its manifest entry and its staged temp files.

    ``temps``: the staged temp files' paths with a NUL between them (no path holds one),
    empty when the published file already has these bytes; :attr:`staged` pairs each
    with the path it is renamed to, which its name says (:func:`target_of`).  One string,
    not pairs of them: a cold build holds a Prepared for every file it publishes (37,000
    at 10,000 articles) until it commits, and the pairs were 850 bytes of each
    (benchmarks/README.md, "A kept row, 4 KiB, and a staged file's names").
    """

    path: str
    entry: dict[str, Any]
    temps: str = ""

    @property
    def staged(self) -> tuple[tuple[str, str], ...]:
        """(temp file, the path it replaces) for each file staged."""
        if not self.temps:
            return ()
        return tuple((tmp, target_of(tmp)) for tmp in self.temps.split("\0"))


def temps_of(paths: Iterable[str]) -> str:
    """:attr:`Prepared.temps` of these temp files."""
    return "\0".join(paths)


def target_of(tmp: str) -> str:
    """The path a temp file goes live as: every temp file is named ``.{name}.{token}.tmp``
    beside its target (the token has no dot: :func:`_stage`'s pid and counter,
    ``mkstemp``'s random letters in :func:`_stage_bytes`)."""
    folder, name = os.path.split(tmp)
    return os.path.join(folder, name[1:].rsplit(".", 2)[0])


def _stage(folder: str, name: str, body: bytes, staged: list[str]) -> None:
    """Write ``body`` to a new temp file in ``folder`` that will be renamed to ``name``.

    Plain strings and one ``O_EXCL`` open: a cold build of a site with pages stages
    30,000 files, and pathlib's objects and mkstemp's random names were seconds of it.
    The name is unique to this process (pid and a counter; workers are processes),
    matches :func:`clean_temporaries`'s pattern and says its target (:func:`target_of`).
    """
    tmp = os.path.join(folder, f".{name}.{os.getpid()}-{next(_SERIAL)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                 FILE_MODE)
    staged.append(tmp)
    try:
        os.fchmod(fd, FILE_MODE)  # exactly 0666 less the umask, whatever open() did
        _write_all(fd, body)
    finally:
        os.close(fd)


def stage_temp(folder: str, name: str, body: bytes) -> str:
    """``body`` in a new temp file in ``folder`` named as :func:`_stage` names them (for
    ``name``); its path.  Raises OSError with nothing left behind."""
    staged: list[str] = []
    try:
        _stage(folder, name, body, staged)
    except OSError:
        discard([Prepared("", {}, temps_of(staged))])
        raise
    return staged[0]


def _write_all(fd: int, body: bytes) -> None:
    """``os.write`` until all of ``body`` is written (a write may be short)."""
    view = memoryview(body)
    while view:
        view = view[os.write(fd, view):]


def _folder_for(out_dir: Path, rel: str) -> str:
    """The folder an output path goes in, made if missing: one stat for a file and its
    compressed bodies (a failed mkdir takes the folder's lock; a stat does not)."""
    folder = os.path.dirname(os.path.join(str(out_dir), rel))
    if not os.path.isdir(folder):
        os.makedirs(folder, exist_ok=True)
    return folder


def discard(prepared: Iterable[Prepared]) -> None:
    """Remove the temporary files of a publish that will not happen."""
    for item in prepared:
        for tmp in item.temps.split("\0") if item.temps else ():
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def prepare(out_dir: Path, item: Rendered, previous: dict[str, Any] | None) -> Prepared:
    """Stage one file (and its compressed bodies) unless the same bytes are published.

    The ETag is compared before anything is compressed, so an unchanged file
    costs one hash.  Raises :class:`PublishError` (its temp files removed) when
    the disk refuses the write.
    """
    etag = etag_of(item.body)
    if previous is not None and previous.get("etag") == etag \
            and previous.get("media_type") == item.media_type \
            and on_disk(str(out_dir), item.path, previous):
        kept = {k: v for k, v in previous.items() if k not in ("format", "cors", "max_age",
                                                                "immutable")}
        return Prepared(item.path, {**kept, **_facts(item)})
    # Pictures, sounds, videos and PDFs are compressed already: no .gz/.br beside them.
    # The query index and item records are read by the web app only: no .gz/.br.
    encoded = {} if item.media_type in _PRECOMPRESSED or item.path.startswith(QUERY_DIR) \
        else compress(item.body, item.immutable or item.path.startswith(DELTAS_PREFIX))
    staged: list[str] = []
    try:
        folder = _folder_for(out_dir, item.path)
        name = os.path.basename(item.path)
        _stage(folder, name, item.body, staged)
        for encoding, body in encoded.items():
            _stage(folder, name + ENCODINGS[encoding], body, staged)
    except OSError as exc:
        discard([Prepared(item.path, {}, temps_of(staged))])
        raise PublishError(f"cannot write to {out_dir}: {exc.strerror or exc}; "
                           "the previous output is unchanged") from None
    return Prepared(item.path, _entry(item, encoded), temps_of(staged))


def clean_temporaries(out_dir: Path, recursive: bool = True) -> int:
    """Remove temp files a crashed publish left behind (``recursive``: in every folder
    under ``out_dir``, else in it alone); returns how many."""
    count = 0
    for tmp in (out_dir.rglob if recursive else out_dir.glob)(".*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            count += 1
    return count


def recover(out_dir: Path) -> int:
    """Finish or undo a publish that a crash (kill -9) interrupted; returns temp files removed.

    If the journal is there, every file and the manifest were staged when the
    crash came: the renames are finished (roll forward), so the output is the
    new version whole.  If only the marker is there, the crash came while
    staging: the temp files are removed and the old output stays.  Cheap when
    the last publish finished: two stats and a look at ``.feedserver/``.
    """
    journal = out_dir / JOURNAL
    if journal.exists():
        try:
            data = json.loads(journal.read_text(encoding="utf-8"))
            renames, removed = data["renames"], data.get("removed", [])
        except (OSError, ValueError, KeyError):
            renames, removed = [], []  # torn journal: never complete, nothing was renamed
        for tmp, target in renames:
            if os.path.exists(tmp):
                os.replace(tmp, target)
        _remove(out_dir, removed)  # paths the new manifest lists as gone
    elif not (out_dir / PUBLISHING).exists():
        # Only the status file is written outside a publish, right in META_DIR: its
        # folder alone, not the item records and deltas under it (50,000 articles
        # make that walk a tenth of a second of every build).
        return clean_temporaries(out_dir / META_DIR, recursive=False)
    count = clean_temporaries(out_dir)
    for name in (JOURNAL, PUBLISHING):
        with contextlib.suppress(OSError):
            (out_dir / name).unlink()
    return count


def begin(out_dir: Path) -> None:
    """Mark a publish as under way (removed by :func:`commit`); see :func:`recover`."""
    (out_dir / META_DIR).mkdir(parents=True, exist_ok=True)
    try:
        (out_dir / PUBLISHING).touch()
    except OSError as exc:
        raise PublishError(f"cannot write to {out_dir}: {exc.strerror or exc}; "
                           "the previous output is unchanged") from None


def publish(out_dir: Path, files: Iterable[Rendered], keep: set[str] | None = None,
            prune: bool = True, prepared: Iterable[Prepared] = (),
            signatures: dict[str, str] | None = None,
            old: dict[str, Any] | None = None, now: datetime | None = None) -> PublishResult:
    """Make ``files`` (and already ``prepared`` ones) the output.

    ``keep`` lists old paths to leave as they are.  With ``prune`` every
    other previously published path is removed and recorded as gone; without
    it (an incremental publish) old paths stay.  ``signatures`` (channel slug
    -> content signature) are recorded in the manifest for the next build.
    ``old`` is the current manifest when the caller (holding the build lock)
    has already read it: 10,000 pages make it megabytes to parse again.
    ``now`` (the build's) dates a changed body whose own date did not move
    (see :func:`advance`).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    begin(out_dir)  # the caller ran recover() before anything was staged
    old = old if old is not None else load_manifest(out_dir)
    ready = list(prepared)
    try:
        for item in files:
            ready.append(prepare(out_dir, item, old["files"].get(item.path)))
    except PublishError:
        discard(ready)
        raise
    if now is not None:
        ready = advance(ready, old["files"], now)
    return commit(out_dir, ready, old, keep or set(), prune, signatures or {})


def advance(ready: list[Prepared], published: dict[str, Any], now: datetime) -> list[Prepared]:
    """Give every changed body a Last-Modified later than the one it replaces.

    A file's date is its newest item's, and that does not move when an older
    article is deleted, edited or added back-dated: the body and ETag change
    but a poller sending only If-Modified-Since got 304 and kept the stale
    feed.  Such a body is dated ``now`` (the publish of the change), or one
    second after the old date if the clock says otherwise.
    """
    moved: list[Prepared] = []
    for item in ready:
        before = published.get(item.path)
        if item.temps and before is not None and before.get("etag") != item.entry["etag"]:
            item = _later_than(item, before.get("last_modified"), now)
        moved.append(item)
    return moved


def _later_than(item: Prepared, previous: str | None, now: datetime) -> Prepared:
    try:
        old = parsedate_to_datetime(previous) if previous else None
        new = parsedate_to_datetime(item.entry["last_modified"])
    except (TypeError, ValueError):
        return item
    if old is None or new > old:
        return item
    moment = max(now.astimezone(UTC).replace(microsecond=0), old + timedelta(seconds=1))
    return replace(item, entry={**item.entry,
                                "last_modified": format_datetime(moment, usegmt=True)})


def commit(out_dir: Path, ready: list[Prepared], old: dict[str, Any], keep: set[str],
           prune: bool, signatures: dict[str, str]) -> PublishResult:
    """Stage the manifest and a journal of the renames, then rename everything into place.

    Renames need no free space, so once the journal is on disk nothing can
    fail half-way for lack of room; a crash before the journal leaves the old
    output, a crash after it is finished by :func:`recover`.
    """
    # The old entries, less those neither kept nor made again (with ``prune``), then the
    # new ones over them: set operations and a copy in C, no Python step per entry of a
    # manifest of 124,600 (the loops this replaces took 0.33 s on it, this 0.06 s).
    before: dict[str, Any] = old["files"]
    files = dict(before)
    removed = sorted(before.keys() - keep - {p.path for p in ready}) if prune else []
    for path in removed:
        del files[path]
    files.update((p.path, p.entry) for p in ready)
    channels = dict(signatures)
    # The build's own files (.feedserver/: deltas that a feed's next version replaces)
    # are never served by URL, so they are not 'gone' either: the list would only grow.
    gone = {*old["gone"], *(p for p in removed if not is_internal(p))}
    gone_now = sorted(p for p in gone if p not in files)
    renames = [list(pair) for item in ready for pair in item.staged]
    if not renames and not removed and old.get("version") == VERSION \
            and gone_now == old["gone"] and channels == old["channels"] and files == before:
        # Nothing to change: rewriting the manifest would make every web worker read it
        # again for nothing, every interval.
        with contextlib.suppress(OSError):
            (out_dir / PUBLISHING).unlink()  # begin()'s marker: nothing was staged
        return PublishResult([], len(ready), [], old)
    shards, written = _parts(out_dir, old, files, channels, ready, removed)
    manifest: dict[str, Any] = {"version": VERSION, "files": files, "gone": gone_now,
                                "channels": channels, "shards": shards}
    root = {"version": VERSION, "gone": gone_now, "partition": shards.partition,
            "parts": {section: list(shards.names[section]) for section in SECTIONS}}
    own = len(renames)  # the parts and the root staged from here on
    renames += written
    try:
        renames.append([_stage_json(out_dir / MANIFEST, root), str(out_dir / MANIFEST)])
        write_json(out_dir / JOURNAL, {"renames": renames, "removed": removed})
    except PublishError:
        discard([*ready, Prepared(MANIFEST, {}, temps_of(tmp for tmp, _ in renames[own:]))])
        raise
    later_mtimes(renames)
    for tmp, target in renames:
        os.replace(tmp, target)
    _remove(out_dir, removed)
    # The marker goes first: a kill between the two unlinks then leaves the journal (the
    # new version is live; recover() rolls forward, a no-op), never a bare marker, which
    # says the old version is untouched.
    for name in (PUBLISHING, JOURNAL):
        with contextlib.suppress(OSError):
            (out_dir / name).unlink()
    old_shards = old.get("shards")
    _remove_parts(out_dir, shards.part_names()
                  | (old_shards.part_names() if isinstance(old_shards, Shards) else set()))
    written = [p.path for p in ready if p.temps]
    return PublishResult(written, len(ready) - len(written), removed, manifest,
                         tuple(p.path for p in ready))


def _parts(out_dir: Path, old: dict[str, Any], files: dict[str, Any],
           channels: dict[str, str], ready: list[Prepared], removed: list[str]
           ) -> tuple[Shards, list[list[str]]]:
    """The new manifest's :class:`Shards`, and the renames of the parts it changed.

    Only the buckets that hold a key this publish added, changed or removed are
    written again (a part whose bytes are already on disk under its name is not).
    Placing every key afresh (about 1 µs each) happens on the first publish in parts
    and when the site outgrew its buckets (:meth:`Shards.fits`).
    """
    sections = {"files": files, "channels": channels}
    held = old.get("shards")
    if isinstance(held, Shards) and held.fits(len(files) + len(channels)):
        before, signed = old["files"], old["channels"]
        touched = {"files": [*removed, *(p.path for p in ready
                                         if before.get(p.path) != p.entry)],
                   "channels": _changed_keys(signed, channels)}
        shards, dirty = held.changed(touched, sections)
    else:
        shards = Shards.of(sections, Shards.fitting(len(files) + len(channels)))
        dirty = {section: set(range(shards.buckets)) for section in SECTIONS}
    folder = out_dir / PARTS_DIR
    names: dict[str, dict[int, str | None]] = {}
    renames: list[list[str]] = []
    try:
        for section in SECTIONS:
            names[section] = {}
            for at in sorted(dirty[section]):
                keys = shards.members[section][at]
                if not keys:
                    names[section][at] = None
                    continue
                name, body = part_body(section, keys, sections[section], orjson.dumps)
                names[section][at] = name
                if not os.path.exists(folder / name):  # the same bytes are there
                    renames.append([_stage_bytes(folder / name, body), str(folder / name)])
    except PublishError:
        discard([Prepared(PARTS_DIR, {}, temps_of(tmp for tmp, _ in renames))])
        raise
    return shards.named(names), renames


def _changed_keys(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The keys whose value differs between two signature maps (added and removed too):
    a set operation in C over 113,817 signatures at 50,000 articles."""
    try:
        return list({key for key, _ in before.items() ^ now.items()})
    except TypeError:  # an unhashable value (a hand-edited manifest): the long way
        return [key for key in before.keys() | now.keys() if before.get(key) != now.get(key)]


def _remove_parts(out_dir: Path, listed: set[str]) -> None:
    """Delete the manifest's part files neither the live root nor the one it replaced
    lists (a reader that has just read that one may still be reading its parts)."""
    folder = out_dir / PARTS_DIR
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name not in listed and not name.startswith("."):
            with contextlib.suppress(OSError):
                os.unlink(folder / name)


def later_mtimes(renames: Iterable[list[str]]) -> None:
    """Give each new body an mtime in a later second than the file it replaces.

    Static servers make their ETag from mtime (in seconds) and size (nginx:
    ``"<mtime hex>-<size hex>"``): two publishes of one path within a second, with
    bodies of equal length, would otherwise keep the ETag and answer a poller's
    If-None-Match with 304 for a body it has not seen.
    """
    for tmp, target in renames:
        with contextlib.suppress(OSError):
            old = int(os.stat(target).st_mtime)
            new = os.stat(tmp).st_mtime
            if int(new) <= old:
                os.utime(tmp, (new, old + 1))


def _remove(out_dir: Path, removed: Iterable[str]) -> None:
    """Delete paths that went away (and their compressed bodies); the journal lists them
    too, so a publish killed after its manifest went live does not leave them behind."""
    for path in removed:
        for suffix in ("", *ENCODINGS.values()):
            with contextlib.suppress(OSError):
                (out_dir / (path + suffix)).unlink()
        _remove_empty_parents(out_dir, (out_dir / path).parent)


def _remove_empty_parents(out_dir: Path, folder: Path) -> None:
    """Remove folders a removal left empty, up to (not including) the output root."""
    while folder != out_dir and out_dir in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _stage_json(target: Path, data: Any) -> str:
    """Write a JSON file's new version to a temp file beside it; returns its path.

    Compact, with sorted keys: orjson writes the very bytes
    ``json.dumps(separators=(",", ":"), sort_keys=True, ensure_ascii=False)`` does,
    several times faster.
    """
    return _stage_bytes(target, orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


def _stage_bytes(target: Path, body: bytes) -> str:
    """Write ``body`` to a temp file beside ``target`` (made readable as any output
    file); returns its path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise PublishError(f"cannot write {target}: {exc.strerror or exc}; "
                           "the previous output is unchanged") from None
    return tmp


def write_json(target: Path, data: Any) -> None:
    """Atomically replace a JSON file (temp file + rename)."""
    os.replace(_stage_json(target, data), target)


def note_status(out_dir: Path, **facts: Any) -> None:
    """Add facts to status.json (a failed publish, a config kept back) for /healthz.

    Best effort: the disk that refused a publish may refuse this too (the log
    still has it).  The next successful build writes a fresh status without them.
    """
    status: Any = {}
    with contextlib.suppress(OSError, ValueError):
        status = json.loads((out_dir / STATUS).read_text(encoding="utf-8"))
    status = {**(status if isinstance(status, dict) else {}), **facts}
    with contextlib.suppress(OSError, PublishError):
        write_json(out_dir / STATUS, status)


def write_status(out_dir: Path, built_at: datetime | None, problems: list[dict[str, str]],
                 articles: int) -> None:
    """Health facts for /healthz and `check`: last good build, current problems."""
    previous: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        previous = json.loads((out_dir / STATUS).read_text(encoding="utf-8"))
    write_json(out_dir / STATUS, {
        "last_success": built_at.isoformat() if built_at else previous.get("last_success"),
        "problems": problems,
        "articles": articles,
    })
