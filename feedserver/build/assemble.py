"""The pure core's assembly: parsed articles + identities + now -> the site to render.

Nothing here touches the disk, the clock, the database or another process;
the shell (:mod:`feedserver.build.run`) hands in what it read, the ``now`` it
chose and what the last build made (a read-only :class:`Known`), and gets back
rendered files, problems and what this build made (:class:`Assembled`), which
it keeps in its :class:`~feedserver.build.memory.BuildMemory`.  Rendering
the site it assembles is :mod:`feedserver.build.render_gate`.  That is what
makes a build deterministic (same input, same bytes) and testable without a
disk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import chain, compress
from operator import attrgetter, is_, not_
from typing import Any

from feedserver.build.archives import with_archives
from feedserver.build.articles import (
    LIMITED,
    NOTHING_KNOWN,
    RARE,
    UPDATED,
    ChannelMemo,
    Known,
    Memo,
    article_of,
    fill,
    filled_channels,
    known_article,
    newest_first,
    trimmed_key,
    with_full,
)
from feedserver.build.links import resolve_links
from feedserver.build.signatures import archive_links, article_key, channel_signature, split
from feedserver.config import Podcast, Settings
from feedserver.core import layout
from feedserver.core.errors import ArticleError
from feedserver.core.freshness import channel_max_age
from feedserver.core.media import NO_MEDIA, MediaIndex
from feedserver.core.records import (
    Article,
    Body,
    Channel,
    Identity,
    Parsed,
    Problem,
    SourceFile,
    Stub,
    Topic,
)
from feedserver.parse import article as article_parser
from feedserver.render.feeds import Context, ttl_minutes
from feedserver.render.site import EPOCH, Site
from feedserver.topics import rules as topic_rules


def parse_source(source: SourceFile, settings: Settings, index: MediaIndex = NO_MEDIA
                 ) -> tuple[Parsed | None, list[Problem]]:
    """One file -> Parsed, or None and a problem naming the file and the reason.
    ``index``: the media files and articles its relative references may name."""
    warnings: list[str] = []
    try:
        parsed = article_parser.parse(source, settings, warnings, index)
    except ArticleError as exc:
        return None, [Problem(source.path, str(exc))]
    except RecursionError:
        return None, [Problem(source.path, "nests too deeply to parse")]
    return parsed, [Problem(source.path, w, "warning") for w in warnings]


def assemble(parsed: dict[str, Parsed], identities: dict[str, Identity], settings: Settings,
             now: datetime, render_code: str) -> tuple[Site, list[Problem]]:
    """Articles that are due and not drafts, their topics and the channels, with content
    (tests and tools: every body is at hand)."""
    halves = {path: split(item, settings) for path, item in parsed.items()}
    made = assemble_site({p: h[0] for p, h in halves.items()}, identities, settings, now,
                         render_code=render_code)
    site = made.site
    bodies = {a.id: halves[a.path][1] for a in site.articles}
    return with_content(site, bodies), made.problems


def with_content(site: Site, bodies: Mapping[str, Body]) -> Site:
    """``site`` with the content of the articles in ``bodies`` (by article id) filled in,
    in its article list and in every channel listing them."""
    full = {a.id: fill(a, bodies[a.id]) for a in site.articles if a.id in bodies}
    return with_full_articles(site, full)


def with_full_articles(site: Site, full: Mapping[str, Article],
                       drawn: Container[str] | None = None) -> Site:
    """``site`` with each article replaced by its full copy in ``full`` (by id).

    ``drawn``: the slugs of the only archive pages to fill (None: all).  The others are
    fresh, neither rendered nor read this build, and stay as they are: filling them was
    a pass over every article of every channel's history."""
    if drawn is None:
        archives = filled_channels(site.archives, full)
    else:
        filled = iter(filled_channels(tuple(page for page in site.archives
                                            if page.slug in drawn), full))
        archives = tuple(next(filled) if page.slug in drawn else page
                         for page in site.archives)
    return replace(site, articles=tuple(with_full(site.articles, full)),
                   channels=filled_channels(site.channels, full), archives=archives)


@dataclass(frozen=True)
class Assembled:
    """The site (articles without content) and what was made on the way, for the shell
    to remember: ``articles`` made from new stubs or identities (by path), and the
    channels' signatures with what they were made from (see :class:`Known`)."""

    site: Site
    problems: list[Problem]
    articles: Memo
    channels: ChannelMemo
    names: dict[str, str]
    rare: frozenset[str] = frozenset()  # the topics dropped for too few articles (RARE)


@dataclass
class _Due:
    """The articles a build publishes, with what assembling them found on the way."""

    by_id: dict[str, Article] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    next_due: datetime | None = None
    later: dict[str, datetime] = field(default_factory=dict)  # path -> when it is due
    detected: dict[str, tuple[str, str]] = field(default_factory=dict)  # slug -> (name, kind)
    rare: frozenset[str] = frozenset()  # the detected topics too few articles share


