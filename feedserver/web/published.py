"""The serving side's view of the output folder: the manifest and file bodies.

Each web worker keeps one :class:`Store`.  It holds the parsed manifest as a
:class:`ServedManifest`, reloaded only when a cheap ``stat`` of
``.feedserver/manifest.json`` shows a new one; a file's media type, Last-Modified,
encodings and every static header are prepared when a request first asks for it
(:class:`PreparedFiles`), once per publish.  Bodies are read by opening the
file and ``fstat``-ing the same descriptor, and cached (bounded) by their own
ETag, computed from the bytes read: the ETag sent always belongs to the body
sent, even while a publish is in progress.  A body held with the ETag the
current manifest gives its file is answered without a look at the disk (a
publish renames every file into place before the manifest: :meth:`Store.read`);
another is found by the path's identity (inode, mtime, size; publishing
replaces files by rename, never rewrites them).  Only paths the manifest lists are ever
opened, which is what keeps every URL inside the folder; those under
``.feedserver/`` (the 404 and 410 pages the build renders) are never served by URL.
What a file is (a feed and its format, readable by other sites or not) comes
from the manifest too (:mod:`feedserver.publish.manifest`), not from a renderer.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import time
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from werkzeug.http import http_date, parse_date

from feedserver.config import Settings
from feedserver.core.freshness import ARCHIVE_CACHE
from feedserver.core.layout import ENCODINGS, MANIFEST, META_DIR, is_internal
from feedserver.core.media import LONG_CACHE, is_media_path
from feedserver.publish import manifest
from feedserver.publish.manifest import etag_of, etag_of_open
from feedserver.web.deltas import DeltaFile
from feedserver.web.deltas import index as delta_index
from feedserver.web.negotiate import (
    cache_scope,
    feed_like,
    frame_ancestors,
    html_alternate,
    varies_on_accept,
)

CORS = (("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Expose-Headers", "ETag, Last-Modified"))
NOSNIFF = ("X-Content-Type-Options", "nosniff")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
try:  # see _close
    from posix import close as _close
except ImportError:  # not a POSIX system: no gevent worker either
    _close = os.close
_PRINTABLE = re.compile(r"[\x20-\x7e]+")
Headers = tuple[tuple[str, str], ...]
RECHECK = 0.001  # seconds a look at the manifest answers for (Store.snapshot)


@dataclass(frozen=True, slots=True)
class Variant:
    """One body of a file (plain, or a precompressed encoding) and its headers."""

    filename: str
    etag: str
    headers: Headers


@dataclass(frozen=True, slots=True)
class PublishedFile:
    """A published file: its variants by encoding ('' is plain) and validators.

    ``alternate`` is the page a browser gets instead (a feed's preview), if any.
    """

    variants: dict[str, Variant]
    last_modified: str | None
    modified_at: datetime | None
    cors: bool
    alternate: str | None = None
    feed: bool = False  # a feed (a WebSub topic), not a page or another file
    ranges: bool = False  # a media file: byte ranges answered (206), cached long when versioned
    channel: str = ""  # the channel a feed belongs to (the poll budget counts per channel)
    max_age: int = 0  # seconds a feed stays fresh: its Cache-Control max-age


@dataclass(frozen=True)
class ServedManifest:
    """One version of the manifest, as prepared for serving.

    ``internal`` lists the build's own files (error pages): readable, not served by URL.
    ``feed_like`` is what HTML must beat for a browser to get a feed's preview.
    """

    key: tuple[int, int, int] | None
    files: Mapping[str, PublishedFile] = field(default_factory=dict)
    gone: frozenset[str] = frozenset()
    internal: Container[str] = frozenset()
    feed_like: tuple[str, ...] = feed_like(())
    # RFC 3229 deltas by (feed path, an ETag a poller holds): feedserver.web.deltas
    deltas: Mapping[tuple[str, str], DeltaFile] = field(default_factory=dict)
    feeds: tuple[str, ...] = ()  # the paths of the feeds served (in ``files``)


def content_security_policy(settings: Settings, path: str) -> str:
    """CSP for an HTML page: our stylesheet, images from articles, nothing else."""
    parts = urlsplit(settings.base_url)
    return ("default-src 'none'; "
            f"style-src 'self' {parts.scheme}://{parts.netloc}; img-src http: https: data:; "
            f"media-src 'self' {parts.scheme}://{parts.netloc}; "
            f"base-uri 'none'; form-action 'self' {parts.scheme}://{parts.netloc}; "
            f"frame-ancestors {frame_ancestors(settings, path)}")


def _entry(path: str, meta: Mapping[str, Any], settings: Settings) -> PublishedFile:
    """Precompute everything a request for ``path`` needs except the body."""
    media = str(meta.get("media_type") or "")
    if not _PRINTABLE.fullmatch(media):  # headers go out unchecked (web.FileResponse)
        media = "application/octet-stream"
    kind = media.split(";")[0].strip()
    fmt = manifest.feed_format(meta)
    ranges = is_media_path(path)
    # A feed's freshness follows its channel's pace (recorded by the build); the rest
    # is fresh for one refresh interval.
    fresh = (manifest.max_age(meta) if fmt else None) or settings.refresh_interval
    headers = [("Content-Type", media), NOSNIFF,
               ("Cache-Control", LONG_CACHE if ranges
                else ARCHIVE_CACHE if manifest.immutable(meta)
                else f"{cache_scope(path)}, max-age={fresh}")]
    if ranges:
        headers.append(("Accept-Ranges", "bytes"))
    encodings = {name: info for name, info in (meta.get("encodings") or {}).items()
                 if name in ENCODINGS}
    vary = ["Accept"] if varies_on_accept(path, fmt) else []
    if encodings:
        vary.append("Accept-Encoding")
    if vary:
        headers.append(("Vary", ", ".join(vary)))
    cors = manifest.cors(meta)
    if cors:
        headers += CORS
    if fmt:  # WebSub discovery (also on a 304): where to subscribe, and the topic's URL
        headers += [("Link", f'<{hub}>; rel="hub"') for hub in settings.hub_urls]
        headers.append(("Link", f'<{settings.base_url}{path}>; rel="self"'))
    if kind == "text/html":
        headers.append(("Content-Security-Policy", content_security_policy(settings, path)))
    variants = {"": Variant(path, str(meta.get("etag", "")), tuple(headers))}
    for name, info in encodings.items():
        variants[name] = Variant(path + ENCODINGS[name], str(info.get("etag", "")),
                                 (*headers, ("Content-Encoding", name)))
    moment = parse_date(str(meta.get("last_modified") or ""))
    return PublishedFile(variants, http_date(moment) if moment else None, moment, cors,
                         html_alternate(path, fmt), bool(fmt), ranges,
                         str(meta.get("channel") or ""), fresh)


def safe_path(path: str) -> bool:
    """A relative path without empty, '.' or '..' segments (manifest keys and URLs).

    Substring tests only, no split: counting the files served (``/healthz``) checks each
    of the 74,636 a 50,000-article manifest lists, and the split made that 0.12 s.  An
    empty segment is a leading or trailing '/' or a '//'; with the path put between
    slashes, a '.' or '..' segment is a '/./' or '/../'.
    """
    if not path or "\\" in path or "\x00" in path or path[0] == "/" or path[-1] == "/" \
            or "//" in path:
        return False
    bounded = f"/{path}/"
    return "/./" not in bounded and "/../" not in bounded


class PreparedFiles(Mapping[str, PublishedFile]):
    """The files one manifest version lets a worker serve, each prepared (headers,
    validators, variants: :func:`_entry`) when a request first asks for it.

    Preparing every entry at each reload made the first request after a publish wait
    for all of them, and every request the worker held meanwhile: 74,636 entries and
    2.5 s at 50,000 articles (``python -m benchmarks.reload_bench``), where a request
    needs one.  A path is served only if it is safe (:func:`safe_path`), not the
    build's own (``.feedserver/``) and its entry is an object, as before.
    """

    __slots__ = ("_listed", "_made", "_paths", "_settings")

    def __init__(self, listed: Mapping[str, Any], settings: Settings) -> None:
        self._listed = listed
        self._settings = settings
        self._made: dict[str, PublishedFile] = {}
        self._paths: list[str] | None = None

    def _servable(self, path: object) -> bool:
        return isinstance(path, str) and isinstance(self._listed.get(path), dict) \
            and not is_internal(path) and safe_path(path)

    def get(self, path: str, default: Any = None) -> Any:
        made = self._made.get(path)
        if made is None:
            if not self._servable(path):
                return default
            # Two threads may prepare one path at once: both make equal values.
            made = self._made[path] = _entry(path, self._listed[path], self._settings)
        return made

    def __getitem__(self, path: str) -> PublishedFile:
        made = self.get(path)
        if made is None:
            raise KeyError(path)
        return made

    def __contains__(self, path: object) -> bool:
        return path in self._made or self._servable(path)

    def _servable_paths(self) -> list[str]:
        if self._paths is None:  # health's count: a pass over the names, once
            self._paths = [path for path, meta in self._listed.items()
                           if isinstance(meta, dict) and not is_internal(path)
                           and safe_path(path)]
        return self._paths

    def __iter__(self) -> Iterator[str]:
        return iter(self._servable_paths())

    def __len__(self) -> int:
        return len(self._servable_paths())


class InternalFiles(Container[str]):
    """The build's own files one manifest version lists (``.feedserver/``: the error
    pages, deltas, query records): read by the app, never served by URL.  Checked when
    asked, like :class:`PreparedFiles`: 50,114 of them at 50,000 articles."""

    __slots__ = ("_listed",)

    def __init__(self, listed: Mapping[str, Any]) -> None:
        self._listed = listed

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and is_internal(path) \
            and isinstance(self._listed.get(path), dict) and safe_path(path)


class BodyCache:
    """Bodies and their ETags by (file, ETag), bounded in bytes (oldest out first)."""

    def __init__(self, max_bytes: int) -> None:
        self._items: dict[tuple[str, str], tuple[str, bytes]] = {}
        self._bytes = 0
        self._max = max_bytes
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> tuple[str, bytes] | None:
        return self._items.get(key)

    def put(self, key: tuple[str, str], value: tuple[str, bytes]) -> None:
        size = len(value[1])
        if size > self._max // 4:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._bytes += size
            while self._bytes > self._max:
                oldest = next(iter(self._items))
                self._bytes -= len(self._items.pop(oldest)[1])


class Store:
    """A worker's view of the output folder: the current manifest and file bodies."""

    def __init__(self, settings: Settings, cache_bytes: int) -> None:
        self.settings = settings
        self.root = Path(settings.output_dir)
        self._root = str(self.root)
        self._manifest = str(self.root / MANIFEST)
        self._snapshot = ServedManifest(key=(-1, -1, -1))
        self._checked = -RECHECK  # time.monotonic() of the last stat of the manifest
        self.cache = BodyCache(cache_bytes)
        # (file, inode, mtime, size) -> the ETag of that identity's bytes: bodies read
        # whole (read) and media files streamed (etag_of_open) alike.
        self._etags: dict[tuple[str, int, int, int], str] = {}
        # The manifest's parts read so far (the live root's), by name: see _parts.
        self._read_parts: dict[str, _Part] = {}

    def snapshot(self) -> ServedManifest:
        """The current manifest: a ``stat`` of it at most every :data:`RECHECK` seconds,
        a re-read only after a publish.

        A worker under load answers thousands of requests a second, and a ``stat`` of the
        manifest was 3.5 µs of the 40 a fast-path answer took in process: now a request
        within a millisecond of the last look takes the manifest that look found, so a
        publish is seen by every request that starts a millisecond after its manifest was
        renamed into place (a request a moment earlier would have got the same answer).
        """
        now = time.monotonic()
        if now - self._checked < RECHECK:
            return self._snapshot
        self._checked = now
        try:
            st = os.stat(self._manifest)
            key: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            key = None
        snap = self._snapshot
        if snap.key != key:
            snap = self._snapshot = self._load()
        return snap

    def _load(self, attempts: int = 2) -> ServedManifest:
        """The manifest now.  A part gone between the root's read and its own is one of
        a root two publishes old (a publish keeps the parts of the root it replaced): the
        root is read again, once, before the manifest counts as unreadable."""
        try:
            with open(self._manifest, "rb") as handle:
                st = os.fstat(handle.fileno())
                data = manifest.decode(handle.read())
            if "parts" in data:
                listed, deltas, feeds, kinds = self._parts(manifest.part_names(data, "files"))
            else:  # a manifest in one file (format 3)
                listed = data.get("files")
                if not isinstance(listed, dict):
                    listed = {}
                deltas, feeds, kinds = _found(listed)
        except FileNotFoundError:
            return self._load(attempts - 1) if attempts > 1 else ServedManifest(key=None)
        except (OSError, ValueError):
            return ServedManifest(key=None)
        gone = frozenset(p for p in data.get("gone") or () if isinstance(p, str))
        return ServedManifest((st.st_ino, st.st_mtime_ns, st.st_size),
                              PreparedFiles(listed, self.settings), gone,
                              InternalFiles(listed), feed_like(kinds), delta_index(deltas),
                              tuple(feeds))

    def _parts(self, names: list[str | None]) -> tuple[dict[str, Any], dict[str, Any],
                                                       list[str], set[str]]:
        """The files of a manifest in parts, its deltas, feeds and feeds' media types:
        each part read and looked through once, kept by its name (its bytes' hash) while
        the manifest lists it.  After a one-file publish of a 50,000-article site a worker
        reads the 18 file parts that changed (1.7 MB), not a 53 MB manifest, and looks
        through their entries alone (benchmarks/README.md)."""
        folder = self.root / manifest.PARTS_DIR
        kept: dict[str, _Part] = {}
        listed: dict[str, Any] = {}
        deltas: dict[str, dict[str, Any]] = {}
        feeds: list[str] = []
        kinds: set[str] = set()
        for name in names:
            if not name:
                continue
            part = self._read_parts.get(name) or kept.get(name)
            if part is None:
                entries = manifest.decode_part((folder / name).read_bytes())
                part = (entries, *_found(entries))
            kept[name] = part
            listed.update(part[0])
            deltas.update(part[1])
            feeds += part[2]
            kinds |= part[3]
        self._read_parts = kept
        return listed, deltas, feeds, kinds

    def etag_of_open(self, filename: str, fd: int) -> str:
        """The strong ETag of the bytes behind ``fd`` (a streamed media file), hashed
        once per identity (inode, mtime, size), as :meth:`read` finds bodies: a publish
        may have renamed a new file into place after this worker read the manifest,
        and an ETag must name the very body sent (replicas, caches)."""
        st = os.fstat(fd)
        key = (filename, st.st_ino, st.st_mtime_ns, st.st_size)
        etag = self._etags.get(key)
        if etag is None:
            etag = etag_of_open(fd)
            self._remember(key, etag)
        return etag

    def _remember(self, identity: tuple[str, int, int, int], etag: str) -> None:
        """Note the ETag of a file identity's bytes; bounded (identities of replaced
        files accumulate): cleared whole at 4,096."""
        if len(self._etags) >= 4096:
            self._etags.clear()
        self._etags[identity] = etag

    def folder(self, folder: str) -> Folder:
        """A :class:`Folder` of the output for many reads (close it, or use ``with``)."""
        return Folder(str(self.root), folder)

    def identity(self, filename: str) -> tuple[int, int, int] | None:
        """The file's identity now (inode, mtime, size; as :meth:`read` keys bodies), or
        None if it is not there: one ``lstat``, nothing read."""
        try:
            st = os.lstat(os.path.join(self.root, filename))
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read(self, filename: str, etag: str | None = None) -> tuple[str, bytes] | None:
        """(ETag, body) of the file, or None if it is not there.

        ``etag``: the one the current manifest gives the file.  A body this worker holds
        with exactly that ETag is the one the manifest names, and is answered without a
        look at the disk: a publish renames every file into place before it renames the
        new manifest, so until the manifest changes, its body is the one to send (a file
        renamed in ahead of it is sent from the next request that finds the manifest
        naming it).  Otherwise the path's identity (``lstat``: inode, mtime, size) is
        looked up, and a body read for that identity is the current one (publishing
        never rewrites a file in place); failing that, the file is opened, its own
        descriptor ``fstat``-ed and read.  Either way the ETag is computed from the very
        bytes sent.
        """
        if etag:
            found = self.cache.get((filename, etag))
            if found is not None:
                return found
        path = os.path.join(self._root, filename)
        try:
            st = os.lstat(path)
        except OSError:
            return None
        known = self._etags.get((filename, st.st_ino, st.st_mtime_ns, st.st_size))
        found = self.cache.get((filename, known)) if known is not None else None
        return found if found is not None else self._load_body(filename, path)

    def _load_body(self, filename: str, path: str) -> tuple[str, bytes] | None:
        try:
            read = _read_regular(open_beneath(self._root, filename))
        except OSError:
            return None
        if read is None:
            return None
        st, body = read
        found = (etag_of(body), body)
        self._remember((filename, st.st_ino, st.st_mtime_ns, st.st_size), found[0])
        self.cache.put((filename, found[0]), found)
        return found


