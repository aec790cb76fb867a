"""Pure (but for a memo of the last results): the content signature of every HTML page,
embed view and site-wide list.

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

Every signature also covers :func:`feedserver.build.codeversion.page_version` (the
renderers' code, the templates and static files), so a new template re-renders the
pages once, and no feed.
Stylesheets and scripts are not planned: they are rendered every time (a few
files) and publish does not rewrite identical bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from feedserver.build.articles import Articles, Reuse
from feedserver.build.codeversion import page_version
from feedserver.build.signatures import Stub, article_key
from feedserver.build.stages import Site
from feedserver.core import layout
from feedserver.core.layout import SITE_PAGES
from feedserver.core.records import Article, Channel

_SEP = "\x1f"


def article_page(article: Article) -> str:
    """Output path of an article's page (URL ``articles/<slug>/``)."""
    return layout.article_page(article.slug)


def topic_page(channel: Channel) -> str:
    """Output path of a topic channel's page."""
    return layout.folder_page(channel.path)


def embed_paths(channel: Channel) -> tuple[str, str, str]:
    """A channel's widget loader, iframe view and feed preview."""
    return layout.embed_paths(channel.slug, channel.path)


def light_articles(site: Site) -> list[Article]:
    """Every article, without fetching the content of any not read yet."""
    articles = site.articles
    return articles.light() if isinstance(articles, Articles) else list(articles)


def with_content(site: Site, articles: list[Article]) -> list[Article]:
    """These articles with their content (one fetch for those not read yet)."""
    found = site.articles
    return found.with_content(articles) if isinstance(found, Articles) else articles


def _templates_version() -> str:
    """The pages' code version, templates and static files included (computed once per
    process by :func:`feedserver.build.codeversion.page_version`)."""
    return page_version()


def _digest(*parts: str) -> str:
    text = _SEP.join((_templates_version(), *parts))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _article_signatures(site: Site, stubs: Mapping[str, Stub], shaping: str,
                        reuse: Reuse | None) -> dict[str, str]:
    """Each article page's signature; with ``reuse`` (a long-lived process), an
    article object made last time keeps the signature made for it then."""
    names = site.context.topic_names
    context = (_templates_version(), shaping, tuple(sorted(names.items())))
    known = reuse.pages if reuse is not None and reuse.pages_context == context else {}
    sigs: dict[str, str] = {}
    made: dict[int, tuple[Article, str, str]] = {}
    for article in light_articles(site):
        last = known.get(id(article))
        if last is None or last[0] is not article:
            digest = stubs[article.path].digest
            topics = ",".join(f"{slug}={names.get(slug, slug)}" for slug in article.topics)
            last = (article, article_page(article),
                    _digest("article", shaping, article_key(article, digest), topics))
        made[id(article)] = last
        sigs[last[1]] = last[2]
    if reuse is not None:
        reuse.pages, reuse.pages_context = made, context
    return sigs


def page_signatures(site: Site, stubs: Mapping[str, Stub], shaping: str,
                    reuse: Reuse | None = None) -> dict[str, str]:
    """Output path -> signature for every planned page of the site (content-free).

    ``stubs`` (by source path) give each article's content digest; ``shaping``
    is the settings fingerprint.  Channel signatures must be in ``site``.
    """
    sigs = _article_signatures(site, stubs, shaping, reuse)
    everything = _SEP.join(f"{c.slug}={site.signatures[c.slug]}" for c in site.channels)
    for path in SITE_PAGES:
        sigs[path] = _digest("site", path, everything)
    for channel in site.channels:
        own = site.signatures[channel.slug]
        if channel.slug in site.topics:
            sigs[topic_page(channel)] = _digest("topic", own)
        for path in embed_paths(channel):
            sigs[path] = _digest("embed", path, own)
    return sigs