def _due(stubs: Mapping[str, Stub], identities: Mapping[str, Identity], settings: Settings,
         now: datetime, known: Known, made: Memo) -> _Due:
    """Articles that are due and not drafts (content-free), one per id; the articles not
    in ``known`` go into ``made``."""
    out = _Due()
    by_id, digests, name = out.by_id, out.digests, out.names.setdefault
    for path in sorted(stubs):
        stub, identity = stubs[path], identities[path]
        if stub.draft:
            continue
        article = made_article(path, stub, identity, settings, known, made)
        if article.published > now:
            out.next_due = min(out.next_due or article.published, article.published)
            out.later[path] = article.published
            continue
        held = by_id.get(article.id)
        if held is not None:  # the first path keeps it, but an id set in front matter never
            refused, kept = path, held.path  # takes one another article holds unasked
            if stubs[kept].explicit_id == article.id and stub.explicit_id != article.id:
                refused, kept = kept, path
            out.problems.append(Problem(refused, f"id {article.id} is already used by "
                                                 f"{kept}; skipped"))
            if refused == path:
                continue
        for slug, shown in stub.names:
            name(slug, shown)
        for slug, shown, kind in stub.detected:
            out.detected.setdefault(slug, (shown, kind))
        by_id[article.id] = article
        digests[article.id] = stub.digest
    return out


def made_article(path: str, stub: Stub, identity: Identity, settings: Settings,
                 known: Known, made: Memo) -> Article:
    """The article (without content) of the file at ``path``: the one ``known`` made last
    time from this stub and identity, else a new one, also put in ``made``."""
    article = known_article(stub, identity, known.articles)
    if article is None:
        article = article_of(stub, identity, settings, None)
        made[path] = (stub, identity, article)
    return article


def _limit_topics(due: _Due, most: int, stubs: Mapping[str, Stub],
                  identities: Mapping[str, Identity], known: Known, made: Memo) -> None:
    """Keep the ``most`` topics with the most articles (ties: by slug); one problem.

    Tags are free text: 40 scraped files with 50 tags each made 2,001 channels
    (200 MB of feeds and pages).  The articles lose the topics left out, so no
    item names a category that has no channel (the very objects of last time when
    nothing else changed: :func:`trimmed`).
    """
    counts = _counted(due.by_id.values())
    ranked = sorted(counts, key=lambda slug: (-counts[slug], slug))
    kept = set(ranked[:most])
    for key in _refused(due.by_id, kept.issuperset):
        article = due.by_id[key]
        due.by_id[key] = trimmed(article, tuple(t for t in article.topics if t in kept),
                                  LIMITED, stubs, identities, known, made)
    due.names = {slug: name for slug, name in due.names.items() if slug in kept}
    due.detected = {slug: v for slug, v in due.detected.items() if slug in kept}
    left = len(ranked) - len(kept)
    if left:
        due.problems.append(Problem("topics", f"{left:,} of {len(ranked):,} topics left out: "
                                              f"the site may have at most {most + 1:,} channels "
                                              "(max_channels); the topics with the fewest "
                                              "articles go first", "warning"))


def _drop_rare(due: _Due, stubs: Mapping[str, Stub], identities: Mapping[str, Identity],
               settings: Settings, known: Known, made: Memo) -> None:
    """Detected topics that fewer than ``min_topic_articles`` articles share make no channel.

    Topics config or front matter name are kept whatever their count.  The
    articles lose the topics left out (no item names a category without a
    channel); a trimmed article is the very object made last time when its stub,
    identity, kept topics and links (:mod:`feedserver.build.links`) are the same
    (:func:`trimmed`), so the channels listing it keep their signatures.
    """
    exempt = {rule.slug for rule in settings.topics} | set(due.names)
    rare = due.rare = frozenset(
        slug for slug, count in _counted(due.by_id.values()).items()
        if count < settings.min_topic_articles and slug in due.detected
        and slug not in exempt)
    if not rare:
        return
    for key in _refused(due.by_id, rare.isdisjoint):
        article = due.by_id[key]
        due.by_id[key] = trimmed(article, tuple(t for t in article.topics if t not in rare),
                                  RARE, stubs, identities, known, made)
    due.detected = {slug: v for slug, v in due.detected.items() if slug not in rare}


_TOPICS = attrgetter("topics")


def _counted(articles: Iterable[Article]) -> Counter[str]:
    """How many of ``articles`` name each topic, counted in C (no Python step for each of
    the 126,000 topic names 50,000 articles carry)."""
    return Counter(chain.from_iterable(map(_TOPICS, articles)))


