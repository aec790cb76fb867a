"""Pure: a :class:`Site` -> what other sites and browsers get besides the feeds.

* ``embed/<channel>.js``: the headline widget a page includes with one
  ``<script>`` tag.  Each is a tiny loader holding only its channel's JSON Feed
  URL; the logic lives once in ``static/embed-widget.js`` (versioned by its
  hash), so a page with three widgets downloads it once and N channels do not
  carry N copies of it.
* ``static/embed-unknown.js``: the loader the web app answers for a channel
  that does not exist (any more); it shows the widget's quiet "feed
  unavailable" text instead of a script error in the host page.
* ``embed/<channel>/index.html``: the same headlines as a compact page for an
  ``<iframe>``; every link opens in a new tab.
* ``<channel>/feed.html``: what a browser gets when it opens a feed URL (the
  web app negotiates on ``Accept``): the items and how to subscribe.
* ``static/favicon.svg``: the icon every page links, so browsers do not ask
  for a ``/favicon.ico`` that is not there (a console error on every page).

Like the pages, everything is rendered once per build from the Site, every URL
from ``base_url`` and every date from content, so the bytes (and ETags) only
change when what a reader sees does.  Templates autoescape; feed data never
reaches the widget's DOM as HTML (it uses textContent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, partial
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from feedserver.core import layout
from feedserver.core.layout import (
    FAVICON,
    FRAME_CSS,
    STYLESHEET,
    UNKNOWN,
    WIDGET,
    asset_url,
    frame_path,
    loader_path,
    root_path,
)
from feedserver.core.media import image_of
from feedserver.core.records import Channel, Rendered
from feedserver.render import i18n
from feedserver.render.formats import jsonfeed
from feedserver.render.pages import (
    HTML_TYPE,
    MONTHS,
    FeedLink,
    as_made,
    feed_links,
    site_feeds,
    stylesheet,
)
from feedserver.render.site import EPOCH, Site

JS_TYPE = "application/javascript; charset=utf-8"
CSS_TYPE = "text/css; charset=utf-8"


def preview_path(channel: Channel) -> str:
    """Output path of the page a browser gets for the channel's feed URLs."""
    return layout.preview_path(channel.path)


def _fresh(site: Site, channel: Channel) -> bool:
    """All three views of the channel are published with its signature (pageplan)."""
    return all(path in site.fresh for path in layout.embed_paths(channel.slug, channel.path))


def _js_comment(text: Any) -> str:
    """Text safe inside a one-line ``/* */`` comment."""
    return " ".join(str(text).replace("*/", "* /").split())


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("feedserver.render", "templates"),
                      autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.globals["months"] = MONTHS
    env.globals["image_of"] = image_of  # an item's thumbnail in the iframe view
    env.globals["localdate"] = i18n.date  # the views speak their channel's language
    env.globals["tr"] = i18n.word
    env.globals["nitems"] = i18n.items
    env.filters["js_comment"] = _js_comment
    return env


@lru_cache(maxsize=8)
def asset(name: str) -> bytes:
    """A static file shipped as package data (the widget body, the frame's CSS)."""
    return resources.files("feedserver.render").joinpath(name).read_bytes()


@dataclass(frozen=True)
class _View:
    """A channel with what every one of its views shows: display name and feeds."""

    channel: Channel
    name: str
    feeds: tuple[FeedLink, ...]


