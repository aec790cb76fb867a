"""Pure: the content signature of every HTML page, embed view and site-wide list, and
which articles' content a build must fetch.

Feeds are skipped when their channel's signature is the one in the manifest
(:mod:`feedserver.build.signatures`); this does the same for what
:mod:`feedserver.render.pages` and :mod:`feedserver.render.embed` render, so a one-file
change re-renders one article page and the pages of the channels listing it,
not 10,000 pages.  Signatures are keyed by output path (a path always holds a
'/' or a '.', a channel slug never does), so they sit beside the channel
signatures in ``Site.signatures``, ``Site.fresh`` and the manifest.

* An article page draws on its article (content digest, id, slug, dates,
  topics, author, language), the names of its topics and the settings.
* A topic page and a channel's embed loader, iframe view and feed preview draw
  on their channel only: its signature already covers its articles, names and
  the settings.
* The index, the topics list, the OPML list and the catalog draw on every
  channel (names, counts, dates), so they follow every channel signature.

Every signature also covers the pages' code version (the renderers' code, the templates and
static files: :func:`feedserver.build.codeversion.page_version`, computed by the shell and
handed in), so a new template re-renders the pages once, and no feed.
Stylesheets and scripts are not planned: they are rendered every time (a few
files) and publish does not rewrite identical bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import compress
from operator import attrgetter, itemgetter

from feedserver.build.articles import NOTHING_KNOWN, Known, PageMemo
from feedserver.build.signatures import article_key
from feedserver.core import layout
from feedserver.core.layout import SITE_PAGES
from feedserver.core.records import Article, Channel, Stub
from feedserver.render.site import Site

_SEP = "\x1f"


def article_page(article: Article) -> str:
    """Output path of an article's page (URL ``articles/<slug>/``)."""
    return layout.article_page(article.slug)


def topic_page(channel: Channel) -> str:
    """Output path of a topic channel's page."""
    return layout.folder_page(channel.path)


def archive_page(page: Channel) -> str:
    """Output path of an archive page's HTML listing (``<folder>/archive/<n>/``)."""
    return layout.folder_page(page.path)


def embed_paths(channel: Channel) -> tuple[str, str, str]:
    """A channel's widget loader, iframe view and feed preview."""
    return layout.embed_paths(channel.slug, channel.path)


def _digest(version: str, *parts: str) -> str:
    text = _SEP.join((version, *parts))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class PageSignatures:
    """Output path -> signature, and each article page's signature by article object
    (for the shell to remember: see :class:`~feedserver.build.articles.Known`)."""

    signatures: dict[str, str]
    pages: PageMemo
    context: tuple[object, ...]


def _article_signatures(site: Site, stubs: Mapping[str, Stub], shaping: str, version: str,
                        known: Known, html: bool = True) -> PageSignatures:
    """Each article page's signature; an article object made last time (``known``, a
    long-lived process) keeps the signature made for it then.  Without ``html`` only the
    item records (which combined and filtered feeds need with or without pages) are
    signed."""
    names = site.context.topic_names
    context = (version, shaping, tuple(sorted(names.items())))
    last_time = known.pages if known.pages_context == context else {}
    sigs: dict[str, str] = {}
    made: PageMemo = {}
    for article in site.articles:
        last = last_time.get(id(article))
        if last is None or last[0] is not article:
            digest = stubs[article.path].digest
            topics = ",".join(f"{slug}={names.get(slug, slug)}" for slug in article.topics)
            page = _digest(version, "article", shaping, article_key(article, digest), topics)
            # Its item record (feedserver.query) draws on what its page does.
            last = (article, article_page(article), page, layout.item_record(article.slug),
                    _digest(version, "record", page))
        made[id(article)] = last
        if html:
            sigs[last[1]] = last[2]
        sigs[last[3]] = last[4]
    return PageSignatures(sigs, made, context)


def page_signatures(site: Site, stubs: Mapping[str, Stub], shaping: str, version: str,
                    known: Known = NOTHING_KNOWN, html: bool = True) -> PageSignatures:
    """Output path -> signature for every planned page of the site (content-free).

    ``stubs`` (by source path) give each article's content digest; ``shaping``
    is the settings fingerprint; ``version`` the renderers' and templates' (see
    the module).  Channel signatures must be in ``site``.  ``html=False`` (the
    ``pages = false`` setting) plans no index, topic or article page: none is
    published, and one published before is neither fresh nor kept.
    """
    made = _article_signatures(site, stubs, shaping, version, known, html)
    sigs = made.signatures
    everything = _SEP.join(f"{c.slug}={site.signatures[c.slug]}" for c in site.channels)
    for path in SITE_PAGES if html else (layout.OPML, layout.CATALOG):
        sigs[path] = _digest(version, "site", path, everything)
    for channel in site.channels:
        own = site.signatures[channel.slug]
        if html and channel.slug in site.topics:
            sigs[topic_page(channel)] = _digest(version, "topic", own)
        for path in embed_paths(channel):
            sigs[path] = _digest(version, "embed", path, own)
    for page in site.archives if html else ():  # a listing draws on its page only
        sigs[archive_page(page)] = _digest(version, "archive", site.signatures[page.slug])
    return made