def _refused(by_id: dict[str, Article], keeps: Callable[[tuple[str, ...]], bool]
             ) -> list[str]:
    """The ids of the articles whose topics ``keeps`` refuses, found in C."""
    return list(compress(by_id, map(not_, map(keeps, map(_TOPICS, by_id.values())))))


def trimmed(article: Article, kept: tuple[str, ...], stage: str, stubs: Mapping[str, Stub],
             identities: Mapping[str, Identity], known: Known, made: Memo) -> Article:
    """``article`` with only the ``kept`` topics: the very object ``stage`` made last time
    when its stub, identity, kept topics and links (:mod:`feedserver.build.links`) are the
    same (memo key :func:`trimmed_key`), so the channels listing it keep their signatures
    without hashing (a new copy each build made every channel of a 50,000-article site
    past ``max_channels`` sign again: 0.7 s of every build)."""
    path = article.path
    memo_key = trimmed_key(path, stage)
    stub, identity = stubs[path], identities[path]
    last = known_article(stub, identity, {path: known.articles[memo_key]}
                         if memo_key in known.articles else {})
    if last is None or last.topics != kept or last.links != article.links:
        last = replace(article, topics=kept)
        made[memo_key] = (stub, identity, last)
    return last


def _languages(ordered: tuple[Article, ...], settings: Settings) -> dict[str, Topic]:
    """One channel per language the articles are written in (``languages/<code>``)."""
    codes = sorted(set(layout.language_codes((a.lang for a in ordered),
                                             settings.language).values()))
    return {layout.language_slug(code): Topic(slug=layout.language_slug(code),
                                              name=language_name(code, settings.language),
                                              description=f"Articles in "
                                              f"{language_name(code, settings.language)}.",
                                              kind="language")
            for code in codes}


def language_name(code: str, site_language: str) -> str:
    """A language's name as the site's readers call it (Babel's CLDR data), else the code."""
    from babel import Locale, UnknownLocaleError

    try:
        shown = Locale.parse(code, sep="-").get_display_name(
            Locale.parse(layout.language_code(site_language, "en"), sep="-"))
    except (UnknownLocaleError, ValueError):
        return code
    return shown[:1].upper() + shown[1:] if shown else code


def assemble_site(stubs: Mapping[str, Stub], identities: Mapping[str, Identity],
                  settings: Settings, now: datetime,
                  known: Known = NOTHING_KNOWN, *, render_code: str,
                  artwork: str = "", created: datetime = EPOCH) -> Assembled:
    """The site from stubs (topics already assigned), without any article's content.

    Channels, their order and their signatures never need content: the shell
    adds it afterwards for what will be rendered (:func:`with_content`).
    ``known`` (what the last build of a long-lived caller made, for the same
    settings) lends the articles and channel signatures made then from the same
    stubs and identities; it is only read.  ``artwork``: the versioned URL of the
    podcast artwork when it is a file in ``seeds/`` (:meth:`MediaScan.artwork`), drawn
    in and signing the podcast channels only.  ``created``: when the site's state was
    first built (:meth:`~feedserver.identify.ledger.Ledger.created`), the date of a site
    with nothing to publish.
    """
    made: Memo = {}
    due = _due(stubs, identities, settings, now, known, made)
    # Before topics are trimmed: ``made`` keeps articles as their files and links make them.
    due.problems += resolve_links(due.by_id, stubs, identities, due.later, made)
    if due.detected:
        _drop_rare(due, stubs, identities, settings, known, made)
    spoken = len(set(layout.language_codes((a.lang for a in due.by_id.values()),
                                           settings.language).values()))  # one channel each
    if len(due.names) + len(due.detected) + spoken >= settings.max_channels:  # and 'all'
        _limit_topics(due, max(0, settings.max_channels - 1 - spoken), stubs, identities,
                      known, made)
    ordered = newest_first(due.by_id.values())
    catalog = topic_rules.catalog(settings, due.names, due.detected)
    catalog.update(_languages(tuple(ordered), settings))
    context = Context(site_title=settings.site_title, base_url=settings.base_url,
                      language=settings.language, author=settings.author,
                      ttl_minutes=ttl_minutes(settings.refresh_interval),
                      topic_names={slug: t.name for slug, t in catalog.items()},
                      hubs=settings.hub_urls,
                      podcast=_published_artwork(settings, artwork))
    listed = build_channels(tuple(ordered), catalog, settings)
    if not ordered:  # nothing published: no article dates the site ('all', alone)
        listed = tuple(replace(c, updated=created) for c in listed)
    channels, archives = with_archives(ordered, listed, identities, settings)
    used = {c.slug for c in channels}
    topics = {slug: topic for slug, topic in catalog.items() if slug in used}
    names = context.topic_names
    signed = sign_channels(channels + archives, settings, render_code, artwork, names,
                           due.digests, known.channels if known.names == names else {})
    site = Site(tuple(ordered), topics, channels, context, due.next_due,
                {slug: entry[2] for slug, entry in signed.items()}, archives=archives)
    return Assembled(site, due.problems, made, signed, dict(names), due.rare)


