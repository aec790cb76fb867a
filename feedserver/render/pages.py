"""Pure: a :class:`Site` -> HTML pages, ``feeds.opml`` and ``topics.json``.

The pages are rendered from the Site, like the feeds, into the output folder
at the paths their URLs name (``index.html``, ``topics/index.html``,
``topics/<slug>/index.html``, ``articles/<slug>/index.html``).  That keeps the
web app a file server (it never renders) and lets nginx or a CDN serve the same
folder.  Everything comes from the Site: every URL from ``base_url``, every
date from content, so the same articles give the same bytes and ETags only
move when something a reader sees changed.  Like the feeds, a page whose
signature is the one already published (:mod:`feedserver.build.page_signatures`) is not
rendered again, and its article's content is not even read.

Templates live in ``feedserver/templates`` and autoescape; only article
content, already sanitized by nh3 when it was parsed, is marked safe.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache, partial
from importlib import resources
from itertools import compress
from operator import attrgetter
from typing import Any, NamedTuple

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from feedserver.core.layout import (
    CATALOG,
    ERROR_PAGES,
    ERRORS,
    INDEX,
    OPML,
    SITE_PAGES,
    STYLESHEET,
    TOPICS,
    TOPICS_INDEX,
    archive_folder,
    article_page,
    article_pages,
    asset_url,
    folder_page,
    folder_url,
    root_path,
    unpublished,
)
from feedserver.core.media import image_of, media_of, readable_size
from feedserver.core.records import Article, Channel, Rendered
from feedserver.render import i18n
from feedserver.render.feeds import Context
from feedserver.render.formats import FORMATS, rss
from feedserver.render.site import EPOCH, Site

HTML_TYPE = "text/html; charset=utf-8"
OPML_TYPE = "text/x-opml; charset=utf-8"
CATALOG_TYPE = "application/json; charset=utf-8"
CSS_TYPE = "text/css; charset=utf-8"
OPML_FILE = OPML
CATALOG_FILE = CATALOG
LANGUAGE = "language"  # the kind of a per-language channel's entry in site.topics
ROWS_KEPT = 16_384  # rendered rows of the channel lists kept (_row_html)
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


@dataclass(frozen=True, slots=True)
class FeedLink:
    """One of a channel's feeds, as a page links to it."""

    label: str
    type: str
    href: str
    title: str


