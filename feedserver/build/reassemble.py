"""Pure: the last assembly with a few articles swapped in, for a long-lived build's edit.

:func:`~feedserver.build.assemble.assemble_site` walks every article about twenty times
(due dates, links, topic counts, two orders, channel membership, archive pages,
signatures): at 50,000 articles, about a quarter of a one-file build in a long-lived
process (benchmarks/README.md).  Most such builds follow an edit that changed what the
article's own items show (its text, title, summary, updated date) and nothing that
places it: its id, slug, arrival, publication date, language, topics, links, draft
state.  The full assembly then gives the last site with that article's object replaced
by the new one, each channel and archive page listing it made again around it, and
their signatures made again.  :func:`reassembled` makes exactly that, or returns None
when any changed file moved anything else, and the caller assembles in full.

The assembly is a function of its inputs (stubs, identities, settings, ``now``, the
renderers' code, the artwork); ``known`` only lends objects equal to those it would
make.  So the last assembly's inputs are the key: whatever changed them (this process,
another writer of the ledger, the clock passing an article's due date) is seen here.
A test compares this with the full assembly over random edits.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from itertools import compress, count, repeat
from operator import attrgetter, eq, is_not

from feedserver.build.archives import PAGE_OWN
from feedserver.build.articles import LIMITED, RARE, UPDATED, Known, Memo
from feedserver.build.assemble import (
    Assembled,
    listing_facts,
    made_article,
    sign_channels,
    trimmed,
)
from feedserver.build.links import linked_paths
from feedserver.config import Settings
from feedserver.core import layout
from feedserver.core.records import Article, Channel, Identity, Stub

# More changed files than this: the full assembly (its passes cost less than this many
# swaps, each a few passes over the channels in C).
MOST = 64
_PATH = attrgetter("path")
_INHERITED = tuple(f.name for f in fields(Channel) if f.name not in PAGE_OWN)


@dataclass
class Assembly:
    """One assembly's inputs and result, kept by a long-lived build for the next one."""

    stubs: Mapping[str, Stub]
    identities: Mapping[str, Identity]
    now: datetime
    shaping: tuple[str, str, str]  # the settings' fingerprint, the renderers' code, artwork
    made: Assembled
    _placed: dict[str, Article] | None = field(default=None, repr=False)

    def placed(self) -> dict[str, Article]:
        """The site's articles by path (made on first need: a pass over them)."""
        if self._placed is None:
            articles = self.made.site.articles
            self._placed = dict(zip(map(_PATH, articles), articles, strict=True))
        return self._placed


def shaping_of(settings: Settings, render_code: str, artwork: str) -> tuple[str, str, str]:
    """What an assembly depends on besides its stubs, identities and ``now``."""
    return settings.fingerprint(), render_code, artwork


