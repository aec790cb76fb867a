"""The pure core, end to end: parsed articles + identities + now -> validated files.

Nothing here touches the disk, the clock, the database or another process;
the shell (:mod:`feedserver.build.run`) hands in what it read, the ``now`` it
chose and what the last build made (a read-only :class:`Known`), and gets back
rendered files, problems and what this build made (:class:`Assembled`), which
it keeps in its :class:`~feedserver.build.memory.BuildMemory`.  Rendering over
worker processes is the shell passing a :data:`Renderer` that maps
:func:`render_channel`'s work over them; the default renders here.  That is
what makes a build deterministic (same input, same bytes) and testable
without a disk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from feedserver.build.articles import (
    NOTHING_KNOWN,
    ChannelMemo,
    Known,
    Memo,
    article_of,
    fill,
    filled_channels,
    known_article,
    newest_first,
    with_full,
)
from feedserver.build.signatures import article_key, channel_signature, split
from feedserver.config import Settings
from feedserver.core.errors import ArticleError
from feedserver.core.records import (
    Article,
    Body,
    Channel,
    Identity,
    Parsed,
    Problem,
    Rendered,
    SourceFile,
    Stub,
    Topic,
)
from feedserver.parse import article as article_parser
from feedserver.render.feeds import Context, ItemCache, render, ttl_minutes
from feedserver.render.formats import FORMATS, Format
from feedserver.render.site import EPOCH, Site
from feedserver.topics import rules as topic_rules
from feedserver.validate import item_faults, validate

Check = Callable[[Channel, str, bytes], list[Problem]]
# Renders stale channels (validated) into an Output: :func:`render_each` here, or the
# shell's :class:`feedserver.build.parallel.Executor` over worker processes.
Renderer = Callable[["Site", list[Channel]], "Output"]



@dataclass
class Output:
    """What a build produced: files that passed the gate, and every problem.

    ``kept`` lists published paths that are still current without being
    rendered again (fresh channels); ``staged`` holds files the shell's worker processes
    already wrote to temporary files (``publish.Prepared`` values).
    """

    files: list[Rendered] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)
    staged: list[Any] = field(default_factory=list)

    def merge(self, other: Output) -> None:
        """Add another output (one worker's share) to this one."""
        self.files += other.files
        self.problems += other.problems
        self.failed |= other.failed
        self.kept |= other.kept
        self.staged += other.staged


def parse_source(source: SourceFile, settings: Settings) -> tuple[Parsed | None, list[Problem]]:
    """One file -> Parsed, or None and a problem naming the file and the reason."""
    warnings: list[str] = []
    try:
        parsed = article_parser.parse(source, settings, warnings)
    except ArticleError as exc:
        return None, [Problem(source.path, str(exc))]
    except RecursionError:
        return None, [Problem(source.path, "nests too deeply to parse")]
    return parsed, [Problem(source.path, w, "warning") for w in warnings]


def assemble(parsed: dict[str, Parsed], identities: dict[str, Identity], settings: Settings,
             now: datetime) -> tuple[Site, list[Problem]]:
    """Articles that are due and not drafts, their topics and the channels, with content
    (tests and tools: every body is at hand)."""
    halves = {path: split(item, settings) for path, item in parsed.items()}
    made = assemble_site({p: h[0] for p, h in halves.items()}, identities, settings, now)
    site = made.site
    bodies = {a.id: halves[a.path][1] for a in site.articles}
    return with_content(site, bodies), made.problems


def with_content(site: Site, bodies: Mapping[str, Body]) -> Site:
    """``site`` with the content of the articles in ``bodies`` (by article id) filled in,
    in its article list and in every channel listing them."""
    full = {a.id: fill(a, bodies[a.id]) for a in site.articles if a.id in bodies}
    return with_full_articles(site, full)


def with_full_articles(site: Site, full: Mapping[str, Article]) -> Site:
    """``site`` with each article replaced by its full copy in ``full`` (by id)."""
    return replace(site, articles=tuple(with_full(site.articles, full)),
                   channels=filled_channels(site.channels, full))


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


@dataclass
class _Due:
    """The articles a build publishes, with what assembling them found on the way."""

    by_id: dict[str, Article] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    next_due: datetime | None = None


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
        article = known_article(stub, identity, known.articles)
        if article is None:
            article = article_of(stub, identity, settings, None)
            made[path] = (stub, identity, article)
        if article.published > now:
            out.next_due = min(out.next_due or article.published, article.published)
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
        by_id[article.id] = article
        digests[article.id] = stub.digest
    return out


def _limit_topics(due: _Due, most: int) -> None:
    """Keep the ``most`` topics with the most articles (ties: by slug); one problem.

    Tags are free text: 40 scraped files with 50 tags each made 2,001 channels
    (200 MB of feeds and pages).  The articles lose the topics left out, so no
    item names a category that has no channel.
    """
    counts = Counter(slug for article in due.by_id.values() for slug in article.topics)
    ranked = sorted(counts, key=lambda slug: (-counts[slug], slug))
    kept = set(ranked[:most])
    for key, article in due.by_id.items():
        if not kept.issuperset(article.topics):
            due.by_id[key] = replace(article, topics=tuple(t for t in article.topics
                                                           if t in kept))
    due.names = {slug: name for slug, name in due.names.items() if slug in kept}
    left = len(ranked) - len(kept)
    if left:
        due.problems.append(Problem("topics", f"{left:,} of {len(ranked):,} topics left out: "
                                              f"the site may have at most {most + 1:,} channels "
                                              "(max_channels); the topics with the fewest "
                                              "articles go first", "warning"))


def assemble_site(stubs: Mapping[str, Stub], identities: Mapping[str, Identity],
                  settings: Settings, now: datetime,
                  known: Known = NOTHING_KNOWN) -> Assembled:
    """The site from stubs (topics already assigned), without any article's content.

    Channels, their order and their signatures never need content: the shell
    adds it afterwards for what will be rendered (:func:`with_content`).
    ``known`` (what the last build of a long-lived caller made, for the same
    settings) lends the articles and channel signatures made then from the same
    stubs and identities; it is only read.
    """
    made: Memo = {}
    due = _due(stubs, identities, settings, now, known, made)
    if len(due.names) >= settings.max_channels:  # 'all' is a channel too
        _limit_topics(due, settings.max_channels - 1)
    ordered = newest_first(due.by_id.values())
    catalog = topic_rules.catalog(settings, due.names)
    context = Context(site_title=settings.site_title, base_url=settings.base_url,
                      language=settings.language, author=settings.author,
                      ttl_minutes=ttl_minutes(settings.refresh_interval),
                      topic_names={slug: t.name for slug, t in catalog.items()})
    channels = build_channels(tuple(ordered), catalog, settings)
    used = {c.slug for c in channels}
    topics = {slug: topic for slug, topic in catalog.items() if slug in used}
    names = context.topic_names
    signed = _signatures(channels, settings.fingerprint(), names, due.digests,
                         known.channels if known.names == names else {})
    site = Site(tuple(ordered), topics, channels, context, due.next_due,
                {slug: entry[2] for slug, entry in signed.items()})
    return Assembled(site, due.problems, made, signed, dict(names))


def _signatures(channels: tuple[Channel, ...], shaping: str, names: dict[str, str],
                digests: dict[str, str], known: Mapping[str, tuple[tuple[object, ...],
                                                              tuple[Article, ...], str]]
                ) -> ChannelMemo:
    """Each channel's signature and what it was made from; one listing the very article
    objects it listed last time (see :class:`Known`), under the same head and topic
    names, keeps its own."""
    kept: ChannelMemo = {}
    keys: dict[str, str] = {}
    for c in channels:
        head = (c.title, c.description, c.path, c.html_url, c.updated)
        last = known.get(c.slug)
        if last is not None and last[0] == head and len(last[1]) == len(c.articles) \
                and all(a is b for a, b in zip(last[1], c.articles, strict=True)):
            kept[c.slug] = last
            continue
        for a in c.articles:
            if a.id not in keys:
                keys[a.id] = article_key(a, digests[a.id])
        kept[c.slug] = (head, c.articles, channel_signature(c, shaping, keys, names))
    return kept


def build_channels(ordered: tuple[Article, ...], catalog: dict[str, Topic],
                   settings: Settings) -> tuple[Channel, ...]:
    """'all' first, then one channel per topic that has articles, sorted by slug."""
    members: dict[str, list[Article]] = {}
    for article in ordered:
        for slug in article.topics:
            bucket = members.setdefault(slug, [])
            if len(bucket) < settings.max_items:
                bucket.append(article)
    channels = [_channel("", settings.site_title, settings.site_description, "",
                         ordered[: settings.max_items], settings)]
    for slug in sorted(members):
        topic = catalog[slug]
        channels.append(_channel(slug, f"{settings.site_title}: {topic.name}", topic.description,
                                 f"topics/{slug}", tuple(members[slug]), settings))
    return tuple(channels)


def _channel(slug: str, title: str, description: str, path: str,
             listed: tuple[Article, ...], settings: Settings) -> Channel:
    updated = max((a.updated for a in listed), default=EPOCH)
    html_url = f"{settings.base_url}{path}/" if path else settings.base_url
    return Channel(slug=slug or "all", title=title, description=description or title,
                   path=path, html_url=html_url, articles=listed, updated=updated)


def channel_file(channel: Channel, filename: str) -> str:
    """Output path of one of a channel's files ('feed.rss', 'topics/x/feed.rss')."""
    return f"{channel.path}/{filename}" if channel.path else filename


def render_checked(channel: Channel, fmt: Format, ctx: Context, cache: ItemCache,
                   check: Check = validate) -> tuple[bytes, list[Problem]]:
    """One channel in one format and what the gate found; a renderer that raises is a
    problem of this channel (feedgen and lxml see text from the seeds), never the build's.
    :mod:`feedserver.build.parallel` calls it too."""
    try:
        body = render(channel, fmt, ctx, cache)
    except Exception as exc:  # one channel's renderer, reported; never the whole build
        return b"", [Problem(f"channel {channel.slug or 'all'} ({fmt.filename})",
                             f"renderer raised {type(exc).__name__}: {exc!s:.200}")]
    return body, check(channel, fmt.name, body)


def render_channel(site: Site, channel: Channel, check: Check = validate,
                   cache: ItemCache | None = None) -> Output:
    """One channel in every format, kept only if every format passes the gate."""
    cache = cache if cache is not None else ItemCache()
    out = Output()
    rendered: list[Rendered] = []
    for fmt in FORMATS.values():
        body, found = render_checked(channel, fmt, site.context, cache, check)
        out.problems += found
        rendered.append(Rendered(channel_file(channel, fmt.filename), body, fmt.media_type,
                                 channel.updated, channel.slug, fmt.name, fmt.cors))
    if out.problems:
        out.failed.add(channel.slug)
    else:
        out.files = rendered
    return out


def render_each(site: Site, channels: list[Channel], check: Check = validate,
                cache: ItemCache | None = None) -> Output:
    """Each of ``channels`` rendered and validated here, one after the other."""
    cache = cache if cache is not None else ItemCache()
    out = Output()
    for channel in channels:
        out.merge(render_channel(site, channel, check, cache))
    return out


def render_channels(site: Site, channels: Iterable[Channel], check: Check = validate,
                    cache: ItemCache | None = None, renderer: Renderer | None = None) -> Output:
    """Render each stale channel in each format and keep only what passes the gate.

    A channel that fails in any format is left out in every format (so its
    three files never disagree) and is named in ``failed``: the shell keeps
    its previous version.  Fresh channels (see :class:`Site`) are not
    rendered: their published files are listed in ``kept``.  ``renderer``
    (the shell's worker processes) renders the stale channels instead of
    :func:`render_each`, with the same result.
    """
    channels = list(channels)
    out = Output(kept={channel_file(c, fmt.filename) for c in channels
                       if c.slug in site.fresh for fmt in FORMATS.values()})
    cache = cache if cache is not None else ItemCache()
    stale = _stale_renderer(check, cache, renderer)
    out.merge(stale(site, site.stale(channels)))
    if out.failed and check is validate:
        return _without_culprits(site, out, cache, stale)
    return out


def _stale_renderer(check: Check, cache: ItemCache, renderer: Renderer | None) -> Renderer:
    if renderer is not None and check is validate:
        return renderer
    return lambda site, channels: render_each(site, channels, check, cache)


def _culprits(channel: Channel, ctx: Context, cache: ItemCache) -> dict[str, str] | None:
    """Articles (id -> reason) that keep ``channel`` from passing the gate, or None when
    the channel fails as a whole.  Runs only for failed channels, in this process."""
    found: dict[str, str] = {}
    for fmt in FORMATS.values():
        for article in channel.articles:  # an item its renderer cannot draw
            try:
                cache.get(fmt, article, ctx)
            except Exception as exc:  # the item's fault, not the channel's
                found.setdefault(article.id, f"its {fmt.name} item cannot be rendered "
                                             f"({type(exc).__name__}: {exc!s:.120})")
    listed = tuple(a for a in channel.articles if a.id not in found)
    trial = replace(channel, articles=listed)
    for fmt in FORMATS.values():
        try:
            body = render(trial, fmt, ctx, cache)
        except Exception:  # the channel itself cannot be drawn
            return None
        faults = item_faults(trial, fmt.name, body)
        if faults is None:
            return None
        for index, reason in faults.items():
            found.setdefault(listed[index].id, f"{fmt.filename} {reason.split(' ', 2)[-1]}")
    return found or None


def _without_culprits(site: Site, out: Output, cache: ItemCache, stale: Renderer) -> Output:
    """Render failed channels again without the items at fault, one problem per file.

    One scraped title that a reader's parser reads differently must not hold
    back every later article of every channel it is in.  Each channel that
    listed it drops it (in all three formats alike: the whole channel is
    rendered again) and the file is named once.  The manifest keeps the
    channel's signature over the full listing: the same inputs give the same
    output, so the next build may skip it, and an edit re-renders it.
    """
    failed = [c for c in site.channels if c.slug in out.failed]
    culprits: dict[str, str] = {}
    mended: dict[str, Channel] = {}
    for channel in failed:
        found = _culprits(channel, site.context, cache)
        if found is None:
            continue
        culprits.update(found)
        listed = tuple(a for a in channel.articles if a.id not in found)
        mended[channel.slug] = replace(channel, articles=listed,
                                       updated=max((a.updated for a in listed), default=EPOCH))
    if not mended:
        return out
    retry = replace(site, channels=tuple(mended.get(c.slug, c) for c in site.channels))
    again = stale(retry, [mended[slug] for slug in mended])
    prefixes = tuple(f"channel {slug} (" for slug in mended)
    out.problems = [p for p in out.problems if not p.where.startswith(prefixes)]
    out.failed -= set(mended)
    out.merge(again)
    paths = {a.id: a.path for c in failed for a in c.articles}
    out.problems += [Problem(paths[key], f"left out of the feeds this build: {reason}")
                     for key, reason in sorted(culprits.items(), key=lambda kv: paths[kv[0]])]
    return out