@dataclass(frozen=True, slots=True)
class Row:
    """A channel as pages list it: display name, item count, its feeds."""

    channel: Channel
    name: str
    count: int
    feeds: tuple[FeedLink, ...]
    kind: str = ""  # the topic's kind: place, organisation, person, subject, language


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("feedserver.render", "templates"),
                      autoescape=select_autoescape(["html", "xml"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                      auto_reload=False)  # package data: no stat of every template per page
    env.globals["months"] = MONTHS
    env.globals["media_of"] = media_of  # an article's picture, players and attachments
    env.globals["image_of"] = image_of
    env.filters["bytes"] = readable_size
    env.globals["localdate"] = i18n.date  # dates and fixed words in the page's language
    env.globals["tr"] = i18n.word
    env.globals["nitems"] = i18n.items
    return env


@lru_cache(maxsize=1)
def stylesheet() -> bytes:
    """The site's CSS, shipped as package data and published beside the pages."""
    return resources.files("feedserver.render").joinpath(STYLESHEET).read_bytes()


def error_page(site_title: str, base_url: str, language: str, code: int, title: str,
               text: str) -> bytes:
    """The 404/410 page, in the site's layout; the web app answers it as published."""
    html = _environment().get_template("error.html").render(
        site_title=site_title, base_url=base_url, lang=language, canonical="",
        css_url=asset_url(base_url, STYLESHEET, stylesheet()),
        root=root_path(base_url), description="", alternates=[], code=code, title=title,
        text=text, site_feeds=site_feeds(base_url))
    return html.encode("utf-8")


def site_feeds(base_url: str) -> tuple[FeedLink, ...]:
    """The whole site's feeds in every registered format, as every page's footer links them."""
    return tuple(FeedLink(fmt.label, fmt.mime, f"{base_url}{fmt.filename}", fmt.label)
                 for fmt in FORMATS.values())


def feed_links(site: Site, channel: Channel) -> tuple[FeedLink, ...]:
    """The channel's feeds in every registered format, as pages and embeds link them.

    The build's own context draws a feed's URL from ``base_url`` and the channel's path
    alone, so the links are kept by those and the title (:func:`_feed_links`): every
    build makes them for every channel (the home and topics pages list them all), and a
    scheduler's one-file build of a 50,000-article site made 1,700 channels' anew."""
    formats = tuple((fmt.label, fmt.mime, fmt.filename) for fmt in FORMATS.values())
    if type(site.context) is Context:
        return _feed_links(formats, site.context.base_url, channel.path, channel.title)
    return _links(formats, site.context, channel)


@lru_cache(maxsize=16_384)
def _feed_links(formats: tuple[tuple[str, str, str], ...], base_url: str, path: str,
                title: str) -> tuple[FeedLink, ...]:
    """:func:`_links` of a channel with this path and title in the build's context with
    this ``base_url`` (``Context.feed_url`` reads nothing else), the registered
    ``formats`` as (label, media type, file name)."""
    context = Context(site_title="", base_url=base_url, language="", author="",
                      ttl_minutes=0, topic_names={})
    return _links(formats, context, Channel(slug="", title=title, description="", path=path,
                                            html_url="", articles=(), updated=EPOCH))


def _links(formats: tuple[tuple[str, str, str], ...], context: Context,
           channel: Channel) -> tuple[FeedLink, ...]:
    return tuple(FeedLink(label, mime, context.feed_url(channel, filename),
                          f"{channel.title} ({label})") for label, mime, filename in formats)


class ChannelRow(NamedTuple):
    """What the home page shows of a channel (``_row_channel.html`` reads these only)."""

    html_url: str
    name: str
    count: int
    feeds: tuple[FeedLink, ...]


class TopicRow(NamedTuple):
    """What the topics page shows of a topic (``_row_topic.html`` reads these only)."""

    html_url: str
    name: str
    kind: str
    count: int
    updated: datetime
    description: str
    feeds: tuple[FeedLink, ...]


class LanguageRow(NamedTuple):
    """What the topics page shows of a language (``_row_language.html``)."""

    html_url: str
    language: str
    name: str
    count: int
    updated: datetime
    feeds: tuple[FeedLink, ...]


@lru_cache(maxsize=ROWS_KEPT)
def _row_html(template: str, row: ChannelRow | TopicRow | LanguageRow, lang: str,
              zone: object) -> str:
    """One row of the home or topics page's list of channels, rendered once while its
    fields and language stay the same.  Both pages list every channel, and one build
    changes a few: at 50,000 articles (1,700 channels) the two took 75 ms of each
    one-file build, one Jinja macro call or more per row.  The key is everything the
    row's template reads (it reads nothing else: a named tuple of those fields), and
    ``zone``, the time zone of its date: a datetime equals one of the same instant in
    another zone, but the page shows each in its own."""
    return _environment().get_template(template).render(row=row, lang=lang)


def _rows_html(template: str, rows: list[Any], lang: str) -> Markup:
    return Markup("".join([_row_html(template, row, lang, _zone(row)) for row in rows]))


def _zone(row: ChannelRow | TopicRow | LanguageRow) -> object:
    """The time zone of a row's date (None: a row without one)."""
    return row.updated.tzinfo if isinstance(row, TopicRow | LanguageRow) else None


def _rows(site: Site) -> dict[str, Row]:
    """Every channel by slug, with the links every page needs, built once per build."""
    rows: dict[str, Row] = {}
    for channel in site.channels:
        topic = site.topics.get(channel.slug)
        name = topic.name if topic else "All articles"
        rows[channel.slug] = Row(channel, name, len(channel.articles),
                                 feed_links(site, channel), topic.kind if topic else "")
    return rows


class _Renderer:
    """Shared page context, so each page only adds what is its own."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.rows = _rows(site)
        self.all = self.rows[site.channels[0].slug]
        base = site.context.base_url
        self.common: dict[str, Any] = {
            "site_title": site.context.site_title, "base_url": base, "root": root_path(base),
            "lang": site.context.language, "css_url": asset_url(base, STYLESHEET, stylesheet()),
            "site_feeds": site_feeds(base),
        }
        self.templates = {name: _environment().get_template(f"{name}.html")
                          for name in ("index", "topics", "topic", "article", "archive")}
        self.newest = max((c.updated for c in site.channels), default=EPOCH)

    def page(self, path: str, template: str, canonical: str, rows: list[Row],
             modified: datetime, **values: Any) -> Rendered:
        alternates = [feed for row in rows for feed in row.feeds]
        html = self.templates[template].render({**self.common, "canonical": canonical,
                                                "alternates": alternates, **values})
        return Rendered(path, html.encode("utf-8"), HTML_TYPE, modified)

    def index(self) -> Rendered:
        channels = list(self.rows.values())
        lang = self.common["lang"]
        return self.page(INDEX, "index", self.site.context.base_url, [self.all],
                         self.newest, description=self.all.channel.description,
                         channels=channels, channel_rows=_rows_html(
                             "_row_channel.html", [ChannelRow(
                                 r.channel.html_url, r.name, r.count, r.feeds)
                                 for r in channels], lang),
                         articles=self.all.channel.articles, older=self.older(self.all.channel))

    def topics(self) -> Rendered:
        topics = [row for slug, row in self.rows.items() if slug in self.site.topics]
        channels = [row for row in topics if row.kind != LANGUAGE]
        languages = [row for row in topics if row.kind == LANGUAGE]
        lang = self.common["lang"]
        return self.page(TOPICS_INDEX, "topics",
                         folder_url(self.site.context.base_url, TOPICS), [self.all], self.newest,
                         description=f"Topics of {self.site.context.site_title}",
                         channels=channels, languages=languages,
                         topic_rows=_rows_html("_row_topic.html", [TopicRow(
                             r.channel.html_url, r.name, r.kind, r.count, r.channel.updated,
                             r.channel.description, r.feeds) for r in channels], lang),
                         language_rows=_rows_html("_row_language.html", [LanguageRow(
                             r.channel.html_url, r.channel.language, r.name, r.count,
                             r.channel.updated, r.feeds) for r in languages], lang))

    def topic(self, row: Row) -> Rendered:
        channel = row.channel
        return self.page(folder_page(channel.path), "topic", channel.html_url, [row],
                         channel.updated, description=channel.description, row=row,
                         articles=channel.articles, older=self.older(channel),
                         lang=channel.language or self.site.context.language)

    def older(self, channel: Channel) -> str:
        """The URL of a channel's newest archive page ('' without archives): where its
        listing goes on, so no published article is left without a page linking it."""
        if not channel.archives:
            return ""
        return self.archive_url(channel.path, channel.archives)

    def archive_url(self, home: str, number: int) -> str:
        return folder_url(self.site.context.base_url, archive_folder(home, number))

    def archive(self, page: Channel, row: Row) -> Rendered:
        """One archive page's listing (RFC 5005's pages, as HTML): its articles, newest
        first, and the links to the pages before and after it (the newest links back to
        the channel's own page)."""
        number, pages = page.archive, page.archives
        newer = self.archive_url(page.home, number + 1) if number < pages \
            else row.channel.html_url
        older = self.archive_url(page.home, number - 1) if number > 1 else ""
        return self.page(folder_page(page.path), "archive", page.html_url, [row],
                         page.updated, description=row.channel.description, row=row,
                         articles=page.articles, number=number, older=older,
                         newer=newer, lang=row.channel.language or self.site.context.language)

    def article(self, article: Article) -> Rendered:
        topics = [self.rows[slug] for slug in article.topics if slug in self.rows]
        return self.page(article_page(article.slug), "article", article.link,
                         [self.all, *topics], article.updated, description=str(article.summary),
                         article=article, topics=topics, content=Markup(str(article.content_html)),
                         lang=article.lang or self.site.context.language)


def render_pages(site: Site, html: bool = True) -> list[Rendered]:
    """Every HTML page, the OPML list, the JSON catalog and the stylesheet (see
    :func:`page_makers`), rendered here."""
    return [make() for make in page_makers(site, html)]


_ID, _SLUG = attrgetter("id"), attrgetter("slug")


def page_makers(site: Site, html: bool = True, stale: AbstractSet[str] | None = None
                ) -> list[Callable[[], Rendered]]:
    """What renders every HTML page, the OPML list, the JSON catalog and the stylesheet,
    one call a file, in a fixed order.

    The build's worker processes, forked with this list, each render and stage a
    share of it, so the pages' bodies (100 MiB for 10,000 articles) are never all
    in one process.  Pages whose path is in ``site.fresh`` (see
    :mod:`feedserver.build.page_signatures`) are already published with these bytes
    and are skipped; only the articles whose pages are rendered have their content
    fetched.  ``stale``, when the build has it, names those articles by id (else their
    paths are spelled and looked up here).  ``html=False`` (the ``pages = false``
    setting) leaves out the index, topic and article pages: the lists, the stylesheet
    (embed views use it) and the error pages stay.
    """
    renderer = _Renderer(site)
    makers: dict[str, Callable[[], Rendered]] = {
        INDEX: renderer.index, TOPICS_INDEX: renderer.topics,
        OPML_FILE: partial(opml, site), CATALOG_FILE: partial(catalog, site)}
    wanted = SITE_PAGES if html else (OPML_FILE, CATALOG_FILE)
    made = [makers[path] for path in wanted if path not in site.fresh]
    if html:
        made += [partial(renderer.topic, row) for slug, row in renderer.rows.items()
                 if slug in site.topics and folder_page(row.channel.path) not in site.fresh]
        homes = {row.channel.path: row for row in renderer.rows.values()}
        made += [partial(renderer.archive, page, homes[page.home]) for page in site.archives
                 if folder_page(page.path) not in site.fresh]
        articles = site.articles  # the few stale of many, picked in C
        picks = map(stale.__contains__, map(_ID, articles)) if stale is not None \
            else unpublished(site.fresh, article_pages(map(_SLUG, articles)))
        made += [partial(renderer.article, article) for article in compress(articles, picks)]
    made.append(partial(Rendered, STYLESHEET, stylesheet(), CSS_TYPE, renderer.newest))
    made += [partial(as_made, page) for page in error_pages(site, renderer.newest)]
    return made


def as_made(page: Rendered) -> Rendered:
    """A file rendered already, as a maker hands it out (the two error pages and the
    embeds' shared assets cost less than their makers)."""
    return page


def error_pages(site: Site, modified: datetime) -> list[Rendered]:
    """The 404 and 410 pages, published for the web app (which renders nothing).

    Like the stylesheet they are not planned: two small pages, rendered every
    build, and publish does not rewrite identical bytes.
    """
    ctx = site.context
    return [Rendered(ERROR_PAGES[code], error_page(ctx.site_title, ctx.base_url, ctx.language,
                                                   code, title, text), HTML_TYPE, modified)
            for code, (title, text) in ERRORS.items()]


def opml(site: Site) -> Rendered:
    """OPML 2.0 with one outline per channel (its RSS feed: OPML's outlines are RSS by
    definition, ``type="rss"``), importable in readers.

    The head has no ``docs`` (the spec's address, optional): the W3C Feed Validation
    Service knows the head elements of OPML 1.0 only and calls it an error."""
    newest = max((c.updated for c in site.channels), default=EPOCH)
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = f"{site.context.site_title}: feeds"
    ET.SubElement(head, "dateModified").text = format_datetime(newest, usegmt=True)
    body = ET.SubElement(root, "body")
    for channel in site.channels:
        ET.SubElement(body, "outline", type="rss", version="RSS2", text=channel.title,
                      title=channel.title, description=channel.description,
                      xmlUrl=site.context.feed_url(channel, rss.FORMAT.filename),
                      htmlUrl=channel.html_url,
                      language=channel.language or site.context.language)
    ET.indent(root, space=" ")
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
    return Rendered(OPML_FILE, data, OPML_TYPE, newest, cors=True)


def catalog(site: Site) -> Rendered:
    """Machine-readable list of channels ('all' first) with their feed URLs."""
    channels = [{
        "slug": channel.slug,
        "title": channel.title,
        "description": channel.description,
        "html_url": channel.html_url,
        "feeds": {fmt.name: site.context.feed_url(channel, fmt.filename)
                  for fmt in FORMATS.values()},
        "items": len(channel.articles),
        "updated": channel.updated.isoformat(),
        "kind": site.topics[channel.slug].kind if channel.slug in site.topics else "all",
        "language": channel.language or site.context.language,
    } for channel in site.channels]
    data = json.dumps({"channels": channels}, ensure_ascii=False, indent=1).encode() + b"\n"
    newest = max((c.updated for c in site.channels), default=EPOCH)
    return Rendered(CATALOG_FILE, data, CATALOG_TYPE, newest, cors=True)
