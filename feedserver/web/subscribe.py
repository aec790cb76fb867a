"""``/subscribe``: what the pages' feed form (``render/templates/query_form.html``) asks
for, as the one canonical URL of that combined or filtered feed, with its RSS, Atom and
JSON Feed links to subscribe to.

A GET form cannot build a path (``topics/a,b/feed.atom``) without a script, and the
pages allow none (their CSP), so the form goes here.  The page is tiny and made here
from the manifest (which topics are published, which formats) and the checked
parameters (:mod:`feedserver.query.params`): no renderer is loaded.  Every link comes
from ``base_url``.  An unknown topic is the site's 404, a bad value a 400 page that says
why.  Empty fields are as if absent (a form sends them all).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from flask import Response, request

from feedserver.config import Settings
from feedserver.core import layout
from feedserver.query.params import ALL, ANY, MAX_TOPICS, BadRequest, Filters
from feedserver.query.params import parse as parse_filters
from feedserver.web.published import NOSNIFF, ServedManifest, content_security_policy

if TYPE_CHECKING:
    from feedserver.web.app import Views

PATH = "subscribe"


def feed_folder(topics: list[str], match: str, snap: ServedManifest) -> str | None:
    """The channel folder of these topics ('' for none), or None if one is unknown."""
    slugs = sorted(set(topics))
    if len(slugs) > MAX_TOPICS:
        raise BadRequest(f"at most {MAX_TOPICS} topics may be combined, {len(slugs)} were "
                         "chosen")
    if not all(layout.channel_file(layout.topic_folder(s), "index.html") in snap.files
               for s in slugs):
        return None
    return layout.topic_folder((ALL if match == "all" else ANY).join(slugs)) if slugs else ""


def feeds(snap: ServedManifest) -> list[tuple[str, str, str]]:
    """(label, media type, file name) of each published feed format, from the manifest."""
    found = []
    for name in snap.feeds:
        if "/" not in name:
            entry = snap.files[name]
            media = next(v for k, v in entry.variants[""].headers if k == "Content-Type")
            label = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}.get(
                name.rpartition(".")[2], name)
            found.append((label, media.split(";")[0], name))
    return sorted(found, key=lambda f: ("rss", "atom", "json").index(f[2][5:])
                  if f[2][5:] in ("rss", "atom", "json") else 9)


def page(views: Views) -> Response:
    """The answer to the feed form (see the module)."""
    store = views.store
    settings = views.settings
    snap = store.snapshot()
    pairs = [(k, v) for k, v in request.args.items(multi=True) if v.strip()]
    try:
        filters = parse_filters(pairs, settings.max_items)
        folder = feed_folder([v for k, v in pairs if k == "topic"],
                             request.args.get("match", "any"), snap)
    except BadRequest as exc:
        return _page(settings, 400, "Not a feed this site can make", f"<p>{_e(exc)}.</p>")
    if folder is None:
        return views.error(404, PATH)
    return _page(settings, 200, "Subscribe", _links(settings.base_url, folder, filters, snap))


def _e(value: object) -> str:
    return html.escape(str(value))


def _links(base_url: str, folder: str, filters: Filters, snap: ServedManifest) -> str:
    query = filters.query()
    items = []
    for label, media, filename in feeds(snap):
        url = layout.url(base_url, layout.channel_file(folder, filename)) + \
            (f"?{query}" if query else "")
        items.append(f'<li><a class="feed" type="{_e(media)}" href="{_e(url)}">{_e(label)}</a> '
                     f"<code>{_e(url)}</code></li>")
    return ("<p>Your feed, in every format: copy a link into your feed reader.</p>\n"
            f'<ul class="feeds subscribe">\n{"".join(items)}\n</ul>\n'
            f'<p><a href="{_e(base_url)}">Back</a></p>')


def _page(settings: Settings, code: int, title: str, body: str) -> Response:
    site = _e(settings.site_title)
    root = layout.root_path(settings.base_url)
    text = (f'<!doctype html>\n<html lang="{_e(settings.language)}">\n<head>\n'
            f'<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, '
            f'initial-scale=1">\n<meta name="robots" content="noindex">\n'
            f"<title>{_e(title)} · {site}</title>\n"
            f'<link rel="stylesheet" href="{root}{layout.STYLESHEET}">\n'
            f'<link rel="icon" href="{root}{layout.FAVICON}" type="image/svg+xml">\n'
            "</head>\n<body>\n"
            f'<header class="site"><a class="home" href="{_e(settings.base_url)}">'
            f"{site}</a></header>\n<main>\n<h1>{_e(title)}</h1>\n{body}\n</main>\n"
            "</body>\n</html>\n")
    headers = [NOSNIFF, ("Cache-Control", "no-store"),
               ("Content-Security-Policy", content_security_policy(settings, PATH))]
    return Response(text, code, headers, content_type="text/html; charset=utf-8")