def _published_artwork(settings: Settings, artwork: str) -> Podcast | None:
    """The podcast settings as feeds draw them: a local artwork's versioned URL."""
    podcast = settings.podcast
    return replace(podcast, image=artwork) if podcast is not None and artwork else podcast


def sign_channels(channels: tuple[Channel, ...], settings: Settings, render_code: str,
                  artwork: str, names: dict[str, str], digests: Mapping[str, str],
                  known: Mapping[str, tuple[tuple[object, ...], tuple[Article, ...], str]]
                  ) -> ChannelMemo:
    """Each channel's signature and what it was made from; one listing the very article
    objects it listed last time (see :class:`Known`), under the same head and topic
    names, keeps its own.  ``digests``: each listed article's stub digest, by id.

    The renderers' code version is in every channel's head: a channel listing the very
    articles it listed last time keeps its signature only under the same code.  The
    podcast's channels are drawn with more (its artwork), which signs them too."""
    shaping = f"{settings.fingerprint()}\x1f{render_code}"
    podcasts = frozenset(settings.podcast.channels) if settings.podcast and artwork \
        else frozenset()
    own = {slug: f"{shaping}\x1f{artwork}" for slug in podcasts}
    kept: ChannelMemo = {}
    keys: dict[str, str] = {}
    base = shaping
    for c in channels:
        shaping = own.get(c.slug, base)
        head = (shaping, c.title, c.description, c.path, c.html_url, c.updated,
                archive_links(c))
        last = known.get(c.slug)
        if last is not None and last[0] == head and len(last[1]) == len(c.articles) \
                and all(map(is_, last[1], c.articles)):
            kept[c.slug] = last
            continue
        for a in c.articles:
            if a.id not in keys:
                keys[a.id] = article_key(a, digests[a.id])
        kept[c.slug] = (head, c.articles, channel_signature(c, shaping, keys, names))
    return kept


def build_channels(ordered: tuple[Article, ...], catalog: dict[str, Topic],
                   settings: Settings) -> tuple[Channel, ...]:
    """'all' first, then one channel per topic that has articles, sorted by slug, then
    one per language (``catalog`` holds the languages' entries, kind 'language')."""
    members: dict[str, list[Article]] = {}
    languages: dict[str, list[Article]] = {}
    codes = layout.language_codes((a.lang for a in ordered), settings.language)
    most = settings.max_items
    for article in ordered:
        for slug in article.topics:
            bucket = members.setdefault(slug, [])
            if len(bucket) < most:
                bucket.append(article)
        bucket = languages.setdefault(codes[article.lang], [])
        if len(bucket) < most:
            bucket.append(article)
    channels = [_channel("", settings.site_title, settings.site_description, "",
                         ordered[: settings.max_items], settings)]
    for slug in sorted(members):
        topic = catalog[slug]
        channels.append(_channel(slug, f"{settings.site_title}: {topic.name}", topic.description,
                                 layout.topic_folder(slug), tuple(members[slug]), settings))
    for code in sorted(languages):
        topic = catalog[layout.language_slug(code)]
        channels.append(_channel(topic.slug, f"{settings.site_title}: {topic.name}",
                                 topic.description, layout.language_folder(code),
                                 tuple(languages[code]), settings))
    return tuple(channels)


_LANG = attrgetter("lang")


def _channel(slug: str, title: str, description: str, path: str,
             listed: tuple[Article, ...], settings: Settings) -> Channel:
    # site_url (only with pages = false: config): the site's pages live there, none here.
    html_url = settings.site_url or layout.folder_url(settings.base_url, path)
    return Channel(slug=slug or "all", title=title, description=description or title,
                   path=path, html_url=html_url, **listing_facts(listed, settings))


def listing_facts(listed: tuple[Article, ...], settings: Settings) -> dict[str, Any]:
    """What a channel takes from the articles it lists: its ``updated`` date, its
    language and its ``max_age`` (:func:`build_channels`, and
    :func:`feedserver.build.reassemble.reassembled` when one of them changed)."""
    # A channel whose articles share one language declares it; a mixed one the site's
    # (each item declares its own).
    spoken = {lang or settings.language for lang in set(map(_LANG, listed))}
    return {"articles": listed, "updated": max(map(UPDATED, listed), default=EPOCH),
            "language": spoken.pop() if len(spoken) == 1 else settings.language,
            "max_age": channel_max_age(map(UPDATED, listed), settings.refresh_interval,
                                       settings.freshness_ceiling)}
