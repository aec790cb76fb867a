"""The request fast path: published files answered before Flask is entered.

Most requests a feed server gets are GETs of a feed (a 304 when the reader polls
politely).  Through Flask such a request costs about 300 µs of a worker's time on
the 2-core benchmark machine, most of it in the request context, URL routing and
response machinery around a view that itself needs a dictionary lookup and one
``lstat`` (benchmarks/README.md, "Serving").  :class:`FastPath` is a WSGI wrapper in
front of Flask that answers GET and HEAD of a file the manifest lists, from the
Store's prepared variants (:class:`feedserver.web.published.Store`), with exactly
the status, headers and body :meth:`feedserver.web.app.Views.file` gives:
ETag and Last-Modified, 304 by the same rules, gzip/br by ``Accept-Encoding``,
the feed-or-page choice by ``Accept``, Vary, CORS, Cache-Control, the poll budget's
429.  Everything else goes to Flask unchanged: other methods, media files (byte
ranges), redirects, 404 and 410, non-ASCII paths, the app's own routes
(``/healthz``, ``/metrics``, ``/websub``), and any request the fast path fails on.
A filtered or combined feed (a query string, ``topics/a,b/``) is answered here too when
its answer is a computed feed, by the very code of Flask's view (:meth:`Filtered.fast`).

It sits inside the metrics wrapper (:class:`feedserver.web.metrics.Counting`), so
every answer is counted as before, and under the WSGI server, whose access log
sees every request alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from feedserver.web.app import _BODY_HEADERS, Views, file_key
from feedserver.web.filtered import Filtered
from feedserver.web.negotiate import prefers_html

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
METHODS = frozenset({"GET", "HEAD"})


class FastPath:
    """WSGI wrapper: published files straight from the Store, the rest to ``app``."""

    def __init__(self, views: Views, flask: Flask, filtered: Filtered | None = None) -> None:
        self.views = views
        self.store = views.store
        self.flask = flask
        self.app: WSGIApp = flask.wsgi_app
        self.filtered = filtered
        self._reserved: tuple[frozenset[str], tuple[str, ...]] | None = None

    def reserved(self, path: str) -> bool:
        """Whether one of the app's own routes (``/healthz``, any a later change adds)
        may match ``path``; the routes are read on the first request, when all are added."""
        if self._reserved is None:
            rules = [rule for rule in self.flask.url_map.iter_rules() if rule.endpoint != "file"]
            self._reserved = (frozenset(r.rule for r in rules if not r.arguments),
                              tuple(r.rule.partition("<")[0] for r in rules if r.arguments))
        exact, prefixes = self._reserved
        return path in exact or path.startswith(prefixes)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        try:
            answer = self.answer(environ)
        except Exception:  # Flask answers it again, with its error handling and logging
            answer = None
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return body

    def answer(self, environ: dict[str, Any]
               ) -> tuple[str, list[tuple[str, str]], Iterable[bytes]] | None:
        """(status, headers, body) as :meth:`Views.file` would answer, or None: ask Flask."""
        method = environ["REQUEST_METHOD"]
        path: str = environ.get("PATH_INFO") or "/"
        if method not in METHODS or not path.isascii() or self.reserved(path):
            return None
        if environ.get("HTTP_A_IM"):
            return None  # a delta: Flask's views compute those
        if environ.get("QUERY_STRING") or "," in path or "+" in path:
            return self.computed(environ, path[1:])
        key = file_key(path[1:])
        snap = self.store.snapshot()
        entry = snap.files.get(key) if key else None
        if entry is None or entry.ranges:
            return None
        if entry.alternate and prefers_html(environ.get("HTTP_ACCEPT", ""), snap.feed_like):
            entry = snap.files.get(entry.alternate, entry)
            if entry.ranges:
                return None
        chosen = self.views.body(entry, environ.get("HTTP_ACCEPT_ENCODING"))
        if chosen is None:
            return None
        variant, etag, body = chosen
        fresh = etag == variant.etag and entry.last_modified is not None
        validators = [("ETag", etag)]
        if fresh:
            validators.append(("Last-Modified", entry.last_modified))  # type: ignore[arg-type]
        if self.views.not_modified(environ, etag, entry.modified_at if fresh else None):
            kept = [h for h in variant.headers if h[0] not in _BODY_HEADERS]
            return "304 Not Modified", kept + validators, []
        budget = self.views.budget
        if entry.feed and budget is not None and method == "GET":
            wait = budget.spend(environ, entry.channel, entry.max_age)
            if wait:
                refused, status, sent = self.views.too_many(entry, wait).get_wsgi_response(environ)
                return status, sent, refused
        headers = [*variant.headers, ("Content-Length", str(len(body))), *validators]
        return "200 OK", headers, [] if method == "HEAD" else [body]

    def computed(self, environ: dict[str, Any], path: str
                 ) -> tuple[str, list[tuple[str, str]], Iterable[bytes]] | None:
        """A filtered or combined feed's answer as Flask's view gives it
        (:meth:`Filtered.fast`), or None: ask Flask."""
        if self.filtered is None:
            return None
        response = self.filtered.fast(environ, path)
        if response is None:
            return None
        body, status, headers = response.get_wsgi_response(environ)
        return status, headers, body
