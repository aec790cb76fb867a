"""The web shell: serve what the pipeline published, with HTTP done right.

The app is a file server over the output folder (see :mod:`feedserver.web.published`);
it never parses, reads ``seeds/`` or renders: even its 404 and 410 pages are
rendered by the build, in the site's layout (:data:`feedserver.core.layout.ERROR_PAGES`),
and what a file is (a feed, readable by other sites) is read from the manifest.
So a worker imports none of the build (``tests/unit/test_layering.py``).  A URL
maps to the file of the same path (``/topics/x/`` -> ``topics/x/index.html``) and
only files the manifest lists are served, so no URL reaches outside the folder.  Conditional
requests go through Werkzeug's ``is_resource_modified`` (If-None-Match wins
over If-Modified-Since); precompressed bodies are chosen by Accept-Encoding,
each with its own ETag.  The Host header is never used: every URL in the
bodies was baked from ``base_url`` at build time, and the folder redirect is
relative (``SCRIPT_NAME``, which a proxy may set, never reaches a header).
Answers without a body (304, 204, 308) carry no ``Content-Type``: a cache
refreshing a stored feed's headers from a 304 must not relabel it as HTML.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import is_resource_modified, parse_accept_header
from werkzeug.wsgi import wrap_file

from feedserver.config import Settings, load_settings
from feedserver.core.layout import (
    ENCODINGS,
    ERROR_PAGES,
    ERRORS,
    INDEX,
    UNKNOWN,
    folder_page,
    is_loader_path,
)
from feedserver.publish.manifest import read_status
from feedserver.web import deltas, health, metrics, subscribe, websub
from feedserver.web.filtered import Filtered
from feedserver.web.negotiate import prefers_html
from feedserver.web.politeness import PollBudget, refusal
from feedserver.web.published import (
    CORS,
    NOSNIFF,
    PublishedFile,
    ServedManifest,
    Store,
    Variant,
    content_security_policy,
    open_beneath,
    safe_path,
)

PREFERENCE = tuple(ENCODINGS)  # br, then gzip, on equal quality
_BODY_HEADERS = frozenset({"Content-Type", "Content-Encoding"})  # not sent with a 304


class Bodiless(Response):
    """A response with no body (204, 304, 308), so nothing to label with a media type.

    Werkzeug would add its default ``Content-Type: text/html`` to any
    response that names none.
    """

    default_mimetype = None


class FileResponse(Bodiless):
    """A response whose headers the view built completely, sent as they are.

    Werkzeug checks every header again on each ``add`` and copies them all in
    ``get_wsgi_headers``; for a file server that per-request work cost more
    than everything else the view does (see benchmarks/serve_bench.py).  The
    Store builds and checks the headers once per publish, so they go out as
    they are.  A 304 keeps Last-Modified, which Werkzeug would drop with the
    entity headers: a 304 must carry the validators a cache refreshes from
    (RFC 9110 §15.4.5), and pollers that only send If-Modified-Since need it.
    """

    automatically_set_content_length = False  # the view sets it for the body sent

    @classmethod
    def prepared(cls, body: bytes, headers: list[tuple[str, str]],
                 status: int = 200) -> FileResponse:
        trusted = Headers()
        trusted._list = headers
        return cls(body, status, headers=trusted)

    def get_wsgi_headers(self, environ: Any) -> Any:
        return self.headers


@lru_cache(maxsize=256)
def accepted(header: str, preference: tuple[str, ...] = PREFERENCE) -> tuple[str, ...]:
    """Our encodings the client accepts, best first: by quality, then in ``preference``
    (br over gzip for files compressed once, at publish time)."""
    accept = parse_accept_header(header)
    ranked = [(accept[name], -rank, name) for rank, name in enumerate(preference)
              if accept[name] > 0]
    return tuple(name for *_, name in sorted(ranked, reverse=True))


def file_key(path: str) -> str | None:
    """URL path (no leading slash) -> output file, or None when it cannot be one."""
    key = f"{path}{INDEX}" if path == "" or path.endswith("/") else path
    return key if safe_path(key) else None


def plain_error_page(settings: Settings, code: int) -> bytes:
    """The 404/410 page before the build has published its own (nothing built yet)."""
    title, text = ERRORS[code]
    site = html.escape(settings.site_title)
    return (f'<!DOCTYPE html>\n<html lang="{html.escape(settings.language)}">\n'
            f'<head><meta charset="utf-8"><title>{title} · {site}</title></head>\n'
            f"<body><h1>{title}</h1><p>{text}</p></body>\n</html>\n").encode()


class Views:
    """The routes, bound to one Store (no module-level state, no app lookups)."""

    def __init__(self, store: Store, clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.settings = store.settings
        self.max_age = f"public, max-age={store.settings.refresh_interval}"
        self.clock = clock or (lambda: datetime.now(UTC))
        self.plain_errors = {code: plain_error_page(self.settings, code) for code in ERRORS}
        self.budget = PollBudget.from_settings(self.settings)  # None: poll_budget = 0

    def file(self, path: str = "") -> Response:
        """Serve a published file: 200 or 304, the best precompressed body."""
        snap = self.store.snapshot()
        key = file_key(path)
        entry = snap.files.get(key) if key else None
        if entry is None:
            return self.missing(snap, path, key)
        alternate = entry.alternate
        if alternate and prefers_html(request.environ.get("HTTP_ACCEPT", ""), snap.feed_like):
            entry = snap.files.get(alternate, entry)  # a browser: the feed as a page
        if request.method == "OPTIONS":
            return self.preflight(entry)
        if entry.ranges:
            return self.media(entry, path)
        environ = request.environ
        header = environ.get("HTTP_ACCEPT_ENCODING")
        chosen = self.body(entry, header)
        if chosen is None:
            return self.error(404, path)
        variant, etag, body = chosen
        # A body newer than the manifest (a publish in progress) gets no date.
        fresh = etag == variant.etag and entry.last_modified is not None
        validators = [("ETag", etag)]
        if fresh:
            validators.append(("Last-Modified", entry.last_modified))
        if self.not_modified(environ, etag, entry.modified_at if fresh else None):
            kept = [h for h in variant.headers if h[0] not in _BODY_HEADERS]
            return FileResponse.prepared(b"", kept + validators, 304)
        if entry.feed and fresh and "HTTP_A_IM" in environ and "HTTP_IF_NONE_MATCH" in environ:
            delta = deltas.answer(snap.deltas, key or "", entry, environ, self.store,
                                  (*accepted(header), "") if header else ("",), validators)
            if delta is not None:  # RFC 3229: only what is new since the ETag it holds
                return FileResponse.prepared(*delta, 226)
        if entry.feed and self.budget is not None and environ["REQUEST_METHOD"] == "GET":
            wait = self.budget.spend(environ, entry.channel, entry.max_age)
            if wait:
                return self.too_many(entry, wait)
        return FileResponse.prepared(
            body, [*variant.headers, ("Content-Length", str(len(body))), *validators])

    def body(self, entry: PublishedFile, accept_encoding: str | None
             ) -> tuple[Variant, str, bytes] | None:
        """The variant the client takes (its preferred encoding that is there, else the
        plain body), with the ETag and bytes read for it; None if none can be read.
        Shared by the Flask view and the fast path (:mod:`feedserver.web.fastpath`)."""
        for name in (*accepted(accept_encoding), "") if accept_encoding else ("",):
            variant = entry.variants.get(name)
            found = self.store.read(variant.filename, variant.etag) if variant else None
            if variant is not None and found is not None:
                return variant, *found
        return None

    def media(self, entry: PublishedFile, path: str) -> Response:
        """A media file, streamed from its descriptor (a podcast episode is never read
        whole into memory): byte ranges (206, 416; ``If-Range`` honoured) and
        conditional requests by Werkzeug's conditional response, for players that seek
        and downloads that resume.  Its one-year cache holds only for the versioned URL
        (``?v=``) feeds and pages use: the same file asked for without it may change,
        so it gets the feeds' max-age."""
        variant = entry.variants[""]
        headers = [h for h in variant.headers if h[0] != "Cache-Control"]
        headers.append(("Cache-Control", next(v for k, v in variant.headers
                                              if k == "Cache-Control")
                        if request.args.get("v") else self.max_age))
        try:
            fd = open_beneath(str(self.store.root), variant.filename)
        except OSError:
            return self.error(404, path)
        # The ETag of the bytes opened: the manifest's, unless a publish replaced the
        # file since this worker read it (then no Last-Modified of the old one either).
        etag = self.store.etag_of_open(variant.filename, fd)
        current = etag == variant.etag
        headers.append(("ETag", etag))
        if not current:  # a versioned URL's year-long cache named the old bytes
            headers = [h for h in headers if h[0] != "Cache-Control"]
            headers.append(("Cache-Control", self.max_age))
        if entry.last_modified and current:
            headers.append(("Last-Modified", entry.last_modified))
        if self.not_modified(request.environ, etag, entry.modified_at if current else None):
            os.close(fd)
            return FileResponse.prepared(b"", [h for h in headers if h[0] not in _BODY_HEADERS],
                                         304)
        size = os.fstat(fd).st_size
        handle = os.fdopen(fd, "rb")
        response = Response(wrap_file(request.environ, handle), 200, headers,
                            direct_passthrough=True)
        response.content_length = size
        try:
            return response.make_conditional(request.environ, accept_ranges=True,
                                             complete_length=size)
        except RequestedRangeNotSatisfiable:
            handle.close()
            raise

    def too_many(self, entry: PublishedFile, wait: int) -> Response:
        """429 for a client over its poll budget (:mod:`feedserver.web.politeness`)."""
        headers = [NOSNIFF, ("Retry-After", str(wait)), ("Cache-Control", "no-store")]
        if entry.cors:
            headers += [*CORS[:1], ("Access-Control-Expose-Headers", "Retry-After")]
        return Response(refusal(entry.max_age, wait), 429, headers,
                        content_type="text/plain; charset=utf-8")

    @staticmethod
    def not_modified(environ: dict[str, Any], etag: str, modified: datetime | None) -> bool:
        """Werkzeug's If-None-Match / If-Modified-Since rules, asked only when they apply.

        A poller sending back exactly the ETag it got is the common case and a
        match under any rule, so it skips the header parsing.
        """
        match = environ.get("HTTP_IF_NONE_MATCH")
        if match == etag:
            return True
        if match is None and "HTTP_IF_MODIFIED_SINCE" not in environ:
            return False
        return not is_resource_modified(environ, etag=etag, last_modified=modified)

    def preflight(self, entry: PublishedFile) -> Response:
        """CORS preflight for scripts that send conditional headers themselves."""
        response = Bodiless(status=204, headers={"Allow": "GET, HEAD, OPTIONS"})
        if entry.cors:
            response.headers.update(CORS)
            response.headers["Access-Control-Allow-Methods"] = "GET, HEAD"
            response.headers["Access-Control-Allow-Headers"] = "If-None-Match, If-Modified-Since"
            response.headers["Access-Control-Max-Age"] = "86400"
        return response

    def missing(self, snap: ServedManifest, path: str, key: str | None) -> Response:
        """410 for what a publish removed, 308 to add a folder's slash, else 404.

        A widget of a channel that does not exist gets the loader that says
        "feed unavailable" (a 404 script would not run in the host page).
        """
        if key is not None and is_loader_path(key) and UNKNOWN in snap.files:
            return self.file(UNKNOWN)
        if key is not None and key in snap.gone:
            return self.error(410, path)
        if key is not None and folder_page(key) in snap.files:
            return self.to_folder(path)
        return self.error(404, path)

    def to_folder(self, path: str) -> Response:
        """308 to the folder's URL, relative to the one asked for (``./energy/``).

        Relative, because the request's ``SCRIPT_NAME`` is not ours to trust: a
        proxy on the same host may set it, and ``//evil.example`` there made
        ``Location: //evil.example/topics/`` (an open redirect, cached).  A
        relative reference resolves against the URL the client itself used,
        prefix included, so it is right behind any proxy and at any address.
        """
        query = request.query_string.decode("latin-1")
        target = f"./{path.rpartition('/')[2]}/" + (f"?{query}" if query else "")
        return Bodiless(status=308, headers={"Location": target,
                                             "Cache-Control": self.max_age})

    def error(self, code: int, path: str) -> Response:
        """The site's 404/410 page (JSON for .json paths); nothing from the request echoed."""
        title, text = ERRORS[code]
        headers = [NOSNIFF, ("Cache-Control", self.max_age), *CORS]
        if path.endswith(".json"):
            body = json.dumps({"error": title.lower(), "status": code, "message": text})
            return Response(body, code, headers, content_type="application/json; charset=utf-8")
        headers.append(("Content-Security-Policy", content_security_policy(self.settings, "")))
        return Response(self.error_page(code), code, headers,
                        content_type="text/html; charset=utf-8")

    def error_page(self, code: int) -> bytes:
        """The build's page for ``code`` as published now, else a plain one."""
        page = ERROR_PAGES[code]
        found = self.store.read(page) if page in self.store.snapshot().internal else None
        return found[1] if found is not None else self.plain_errors[code]

    def is_feed(self, path: str) -> bool:
        """Whether ``path`` is a feed published now (a WebSub topic of this site)."""
        entry = self.store.snapshot().files.get(path)
        return entry is not None and entry.feed

    def channels(self) -> int:
        """Channels published now: the folders that hold a feed (for /metrics)."""
        return len({path.rpartition("/")[0] for path in self.store.snapshot().feeds})

    def healthz(self) -> Response:
        """Status and counts only (:mod:`feedserver.web.health`); 503 until a build succeeded.

        ``?strict`` answers 503 for anything but "ok", for monitors that only
        read the status code.
        """
        status = read_status(self.store.root)
        code, body = health.report(status, len(self.store.snapshot().files), self.clock(),
                                   self.settings.stuck_seconds)
        hub = websub.health(self.settings)
        if hub is not None:
            body["websub"] = hub
            if body["status"] == "ok" and ("hub_error" in hub or "error" in hub):
                body["status"] = "degraded"
        if "strict" in request.args and body["status"] != "ok":
            code = 503
        return Response(json.dumps(body), code, [NOSNIFF, ("Cache-Control", "no-store")],
                        content_type="application/json")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """App factory: settings from ``config`` (or config.toml / FEEDSERVER_*), routes.

    ``FEEDSERVER_SETTINGS`` may hold a ready :class:`Settings`; otherwise
    ``FEEDSERVER_CONFIG`` names a config file (default ./config.toml when present).
    Nothing is started here: no build, no scheduler.
    """
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(FEEDSERVER_SETTINGS=None, FEEDSERVER_CONFIG=None,
                            FEEDSERVER_CACHE_BYTES=64 * 1024 * 1024,
                            FEEDSERVER_QUERY_CACHE_BYTES=16 * 1024 * 1024)
    app.config.from_mapping(config or {})
    settings = app.config["FEEDSERVER_SETTINGS"]
    if settings is None:
        path = app.config["FEEDSERVER_CONFIG"]
        if path is None and not os.environ.get("FEEDSERVER_CONFIG") \
                and Path("config.toml").is_file():
            path = "config.toml"
        settings = load_settings(path)
    views = Views(Store(settings, app.config["FEEDSERVER_CACHE_BYTES"]))
    app.extensions["feedserver"] = views
    app.add_url_rule("/healthz", "healthz", views.healthz)
    websub.register(app, settings, views.is_feed)
    methods = ["GET", "HEAD", "OPTIONS"]
    # Combined channels and filtered feeds (web/filtered.py) in front of the files.
    files = Filtered(views, app.config["FEEDSERVER_QUERY_CACHE_BYTES"])
    app.add_url_rule(f"/{subscribe.PATH}", "subscribe", lambda: subscribe.page(views))
    app.add_url_rule("/", "file", files, methods=methods, provide_automatic_options=False)
    app.add_url_rule("/<path:path>", "file", files, methods=methods,
                     provide_automatic_options=False)
    if app.config.get("FEEDSERVER_FAST_PATH", True):  # False: every request through Flask
        from feedserver.web.fastpath import FastPath  # it builds on this module's Views

        app.wsgi_app = FastPath(views, app, files)  # type: ignore[method-assign]
    metrics.register(app, settings, views.channels, lambda: views.error(404, "metrics"))
    return app