class Folder:
    """One folder of the output, opened once (beneath the root, no link followed, as
    :func:`open_beneath` opens) for the many files one request reads in it: a ``q``
    scan reads the item record of every article it has not read before, up to the
    whole history.  A read through the root opened five descriptors per record and kept
    its body in the :class:`BodyCache` (with its ETag, a SHA-256), so a long scan pushed
    the published feeds out of that cache.  Here a record costs one ``openat`` and one
    read, and is not cached (benchmarks/README.md, "``q`` at 50,000 articles").  Opened
    on first use; closed by ``close`` (a ``with`` block).
    """

    def __init__(self, root: str, folder: str) -> None:
        self._root = root
        self._folder = folder
        self._fd: int | None = None

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            _close(self._fd)
            self._fd = None

    def _opened(self) -> int | None:
        if self._fd is None:
            try:
                self._fd = open_beneath(self._root, self._folder, directory=True)
            except OSError:
                return None
        return self._fd

    def identity(self, name: str) -> tuple[int, int, int] | None:
        """As :meth:`Store.identity` gives it for this folder's file ``name``."""
        fd = self._opened() if _plain_name(name) else None
        if fd is None:
            return None
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read(self, name: str) -> bytes | None:
        """The bytes of this folder's regular file ``name`` (a plain name, no link), or
        None."""
        found = self.identified(name)
        return found[1] if found is not None else None

    def identified(self, name: str) -> tuple[tuple[int, int, int], bytes] | None:
        """:meth:`identity` and :meth:`read` of one opened file (its own ``fstat``: a
        file renamed into place between a ``stat`` and an ``open`` cannot pair one file's
        identity with another's bytes), or None."""
        folder = self._opened() if _plain_name(name) else None
        if folder is None:
            return None
        try:
            # O_NONBLOCK: opening a FIFO someone left here must not wait for a writer.
            read = _read_regular(os.open(name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK,
                                         dir_fd=folder))
        except OSError:
            return None
        if read is None:
            return None
        st, body = read
        return (st.st_ino, st.st_mtime_ns, st.st_size), body