def drawn_archives(site: Site, pages: bool, html: bool = True) -> frozenset[str]:
    """The slugs of the archive pages (RFC 5005) this build draws: those whose feeds are
    stale, or (with ``pages`` and ``html``) whose HTML listing is.  Only these need their
    articles' content.  A full page is sealed, so a one-file build draws the few pages it
    touches, not the whole history every channel's pages list."""
    fresh = site.fresh
    return frozenset(page.slug for page in site.archives
                     if page.slug not in fresh
                     or (pages and html and archive_page(page) not in fresh))


def content_wanted(site: Site, pages: bool, html: bool = True,
                   drawn: frozenset[str] | None = None, stale: Stale | None = None
                   ) -> list[Article]:
    """The articles whose content this build renders (the shell fetches exactly these):
    those listed by a stale channel, and with ``pages`` those listed by any channel and
    (unless ``html`` is False: no article pages) those whose page is stale.

    Every channel's listed articles, fresh or not: a topic page, an embed view
    and the index draw on their channel's articles even when its feeds are
    fresh, and a long-lived process has their content at hand anyway.  Of the archive
    pages, those :func:`drawn_archives` names (``drawn``, when the caller has it); of
    the articles, those ``stale`` names (:func:`stale_articles`, when the caller has it).
    """
    wanted: dict[str, Article] = {}
    for channel in site.channels:
        if pages or channel.slug not in site.fresh:  # feeds only: the stale channels
            for article in channel.articles:
                wanted.setdefault(article.id, article)
    drawn = drawn_archives(site, pages, html) if drawn is None else drawn
    for page in site.archives:
        if page.slug in drawn:
            for article in page.articles:
                wanted.setdefault(article.id, article)
    if pages:  # the articles whose page or record is stale
        found = stale if stale is not None else stale_articles(site, html)
        ids = found.records | found.pages if html else found.records
        for article in found.among(site.articles, ids):
            wanted.setdefault(article.id, article)
    return list(wanted.values())


@dataclass(frozen=True)
class Stale:
    """The ids of the articles whose page, and whose item record, are not in
    ``site.fresh``: what a build renders of the per-article files."""

    pages: frozenset[str]
    records: frozenset[str]

    @staticmethod
    def among(articles: Sequence[Article], ids: AbstractSet[str]) -> Iterator[Article]:
        """Those of ``articles`` whose id is in ``ids``, in their order (a pass in C)."""
        return compress(articles, map(ids.__contains__, map(_ID, articles)))


def stale_articles(site: Site, html: bool = True,
                   signed: PageSignatures | None = None) -> Stale:
    """Which articles' pages (with ``html``) and item records are not in ``site.fresh``.

    With the build's ``signed`` page signatures, their paths are the very strings signed
    (kept between builds by a long-lived process, their hashes computed once): testing
    them is a pass in C.  Spelling every article's two paths again for each of the three
    passes that asked (the content to fetch, the pages and the records to make) was
    60-85 ms each of a one-file build of 50,000 articles, three-quarters of it making
    the strings.  Without ``signed`` (a check, tests) they are spelled here, once.
    """
    fresh = site.fresh
    if signed is not None:
        rows = list(signed.pages.values())
        ids = list(map(_ID, map(_FIRST, rows)))
        pages = map(_SECOND, rows)
        records = map(_FOURTH, rows)
    else:
        ids = list(map(_ID, site.articles))
        slugs = list(map(_SLUG, site.articles))
        pages, records = layout.article_pages(slugs), layout.item_records(slugs)
    return Stale(
        frozenset(compress(ids, layout.unpublished(fresh, pages))) if html else frozenset(),
        frozenset(compress(ids, layout.unpublished(fresh, records))))


_ID, _SLUG = attrgetter("id"), attrgetter("slug")
_FIRST, _SECOND, _FOURTH = itemgetter(0), itemgetter(1), itemgetter(3)