def reassembled(last: Assembly | None, stubs: Mapping[str, Stub],
                identities: Mapping[str, Identity], settings: Settings, now: datetime,
                known: Known, *, render_code: str, artwork: str = "") -> Assembly | None:
    """What :func:`~feedserver.build.assemble.assemble_site` would give for these inputs,
    made from ``last`` (see the module), or None: assemble in full."""
    if last is None or last.shaping != shaping_of(settings, render_code, artwork):
        return None
    site = last.made.site
    if now < last.now or (site.next_due is not None and now >= site.next_due):
        return None  # an article may have come due
    if stubs.keys() != last.stubs.keys() or identities.keys() != last.identities.keys():
        return None  # a file added or gone
    changed = _changed(stubs, last.stubs) | _changed(identities, last.identities)
    if len(changed) > MOST:
        return None
    placed = last.placed()
    made: Memo = {}
    swaps: dict[int, Article] = {}  # id() of the article in the last site -> its new object
    olds: list[Article] = []
    for path in sorted(changed):
        pair = _swap(path, last, stubs, identities, placed, settings, now, known, made)
        if pair is None:
            return None
        if pair[0] is not pair[1]:
            swaps[id(pair[0])] = pair[1]
            olds.append(pair[0])
    if not swaps and not made:
        return Assembly(stubs, identities, now, last.shaping,
                        replace(last.made, problems=list(last.made.problems), articles={}),
                        placed)
    slugs = {"all"}  # the channels that may list a swapped article
    for old in olds:
        slugs.update(old.topics)
        slugs.add(_language_slug(old, settings))
    channels, again = _relisted_channels(site.channels, swaps, slugs, settings)
    homes = {channel.path for channel in site.channels if channel.slug in slugs}
    archives, touched, relisted = _relisted_pages(site.archives, swaps, homes, again)
    names = dict(last.made.names)
    digests = _Digests(stubs, site.articles)
    for channel in (*again.values(), *relisted):  # signed again: their articles' digests
        digests.note(channel.articles)
    # The others keep their signatures: the full assembly finds them listing the very
    # objects they listed, under the same head (sign_channels' memo).
    signed = sign_channels((*again.values(), *touched), settings, render_code, artwork, names,
                           digests, last.made.channels)
    new_site = replace(site, articles=_swapped(site.articles, swaps), channels=channels,
                       archives=archives,
                       signatures={**site.signatures,
                                   **{slug: entry[2] for slug, entry in signed.items()}})
    result = Assembled(new_site, list(last.made.problems), made,
                       {**last.made.channels, **signed}, names, last.made.rare)
    return Assembly(stubs, identities, now, last.shaping, result,
                    {**placed, **{a.path: a for a in swaps.values()}})


def _changed(new: Mapping[str, object], old: Mapping[str, object]) -> set[str]:
    """The keys whose value is not the very object it was (a pass in C)."""
    keys = list(new)
    return set(compress(keys, map(is_not, map(new.__getitem__, keys),
                                  map(old.__getitem__, keys))))


def _swap(path: str, last: Assembly, stubs: Mapping[str, Stub],
          identities: Mapping[str, Identity], placed: Mapping[str, Article],
          settings: Settings, now: datetime, known: Known, made: Memo
          ) -> tuple[Article, Article] | None:
    """(the article in the last site, the one the full assembly makes now) for a changed
    file whose change moves nothing but its own article, else None.

    Everything the assembly reads of a file besides the article it makes is compared:
    draft state, explicit id (who keeps an id two files claim), topics, their names and
    the detected ones (the topic counts that decide which topics make channels, and
    their names), links (resolved against other articles).  So the same topics are
    trimmed from it as last time, the same way (:func:`~.assemble.trimmed`).  Then the
    articles: same id, path, publication date (the order, and whether it is due),
    language, links and topics."""
    stub, identity = stubs[path], identities[path]
    before, was = last.stubs[path], last.identities[path]
    old = placed.get(path)
    if old is None or before.draft or stub.draft or linked_paths(before) \
            or linked_paths(stub):
        return None  # not published last time (draft, due later, id taken), or links
    if (before.explicit_id, before.slugs, before.names, before.detected) \
            != (stub.explicit_id, stub.slugs, stub.names, stub.detected):
        return None
    if (was.id, was.slug, was.first_seen) != (identity.id, identity.slug, identity.first_seen):
        return None
    new = made_article(path, stub, identity, settings, known, made)
    if new.published > now:
        return None
    common = tuple(topic for topic in new.topics if topic not in last.made.rare)
    if common != new.topics:
        new = trimmed(new, common, RARE, stubs, identities, known, made)
    if old.topics != common:  # the topic limit took the others (the same counts as then)
        if not set(old.topics) <= set(common):
            return None
        new = trimmed(new, old.topics, LIMITED, stubs, identities, known, made)
    if (old.id, old.path, old.published, old.lang, old.topics, old.links) \
            != (new.id, new.path, new.published, new.lang, new.topics, new.links):
        return None
    return old, new