# A part of the manifest as a worker keeps it: its entries, and what _found finds there.
_Part = tuple[dict[str, Any], dict[str, dict[str, Any]], list[str], set[str]]


def _found(listed: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str], set[str]]:
    """The deltas, the served feeds' paths and the feeds' media types among some manifest
    entries (each entry is judged by itself, so a part's are found once).

    One pass over every entry, the least done for each: at 50,000 articles there are
    124,750 of them, 50,114 the build's own (query records); the checks of
    :class:`InternalFiles` and :class:`PreparedFiles` run only on the few kept here.
    """
    internal = InternalFiles(listed)
    deltas: dict[str, dict[str, Any]] = {}
    feeds: list[str] = []
    for path, meta in listed.items():
        if path.startswith(META_DIR):
            if isinstance(meta, dict) and "delta" in meta and path in internal:
                deltas[path] = meta
        elif isinstance(meta, dict) and meta.get("format"):
            feeds.append(path)
    feeds = [path for path in feeds
             if safe_path(path) and manifest.feed_format(listed[path])]
    return deltas, feeds, {str(listed[path].get("media_type") or "") for path in feeds}


def _plain_name(name: str) -> bool:
    """A file name of its folder: no separator, not a dot-name (so not ``..``)."""
    return bool(name) and "/" not in name and "\\" not in name and "\0" not in name \
        and not name.startswith(".")


