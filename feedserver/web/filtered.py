"""Combined channels (``/topics/a,b/feed.atom``, ``/topics/a+b/...``) and filtered feeds
(``?limit=&q=&since=&lang=`` on any feed URL), answered by the web app.

This module sits in front of :meth:`Views.file`: a request with neither a query
string nor a ``,``/``+`` in its path goes straight through (one ``dict`` lookup and a
substring test), and so does any URL whose query string names none of the known
parameters (unknown ones are ignored, as if absent).  The request fast path asks it
first (:meth:`Filtered.fast`, outside Flask), and Flask's view asks the same code for
everything else.  The rest is checked here
(:mod:`feedserver.query.params`, standard library only): a combined path whose slugs
are not sorted is redirected (308, query kept) to the one URL of that set, an unknown
topic is the site's 404, a bad value a 400 with a one-line reason in the feed's own
media family.  Only then is the answer computed, from the index and item records the
build published (:mod:`feedserver.query`, imported on the first such request: the
renderers and feedparser are not loaded in a worker that never answers one), and kept
in a bounded LRU keyed by (path, canonical parameters, manifest version).  Each answer
has its own strong ETag per encoding, its Last-Modified, 304s, CORS, its ``rel="self"``
Link and max-age, like a published feed, but names no WebSub hub (no publish tells one
about it, and the built-in hub refuses its URL as a topic).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import werkzeug.urls  # noqa: F401  (registers the error handler _arguments names)
from flask import Response, request
from werkzeug.datastructures import MultiDict
from werkzeug.http import http_date

from feedserver.core import layout
from feedserver.publish.manifest import etag_of
from feedserver.query.params import BadRequest, Combination, Filters, canonical, combination
from feedserver.query.params import parse as parse_filters
from feedserver.query.pieces import Pieces
from feedserver.web.gzipped import Segments, etag_from
from feedserver.web.published import (
    CORS,
    NOSNIFF,
    Folder,
    PublishedFile,
    ServedManifest,
    Store,
)

if TYPE_CHECKING:
    from feedserver.query.answer import Engine
    from feedserver.query.records import Index
    from feedserver.web.app import Views

_BROTLI_QUALITY = 5  # made at request time, once per answer: fast, most of the gain
# An answer is compressed when first asked for, so at equal quality in Accept-Encoding
# gzip (spliced from its items' kept pieces, web/gzipped.py: about 0.1 ms for a
# 130 kB answer; ISA-L over the whole body took 0.36) goes before br (quality 5: 3.0 ms,
# for 15% fewer bytes); published files, compressed at publish time, prefer br.
REQUEST_TIME = ("gzip", "br")
# Output folders whose records folder a process keeps open, and folders let go but not yet
# closed (RecordFolders).
FOLDERS_KEPT = 4
_XML_ERROR = ('<?xml version="1.0" encoding="utf-8"?>\n'
              '<error xmlns="urn:feedserver:error" status="{code}">{reason}</error>\n')


@dataclass(frozen=True)
class _Computed:
    """A request whose answer is a computed feed: what computing it needs."""

    snap: ServedManifest
    path: str
    folder: str
    combo: Combination | None
    filters: Filters
    sample: PublishedFile


@dataclass
class Cached:
    """One computed answer: bodies by encoding ('' plain), made on first demand."""

    body: bytes
    media_type: str
    updated: datetime
    max_age: int
    self_url: str
    bodies: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    size: int = 0
    pieces: Pieces | None = None  # where the items lie in ``body`` (its gzip's pieces)

    def variant(self, encoding: str, segments: Segments) -> tuple[str, bytes]:
        found = self.bodies.get(encoding)
        if found is None:
            found = self.bodies[encoding] = self._compressed(encoding, segments)
            self.size += len(found[1])
        return found

    def _compressed(self, encoding: str, segments: Segments) -> tuple[str, bytes]:
        """The body in ``encoding`` and its ETag."""
        if encoding == "br":
            import brotli

            body = brotli.compress(self.body, quality=_BROTLI_QUALITY)
        elif encoding == "gzip":  # spliced from the items' kept pieces where it can be
            spliced = segments.spliced(self.body, self.pieces)
            plain = self.bodies.get("")
            if spliced is not None and plain is not None:
                return etag_from(plain[0]), spliced  # named from the plain ETag
            body = spliced if spliced is not None else segments.gzip(self.body, None)
        else:
            body = self.body
        return etag_of(body), body


class AnswerCache:
    """Computed answers, least recently used out first, bounded in bytes.

    The bytes held are counted as answers come, go and gain compressed copies
    (:meth:`variant`), so a put costs the same with ten answers held or ten thousand
    (it summed every answer's size before, at each put and each eviction).
    """

    def __init__(self, max_bytes: int) -> None:
        self._items: OrderedDict[tuple[object, ...], Cached] = OrderedDict()
        self.segments = Segments()  # the items' gzip pieces, shared by every answer
        self._max = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> Cached | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[object, ...], value: Cached) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._items[key] = value
            self._bytes += value.size
            self._evict()

    def variant(self, key: tuple[object, ...], found: Cached,
                encoding: str) -> tuple[str, bytes]:
        """``found``'s body in ``encoding`` (made on first demand), its bytes counted."""
        before = found.size
        made = found.variant(encoding, self.segments)
        if found.size != before:
            with self._lock:
                if self._items.get(key) is found:
                    self._bytes += found.size - before
                    self._evict()
        return made

    def held(self) -> int:
        """Bytes of the answers held, their compressed copies included."""
        return self._bytes

    def _evict(self) -> None:
        # The newest answer stays even alone over the bound: it is being served.
        while len(self._items) > 1 and self._bytes > self._max:
            self._bytes -= self._items.popitem(last=False)[1].size


class RecordFolders:
    """The item records' folder of each output folder, opened once a publish in a process.

    Every answer that read a record opened the folder anew, four folders from the root
    (14 us in a loop, more in a busy worker); here the answers of one publish (one
    manifest version) share one open folder, and the next publish's open it again (a
    build replaces the records in it, and whatever replaced the folder itself).  Kept per
    process, not per app: apps are freed only when the collector finds their cycles, and
    a folder per app held a descriptor each until then.  A folder let go (another
    publish, another output folder past :data:`FOLDERS_KEPT`) is closed only after
    :data:`FOLDERS_KEPT` more: an answer still reading it is not cut short."""

    def __init__(self, limit: int = FOLDERS_KEPT) -> None:
        self._held: OrderedDict[str, tuple[object, Folder]] = OrderedDict()
        self._retired: list[Folder] = []
        self._limit = limit
        self._lock = threading.Lock()

    def folder(self, store: Store, key: object) -> Folder:
        """``store``'s records folder for the manifest version ``key``."""
        root = str(store.root)
        with self._lock:
            held = self._held.get(root)
            if held is None or held[0] != key:
                if held is not None:
                    self._retire(held[1])
                held = self._held[root] = (key, store.folder(layout.ITEM_RECORDS))
            self._held.move_to_end(root)
            while len(self._held) > self._limit:
                self._retire(self._held.popitem(last=False)[1][1])
            return held[1]

    def _retire(self, folder: Folder) -> None:
        self._retired.append(folder)
        while len(self._retired) > self._limit:
            self._retired.pop(0).close()


FOLDERS = RecordFolders()


class Filtered:
    """The view in front of :meth:`Views.file` (see the module)."""

    def __init__(self, views: Views, cache_bytes: int) -> None:
        self.views = views
        self.settings = views.settings
        self.cache = AnswerCache(cache_bytes)
        self._engine: Engine | None = None
        self._index: tuple[object, Index] | None = None
        self._lock = threading.Lock()

    def __call__(self, path: str = "") -> Response:
        """Flask's view: every request for a file, filtered or not."""
        environ = request.environ
        decided = self._decide(environ, path)
        if isinstance(decided, _Computed):
            return self._serve(environ, decided)
        return decided()

    def fast(self, environ: dict[str, Any], path: str) -> Response | None:
        """The answer of a computed feed (200, 304, 429 or 503) without Flask's request
        context and routing, or None when the request is anything else (a redirect, a
        400 or 404, a file, a preflight): Flask's view then answers it, the same way.

        :class:`feedserver.web.fastpath.FastPath` asks here for a GET or HEAD with a
        query string or a combined path: through Flask, such a request cost about 0.15
        ms more, a tenth of a first filtered answer (``benchmarks/query_bench.py``).
        """
        decided = self._decide(environ, path)
        return self._serve(environ, decided) if isinstance(decided, _Computed) else None

    def _decide(self, environ: dict[str, Any], path: str) -> _Computed | Callable[[], Response]:
        """What answers this request: an answer to compute, or another view (a call)."""
        if not environ.get("QUERY_STRING") and "," not in path and "+" not in path:
            return partial(self.views.file, path)
        snap = self.views.store.snapshot()
        combo = combination(path)
        entry = snap.files.get(path) if combo is None else None
        if combo is None and (entry is None or not entry.feed):
            return partial(self.views.file, path)  # a page, a file, a 404: not ours
        sample = self._sample(snap, path if combo is None else combo.filename)
        if sample is None:
            return partial(self.views.file, path)
        media = _media_type(sample)
        query = environ.get("QUERY_STRING", "")
        try:
            filters = parse_filters(_arguments(environ), self.settings.max_items)
            # Without a filter the query string is not ours to judge: it is kept.
            wanted_query = query if filters.empty else filters.query()
            if combo is not None:
                wanted = canonical(combo)
                if wanted != combo:
                    return partial(_moved, f"../{wanted.op.join(wanted.slugs)}/"
                                           f"{wanted.filename}", wanted_query)
                if not all(f"topics/{s}/{combo.filename}" in snap.files for s in combo.slugs):
                    return partial(self.views.error, 404, path)
        except BadRequest as exc:
            return partial(bad_request, str(exc), media, path)
        if combo is None and filters.empty:
            return partial(self.views.file, path)
        if environ["REQUEST_METHOD"] == "OPTIONS":
            return partial(self.views.preflight, sample)
        if query != wanted_query:  # the same answer under another spelling: its one URL
            return partial(_moved, path.rpartition("/")[2], wanted_query)
        folder = path.rpartition("/")[0] if combo is None else combo.folder
        return _Computed(snap, path, folder, combo, filters, sample)

    @staticmethod
    def _sample(snap: ServedManifest, path: str) -> PublishedFile | None:
        """A published feed of this format (its headers are what ours copy)."""
        entry = snap.files.get(path) or snap.files.get(path.rpartition("/")[2])
        return entry if entry is not None and entry.feed else None

    def _serve(self, environ: dict[str, Any], it: _Computed) -> Response:
        key = (it.path, it.filters.query(), it.snap.key)
        found = self.cache.get(key)
        if found is None:
            made = self._compute(it.snap, it.folder, it.combo, it.filters, it.sample, it.path)
            if isinstance(made, Response):
                return made
            found = made
            self.cache.put(key, found)
        return self._respond(environ, key, found, it.sample,
                             it.combo.path if it.combo else it.path)

    def _compute(self, snap: ServedManifest, folder: str, combo: Combination | None,
                 filters: Filters, sample: PublishedFile, path: str) -> Cached | Response:
        from feedserver.query.answer import Unanswerable, format_named

        engine, index = self._loaded(snap)
        fmt = format_named(path.rpartition("/")[2])
        if index is None or fmt is None or (combo is None and folder not in index.channels):
            return unavailable("this feed cannot be filtered until the site is built again",
                               _media_type(sample), path)
        try:
            answer = engine.answer(index, self.views.store.read, folder, combo, filters, fmt,
                                   identify=self.views.store.identity,
                                   texts=self._records(snap))
        except Unanswerable as exc:
            return unavailable(str(exc), _media_type(sample), path)
        cached = Cached(answer.body, answer.media_type, answer.updated, answer.max_age,
                        answer.self_url, size=len(answer.body), pieces=answer.pieces)
        cached.bodies[""] = (answer.etag, answer.body)
        return cached

    def _records(self, snap: ServedManifest) -> Folder:
        """The item records' folder of the manifest version being served (see
        :class:`RecordFolders`)."""
        return FOLDERS.folder(self.views.store, snap.key)

    def _loaded(self, snap: ServedManifest) -> tuple[Engine, Index | None]:
        """The engine (made once) and the index of the manifest version being served."""
        from feedserver.query.answer import Engine
        from feedserver.query.records import read_index

        with self._lock:
            if self._engine is None:
                self._engine = Engine(state_dir=self.settings.state_dir)
            held = self._index
            if held is not None and held[0] == snap.key:
                return self._engine, held[1]
            found = self.views.store.read(layout.QUERY_INDEX)
            try:
                index = read_index(found[1]) if found is not None else None
            except ValueError:
                index = None
            if index is not None:
                self._index = (snap.key, index)
            return self._engine, index

    def _respond(self, environ: dict[str, Any], key: tuple[object, ...], found: Cached,
                 sample: PublishedFile, path: str) -> Response:
        from feedserver.web.app import FileResponse, accepted

        header = environ.get("HTTP_ACCEPT_ENCODING")
        names = [n for n in accepted(header, REQUEST_TIME) if n in sample.variants] \
            if header else []
        encoding = names[0] if names else ""
        etag, body = self.cache.variant(key, found, encoding)
        headers = self._headers(found, sample, encoding)
        validators = [("ETag", etag), ("Last-Modified", http_date(found.updated))]
        if self.views.not_modified(environ, etag, found.updated.astimezone(UTC)):
            kept = [h for h in headers if h[0] not in ("Content-Type", "Content-Encoding")]
            return FileResponse.prepared(b"", kept + validators, 304)
        budget = self.views.budget
        if budget is not None and environ["REQUEST_METHOD"] == "GET":
            wait = budget.spend(environ, f"{path}?{found.self_url.partition('?')[2]}",
                                found.max_age)
            if wait:
                return self.views.too_many(sample, wait)
        return FileResponse.prepared(
            body, [*headers, ("Content-Length", str(len(body))), *validators])

    def _headers(self, found: Cached, sample: PublishedFile,
                 encoding: str) -> list[tuple[str, str]]:
        headers = [("Content-Type", found.media_type), NOSNIFF,
                   ("Cache-Control", f"public, max-age={found.max_age}")]
        if len(sample.variants) > 1:
            headers.append(("Vary", "Accept-Encoding"))
        if sample.cors:
            headers += CORS
        # No hub: a computed feed is no hub's topic (QueryContext.of).
        headers.append(("Link", f'<{found.self_url}>; rel="self"'))
        if encoding:
            headers.append(("Content-Encoding", encoding))
        return headers


def _arguments(environ: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """The query string's arguments, parsed and ordered exactly as ``flask.request.args``
    gives them (werkzeug's ``Request.args``, without building a request: 12 us).  The
    ``werkzeug.url_quote`` error handler is werkzeug's, registered by ``werkzeug.urls``."""
    query = environ.get("QUERY_STRING", "").encode("latin-1").decode()
    pairs = parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote")
    if len({key for key, _ in pairs}) == len(pairs):
        return pairs  # no key twice: werkzeug's order is theirs (a MultiDict was 3-5 us)
    return MultiDict(pairs).items(multi=True)


def _media_type(entry: PublishedFile) -> str:
    return next(v for k, v in entry.variants[""].headers if k == "Content-Type")


def _error(code: int, reason: str, media_type: str, path: str) -> Response:
    """A one-line reason in the feed's media family: JSON for JSON Feed, XML for the
    XML feeds (``application/xml``, so no reader mistakes it for a feed)."""
    headers = [NOSNIFF, ("Cache-Control", "no-store"), *CORS]
    if "json" in media_type or path.endswith(".json"):
        import json

        body = json.dumps({"error": reason, "status": code}) + "\n"
        return Response(body, code, headers, content_type="application/json; charset=utf-8")
    from xml.sax.saxutils import escape

    return Response(_XML_ERROR.format(code=code, reason=escape(reason)), code, headers,
                    content_type="application/xml; charset=utf-8")


def _moved(target: str, query: str) -> Response:
    """308 to the one URL of this answer (``target``: relative to the request's path),
    with ``query`` (the canonical one, or the request's own when it holds no filter)."""
    from feedserver.web.app import Bodiless

    return Bodiless(status=308, headers={"Location": f"{target}?{query}" if query else target})


def bad_request(reason: str, media_type: str, path: str) -> Response:
    """400: a value that cannot be answered, and why."""
    return _error(400, reason, media_type, path)


def unavailable(reason: str, media_type: str, path: str) -> Response:
    """503: the answer cannot be made from what is published now (never a 500)."""
    response = _error(503, reason, media_type, path)
    response.headers["Retry-After"] = "30"
    return response