def _lists(channel: Channel, swaps: Mapping[int, Article]) -> bool:
    """Whether ``channel`` lists one of the swapped articles (by identity, in C)."""
    return not swaps.keys().isdisjoint(map(id, channel.articles))


def _relisted(listed: tuple[Article, ...], swaps: Mapping[int, Article]
              ) -> tuple[Article, ...]:
    return tuple(swaps.get(id(a), a) for a in listed)


def _relisted_channels(channels: tuple[Channel, ...], swaps: Mapping[int, Article],
                       slugs: Container[str], settings: Settings
                       ) -> tuple[tuple[Channel, ...], dict[str, Channel]]:
    """The channels with the swapped articles, as :func:`build_channels` makes them; and
    by path, the ones made again (their archive pages take after them).  ``slugs``: the
    only channels that may list one."""
    out: list[Channel] = []
    again: dict[str, Channel] = {}
    for channel in channels:
        if channel.slug in slugs and _lists(channel, swaps):
            channel = again[channel.path] = replace(
                channel, **listing_facts(_relisted(channel.articles, swaps), settings))
        out.append(channel)
    return tuple(out), again


def _relisted_pages(pages: tuple[Channel, ...], swaps: Mapping[int, Article],
                    homes: Container[str], again: Mapping[str, Channel]
                    ) -> tuple[tuple[Channel, ...], list[Channel], list[Channel]]:
    """The archive pages with the swapped articles, as
    :func:`~feedserver.build.archives.paginate` makes them (a page's date is its newest
    article's, an empty page's its channel's; all but
    :data:`~feedserver.build.archives.PAGE_OWN` is its channel's); the pages made again;
    and those of them listing a swapped article.  ``homes``: the channels (by path) whose
    pages may list one."""
    out: list[Channel] = []
    touched: list[Channel] = []  # every page made again
    relisted: list[Channel] = []  # those listing a swapped article
    for page in pages:
        if page.home in homes:
            made = page
            channel = again.get(page.home)
            if channel is not None:  # its language, max_age...: what a page takes from it
                taken = {name: getattr(channel, name) for name in _INHERITED}
                if not made.articles:
                    taken["updated"] = channel.updated
                if any(getattr(made, name) != value for name, value in taken.items()):
                    made = replace(made, **taken)
            if _lists(made, swaps):
                listed = _relisted(made.articles, swaps)
                made = replace(made, articles=listed, updated=max(map(UPDATED, listed)))
                relisted.append(made)
            if made is not page:
                touched.append(made)
                page = made
        out.append(page)
    return tuple(out), touched, relisted


def _language_slug(article: Article, settings: Settings) -> str:
    """The slug of the language channel listing ``article`` (:func:`build_channels`)."""
    return layout.language_slug(layout.language_code(article.lang or "", settings.language))


def _swapped(articles: tuple[Article, ...] | list[Article], swaps: Mapping[int, Article]
             ) -> tuple[Article, ...]:
    """The site's article list with the swapped ones in their places (found in C)."""
    out = list(articles)
    for old_id, new in swaps.items():
        at = next(compress(count(), map(eq, repeat(old_id), map(id, articles))))
        out[at] = new
    return tuple(out)


class _Digests(dict[str, str]):
    """Each article's stub digest by article id, as the assembly signs them: looked up
    when a channel is signed again (its articles' own files)."""

    def __init__(self, stubs: Mapping[str, Stub], articles: tuple[Article, ...] | list[Article]
                 ) -> None:
        super().__init__()
        self.stubs = stubs
        self.articles = articles
        self.paths: dict[str, str] | None = None

    def note(self, articles: tuple[Article, ...]) -> None:
        """Look up the digests of a channel about to be signed again (its own files)."""
        for article in articles:
            if article.id not in self:
                self[article.id] = self.stubs[article.path].digest

    def __missing__(self, article_id: str) -> str:
        if self.paths is None:
            self.paths = {a.id: a.path for a in self.articles}
        digest = self[article_id] = self.stubs[self.paths[article_id]].digest
        return digest