def open_beneath(root: str, filename: str, directory: bool = False) -> int:
    """Open ``root/filename`` for reading, following no symbolic link below ``root``.

    ``O_NOFOLLOW`` alone guards only the last component: a folder of the
    output swapped for a link (``topics/x -> /etc``) would still be followed,
    so each folder is opened relative to the one above it, without following.
    ``directory``: ``filename`` names a folder (opened for :class:`Folder`).

    Each folder is closed at once by ``close(2)`` itself (:data:`_close`), not by
    ``os.close``: in a gunicorn gevent worker (the server before granian; any WSGI server
    may run the app) that is gevent's (gevent >= 25.8.1), which
    leaves the closing of anything but a regular file to its event loop, in case an I/O
    watcher still uses it.  These folders never have one, and a request that computes
    (a search reading thousands of item records) gives the loop no turn until it ends:
    it kept four folders open per record until the worker ran out of descriptors and
    answered 503 (tests/system/test_worker_fds.py; benchmarks/README.md, "Open files in
    a web worker").
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        *folders, name = filename.split("/")
        for folder in folders:
            inner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=fd)
            _close(fd)
            fd = inner
        # O_NONBLOCK: opening a FIFO left in the output must not wait for a writer.
        last = os.O_DIRECTORY if directory else _NONBLOCK
        return os.open(name, os.O_RDONLY | _NOFOLLOW | last, dir_fd=fd)
    finally:
        _close(fd)


def _read_regular(fd: int) -> tuple[os.stat_result, bytes] | None:
    """The status and whole bytes of the open ``fd`` when it is a regular file (else
    None); ``fd`` is closed either way."""
    try:
        st = os.fstat(fd)
        return (st, _read_all(fd, st.st_size)) if stat.S_ISREG(st.st_mode) else None
    finally:
        _close(fd)


def _read_all(fd: int, size: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, max(size, 65536)):
        chunks.append(chunk)
    return b"".join(chunks)
