"""What the web app decides for browsers and other sites: pure functions of a request's facts.

* A feed URL opened in a browser gets the channel's readable page (its
  ``feed.html``, which the build publishes beside the feeds) instead of raw XML or JSON,
  chosen from the ``Accept`` header; everything else (feed readers, ``*/*``, no
  ``Accept``, scripts' ``fetch``) gets the feed.  Both answers vary on
  ``Accept``, and the page is ``Cache-Control: private`` (see
  :func:`cache_scope`).  Why HTML and not an XSLT stylesheet: Chromium shows
  ``application/rss+xml`` as plain text and has deprecated XSLT, so XSLT would
  need content negotiation anyway *and* a second renderer in a dying language;
  pre-rendered HTML needs neither, and the feed bytes stay untouched for readers
  and the validation gate.
* Pages under ``embed/`` may be framed by the sites ``frame_ancestors`` names.
* A widget for a channel that does not exist (any more) gets the loader that
  shows "feed unavailable": a 404 script would not run, and the host page would
  show a console error instead of a quiet note.

Which files are feeds, and with which media types, the manifest says (each
entry's ``format``): the web app knows no feed format of its own.  Kept apart
from :mod:`feedserver.web.app` so the rules can be tested without Flask, and
cached, so a request pays a dictionary lookup for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from feedserver.config import Settings
from feedserver.core import layout

# Besides the published feeds' own types, what a feed reader may ask for.
READER_TYPES = ("application/rdf+xml", "application/xml", "text/xml", "application/json")
MAX_ACCEPT = 2048  # longer headers are not browsers' navigations; not worth parsing


def _ranges(accept: str) -> dict[str, float]:
    """``Accept`` -> quality by media range (``text/html``, ``text/*``, ``*/*``).

    A bad q value counts as 0; the first occurrence of a range wins.
    """
    ranges: dict[str, float] = {}
    for part in accept.lower().split(","):
        media, *params = part.split(";")
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges.setdefault(media.strip(), quality)
    return ranges


def _quality(ranges: dict[str, float], media: str) -> float:
    """Quality of ``media`` from its most specific matching range (RFC 9110 §12.5.1)."""
    for key in (media, media.partition("/")[0] + "/*", "*/*"):
        if key in ranges:
            return ranges[key]
    return 0.0


def feed_like(feed_types: Iterable[str]) -> tuple[str, ...]:
    """Media types HTML must beat: the published feeds' (from the manifest) and
    :data:`READER_TYPES`."""
    return (*sorted({kind.split(";")[0].strip() for kind in feed_types}), *READER_TYPES)


@lru_cache(maxsize=256)
def prefers_html(accept: str, feed_types: tuple[str, ...]) -> bool:
    """True when ``text/html`` is strictly preferred over every feed and XML type.

    Browsers' navigations (``text/html,...,application/xml;q=0.9,*/*;q=0.8``)
    say so; ``*/*``, an empty header, and readers listing feed types (even
    with ``text/html`` among them at equal or lower quality) do not.  ``feed_types``
    is :func:`feed_like` of the published feeds.  Only a
    header naming ``text/html`` can say so (any wildcard that matches it
    matches ``text/xml`` as well), which keeps readers' requests off the
    parser.  Parsed here rather than with Werkzeug's ``MIMEAccept``: its
    ``quality`` takes the highest-quality match, not the most specific one,
    and is slower for this rule.
    """
    if "text/html" not in accept.lower() or len(accept) > MAX_ACCEPT:
        return False
    ranges = _ranges(accept)
    html = _quality(ranges, "text/html")
    return html > 0 and all(html > _quality(ranges, kind) for kind in feed_types)


def html_alternate(path: str, feed_format: str) -> str | None:
    """The readable page of a feed file (``topics/x/feed.rss`` -> ``topics/x/feed.html``);
    None for a file that is not a feed (its manifest entry names no format)."""
    return layout.preview_path(path.rpartition("/")[0]) if feed_format else None


def varies_on_accept(path: str, feed_format: str) -> bool:
    """Feeds and their readable pages: a cache must key them by ``Accept``."""
    return bool(feed_format) or layout.is_preview(path)


def cache_scope(path: str) -> str:
    """``private`` for the page served in place of a feed, else ``public``.

    Shared caches that ignore ``Vary: Accept`` (several CDNs do, for anything
    but images) could otherwise hand a browser's HTML to the next feed reader;
    kept out of them, the page cannot poison a feed URL, and browsers still
    cache it for themselves.
    """
    return "private" if layout.is_preview(path) else "public"


def frame_ancestors(settings: Settings, path: str) -> str:
    """CSP ``frame-ancestors`` for an HTML file: configurable for embeds, else same origin."""
    if not layout.is_embed(path):
        return "'self'"
    sources = " ".join(settings.frame_ancestors.replace(";", " ").replace(",", " ").split())
    return sources or "'none'"
