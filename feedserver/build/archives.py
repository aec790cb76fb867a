"""Pure: every channel's whole history as fixed-size archive pages (RFC 5005 section 4).

A channel's subscription documents (``feed.rss``, ``feed.atom``, ``feed.json``) list
its newest ``max_items``; its archive pages list *all* its articles, ``archive_size``
to a page, numbered from the oldest (``archive/1/`` holds the first ones).  Each page is
one more :class:`Channel` for the feed pipeline (rendered, validated, signed and
skipped when unchanged like any channel), so a page whose articles did not change is
never rendered or written again.

Order: by *arrival*, not by date.  An article's place in its channel's history is the
moment it became visible there: ``max(first_seen, published)`` from the ledger (an
article dated in the future arrives when it comes due), then its date, then its id.
A new file always lands on the newest page, even one with an old date: sorting by date
would push a backdated article into a full page and shift every page after it.  So new
items only ever touch the newest (partial) page; a full page keeps its articles.

Pages: ``len // archive_size + 1`` of them, and at least two (none while the
subscription documents hold the whole history, i.e. it is no longer than
``max_items``), the newest holding the remainder (it is empty when the history fills
its pages exactly), so a page is *sealed* (full) from the moment it holds
``archive_size`` articles and its ``next-archive`` link already points at a page that
exists: its bytes never change again as articles arrive.  Two at least: a lone archive
page would have neither a ``prev-archive`` nor a ``next-archive`` link, which RFC 5005
readers (and the W3C validator) take for an incomplete archive; a history longer than
``max_items`` but shorter than a page is the partial page 1 and an empty page 2, the
shape every history has the moment it fills its pages exactly.

Edits and deletions (the choice, and why): an edited article keeps its place (its
``first_seen`` does not change), so only its own page's bytes change, like any channel
listing it.  A deleted article (or one that leaves a topic) is dropped from the history
and the articles after it move up one place: its page and every later page of that
channel change.  Keeping its slot empty instead would need the history of every channel
stored beyond the ledger; a deletion is rare and a reader merges pages by id, and the
sealed pages are cached for a week (not a year: see :mod:`feedserver.core.layout`'s
users in the web app) so a cache catches up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from feedserver.build.articles import UPDATED
from feedserver.config import Settings
from feedserver.core import layout
from feedserver.core.fieldwise import converter
from feedserver.core.records import Article, Channel, Identity


def arrival_order(articles: list[Article], identities: Mapping[str, Identity]
                  ) -> list[Article]:
    """Oldest arrival first: (max(first_seen, published), published, id).

    The keys are made in one comprehension and the positions sorted by them (no Python
    call per article: 50,000 of them a build)."""
    seen = identities.get
    keys: list[tuple[datetime, datetime, str]] = [
        (a.published if (i := seen(a.path)) is None or i.first_seen < a.published
         else i.first_seen, a.published, a.id) for a in articles]
    return list(map(articles.__getitem__, sorted(range(len(keys)), key=keys.__getitem__)))


def histories(ordered: list[Article], channels: tuple[Channel, ...],
              settings: Settings) -> dict[str, list[Article]]:
    """Every article of each channel (by slug), in the order of ``ordered``: the same
    membership :func:`feedserver.build.assemble.build_channels` gives, untruncated."""
    out: dict[str, list[Article]] = {c.slug: [] for c in channels}
    everything = out.get("all")
    spoken = {lang: out.get(layout.language_slug(code)) for lang, code in
              layout.language_codes((a.lang for a in ordered), settings.language).items()}
    for article in ordered:
        if everything is not None:
            everything.append(article)
        for slug in article.topics:
            bucket = out.get(slug)
            if bucket is not None:
                bucket.append(article)
        bucket = spoken[article.lang]
        if bucket is not None:
            bucket.append(article)
    return out


# What a page has of its own; the rest it takes from its channel.
PAGE_OWN = ("slug", "path", "html_url", "articles", "updated", "archives", "archive", "home",
            "sealed")
# dataclasses.replace for the fields a page changes, compiled (4,000 pages at 50,000 articles)
_page = converter(Channel, Channel, *PAGE_OWN)


def archive_slug(slug: str, number: int) -> str:
    """An archive page's channel slug (no '/' or '.': page signatures own those)."""
    return f"{slug}~{number}"


def paginate(channel: Channel, history: list[Article], size: int,
             base_url: str, site_url: str = "") -> tuple[Channel, list[Channel]]:
    """The subscription channel (told how many pages there are) and its archive pages,
    each listing its articles newest first.  With ``site_url`` (the site's pages live
    there, none here), every archive page links there, as its channel does."""
    count = max(2, len(history) // size + 1)
    pages = []
    for number in range(1, count + 1):
        listed = tuple(reversed(history[(number - 1) * size: number * size]))
        folder = layout.archive_folder(channel.path, number)
        pages.append(_page(channel, slug=archive_slug(channel.slug, number), path=folder,
                           html_url=site_url or layout.folder_url(base_url, folder),
                           articles=listed,
                           updated=max(map(UPDATED, listed), default=channel.updated),
                           archives=count, archive=number, home=channel.path,
                           sealed=len(listed) == size))
    return replace(channel, archives=count), pages


def with_archives(ordered: list[Article], channels: tuple[Channel, ...],
                  identities: Mapping[str, Identity], settings: Settings
                  ) -> tuple[tuple[Channel, ...], tuple[Channel, ...]]:
    """The channels told of their archives, and every archive page of every channel
    (none when ``archive_size`` is 0).  A channel whose whole history fits its
    subscription documents (``max_items``) has no archive; the subscription documents
    never list more than ``max_items``, whatever the archive.
    """
    size = settings.archive_size
    if size <= 0:
        return channels, ()
    members = histories(arrival_order(ordered, identities), channels, settings)
    told: list[Channel] = []
    pages: list[Channel] = []
    for channel in channels:
        history = members[channel.slug]
        if len(history) <= settings.max_items:
            told.append(channel)
            continue
        subscription, own = paginate(channel, history, size, settings.base_url,
                                     settings.site_url)
        told.append(subscription)
        pages += own
    return tuple(told), tuple(pages)