class _Embeds:
    """Renders one site's embed files; shared values are computed once."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.base = site.context.base_url
        self.newest = max((c.updated for c in site.channels), default=EPOCH)
        self.widget_url = f"{layout.url(self.base, WIDGET)}?v={layout.version(asset(WIDGET))}"
        self.common: dict[str, Any] = {"site_title": site.context.site_title,
                                       "lang": site.context.language, "base_url": self.base,
                                       "root": root_path(self.base),
                                       "site_feeds": site_feeds(self.base)}
        self.env = _environment()
        self._views: dict[str, _View] = {}

    def made(self, kind: str, channel: Channel) -> Rendered:
        """One of a channel's three files (:data:`_KINDS`), its view drawn once."""
        view = self._views.get(channel.slug)
        if view is None:
            view = self._views[channel.slug] = self.view(channel)
        if kind == "loader":
            return self.loader_file(view)
        return self.frame(view) if kind == "frame" else self.preview(view)

    def view(self, channel: Channel) -> _View:
        topic = self.site.topics.get(channel.slug)
        name = topic.name if topic else "All articles"
        return _View(channel, name, feed_links(self.site, channel))

    def language(self, channel: Channel) -> str:
        """What a channel's views speak: its articles' one language, else the site's."""
        return channel.language or self.site.context.language

    def _render(self, template: str, **values: Any) -> bytes:
        text = self.env.get_template(template).render({**self.common, **values})
        return text.encode("utf-8")

    def loader(self, slug: str, name: str, feed: str | None) -> bytes:
        return self._render("embed_loader.js", channel=slug, name=name, feed=feed,
                            widget_url=self.widget_url,
                            self_url=layout.url(self.base, loader_path(slug or "<channel>")))

    def loader_file(self, view: _View) -> Rendered:
        slug = view.channel.slug
        # The widget reads JSON Feed (static/embed-widget.js), whatever else is registered.
        json_url = self.site.context.feed_url(view.channel, jsonfeed.FORMAT.filename)
        return Rendered(loader_path(slug), self.loader(slug, view.name, json_url), JS_TYPE,
                        self.newest, slug, cors=True)

    def frame(self, view: _View) -> Rendered:
        css = asset_url(self.base, FRAME_CSS, asset(FRAME_CSS))
        body = self._render("embed_frame.html", channel=view.channel, name=view.name,
                            feeds=view.feeds, css_url=css, lang=self.language(view.channel))
        return Rendered(frame_path(view.channel.slug), body, HTML_TYPE, view.channel.updated,
                        view.channel.slug)

    def preview(self, view: _View) -> Rendered:
        channel = view.channel
        css = asset_url(self.base, STYLESHEET, stylesheet())
        body = self._render("embed_feed.html", channel=channel, name=view.name,
                            feeds=view.feeds, articles=channel.articles, css_url=css,
                            canonical=channel.html_url, alternates=view.feeds,
                            description=channel.description, lang=self.language(channel))
        return Rendered(preview_path(channel), body, HTML_TYPE, channel.updated, channel.slug)

    def assets(self) -> list[Rendered]:
        modified: datetime = self.newest
        return [Rendered(WIDGET, asset(WIDGET), JS_TYPE, modified, cors=True),
                Rendered(FRAME_CSS, asset(FRAME_CSS), CSS_TYPE, modified),
                Rendered(FAVICON, asset(FAVICON), "image/svg+xml", modified),
                Rendered(UNKNOWN, self.loader("", "", None), JS_TYPE, modified, cors=True)]


def render_embeds(site: Site, failed: set[str] | frozenset[str] = frozenset()) -> list[Rendered]:
    """Every channel's widget loader, iframe view and feed preview, plus shared assets,
    rendered here (:func:`embed_makers`)."""
    return [make() for make in embed_makers(site, failed)]


def embed_makers(site: Site, failed: set[str] | frozenset[str] = frozenset()
                 ) -> list[Callable[[], Rendered]]:
    """What renders every channel's widget loader, iframe view and feed preview, plus
    the shared assets, one call a file, in a fixed order.

    Like :func:`feedserver.render.pages.page_makers`, so the build's workers render
    and stage a share each: made and staged in the build's own process, a cold build
    of 10,000 articles spent 1.4 s alone on them (1,732 files, 5,196 with their
    compressed bodies) while the workers had nothing to do.  Channels in ``failed``
    (their feeds did not pass validation) are skipped: their files carry the channel's
    slug, so the shell keeps the last good ones, which agree with the feeds it keeps.
    So are channels whose views are all in ``site.fresh``
    (:mod:`feedserver.build.page_signatures`): already published.
    """
    embeds = _Embeds(site)
    made: list[Callable[[], Rendered]] = [partial(as_made, file) for file in embeds.assets()]
    for channel in site.channels:
        if channel.slug in failed or _fresh(site, channel):
            continue
        made += [partial(embeds.made, kind, channel) for kind in _KINDS]
    return made


_KINDS = ("loader", "frame", "preview")  # a channel's three files, in this order
