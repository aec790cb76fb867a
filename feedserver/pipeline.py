"""The pure core, end to end: parsed articles + identities + now -> validated files.

Nothing here touches the disk, the clock or the database; the shell
(:mod:`feedserver.job`) hands in what it read and the ``now`` it chose, and
gets back rendered files and problems.  That is what makes a build
deterministic (same input, same bytes) and testable without a disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, overload

from . import articles as article_parser
from . import topics as topic_rules
from .config import Settings
from .errors import ArticleError
from .feeds import FORMATS, Context, ItemCache, render, ttl_minutes
from .incremental import Body, Stub, article_key, channel_signature, split
from .models import Article, Channel, Identity, Parsed, Problem, Rendered, SourceFile, Topic
from .validate import validate

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Check = Callable[[Channel, str, bytes], list[Problem]]
Fetch = Callable[[list[str]], Mapping[str, Body]]
Memo = dict[str, tuple[Stub, Identity, Article]]
# Placeholder content of an article whose content was not fetched yet (compared by
# identity: a real article never holds this very string object).
_UNREAD = Body("".join(["\x00", "unread"]), "")


@dataclass(frozen=True)
class Site:
    """Everything the renderers need: articles newest first, topics, channels.

    ``signatures`` holds each channel's content signature; channels named in
    ``fresh`` are already published with that signature and are not rendered
    again.  ``executor``, set by the shell, renders the other channels (in
    parallel worker processes); without it they are rendered here.
    """

    articles: Sequence[Article]
    topics: dict[str, Topic]
    channels: tuple[Channel, ...]
    context: Context
    next_due: datetime | None = None
    signatures: dict[str, str] = field(default_factory=dict)
    fresh: frozenset[str] = frozenset()
    executor: Callable[[Site, list[Channel]], Output] | None = field(default=None,
                                                                     compare=False)

    def stale(self, channels: Iterable[Channel]) -> list[Channel]:
        """The channels whose files must be rendered (not fresh)."""
        return [c for c in channels if c.slug not in self.fresh]


@dataclass
class Output:
    """What a build produced: files that passed the gate, and every problem.

    ``kept`` lists published paths that are still current without being
    rendered again (fresh channels); ``staged`` holds files a parallel executor
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


def _second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def make_article(stub: Stub, identity: Identity, slugs: tuple[str, ...], settings: Settings,
                 body: Body) -> Article:
    """Combine content and identity; explicit dates win over the ledger's."""
    published = _second(stub.date or identity.first_seen)
    updated = _second(stub.updated or max(identity.changed, published))
    return Article(
        id=identity.id, slug=identity.slug, path=stub.path, title=stub.title,
        link=f"{settings.base_url}articles/{identity.slug}/",
        content_html=body.content_html, summary=body.summary,
        published=published, updated=max(updated, published), topics=slugs,
        author=stub.author or (settings.author or None),
        lang=stub.lang or settings.language,
    )


def _newest_first(article: Article) -> tuple[float, str]:
    return (-article.published.timestamp(), article.id)


def assemble(parsed: dict[str, Parsed], identities: dict[str, Identity], settings: Settings,
             now: datetime) -> tuple[Site, list[Problem]]:
    """Articles that are due and not drafts, their topics and the channels."""
    halves = {path: split(item, settings) for path, item in parsed.items()}
    return assemble_site({p: h[0] for p, h in halves.items()}, identities, settings, now,
                         lambda paths: {p: halves[p][1] for p in paths})


def assemble_site(stubs: Mapping[str, Stub], identities: Mapping[str, Identity],
                  settings: Settings, now: datetime, bodies: Fetch,
                  memo: Memo | None = None) -> tuple[Site, list[Problem]]:
    """The site from stubs (topics already assigned); ``bodies`` fetches content.

    Content is fetched for the articles the channels list, at once; every
    other article's only when something reads ``Site.articles`` (the pages).
    Channels, their order and their signatures never need content.  ``memo``
    (kept by a long-lived caller, cleared when settings change) reuses the
    article made last time from the same stub and identity.
    """
    problems: list[Problem] = []
    names: dict[str, str] = {}
    by_id: dict[str, Article] = {}
    digests: dict[str, str] = {}
    next_due: datetime | None = None
    for path in sorted(stubs):
        stub, identity = stubs[path], identities[path]
        if stub.draft:
            continue
        article = _article(stub, identity, settings, memo)
        if article.published > now:
            next_due = min(next_due or article.published, article.published)
            continue
        if article.id in by_id:
            problems.append(Problem(path, f"id {article.id} is already used by "
                                          f"{by_id[article.id].path}; skipped"))
            continue
        for slug, name in stub.names:
            names.setdefault(slug, name)
        by_id[article.id] = article
        digests[article.id] = stub.digest
    ordered = sorted(by_id.values(), key=_newest_first)
    catalog = topic_rules.catalog(settings, names)
    context = Context(site_title=settings.site_title, base_url=settings.base_url,
                      language=settings.language, author=settings.author,
                      ttl_minutes=ttl_minutes(settings.refresh_interval),
                      topic_names={slug: t.name for slug, t in catalog.items()})
    articles = Articles(ordered, bodies)
    channels = articles.fill(build_channels(tuple(ordered), catalog, settings))
    used = {c.slug for c in channels}
    topics = {slug: topic for slug, topic in catalog.items() if slug in used}
    keys = {a.id: article_key(a, digests[a.id]) for c in channels for a in c.articles}
    shaping = settings.fingerprint()
    signatures = {c.slug: channel_signature(c, shaping, keys, context.topic_names)
                  for c in channels}
    return Site(articles, topics, channels, context, next_due, signatures), problems


def _article(stub: Stub, identity: Identity, settings: Settings, memo: Memo | None) -> Article:
    """The article (without content) for a stub, from the memo when nothing changed."""
    if memo is not None:
        known = memo.get(stub.path)
        if known is not None and known[0] == stub and known[1] == identity:
            return known[2]
    article = make_article(stub, identity, stub.slugs, settings, _UNREAD)
    if memo is not None:
        memo[stub.path] = (stub, identity, article)
    return article


class Articles(Sequence[Article]):
    """Every article, newest first, whose content is fetched on first need.

    A feeds-only or incremental build reads the content of listed articles
    only; the first full read (the pages) fetches the rest in one go.
    """

    def __init__(self, light: list[Article], fetch: Fetch) -> None:
        self._items = light
        self._fetch = fetch
        self._full = False

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Article: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Article]: ...

    def __getitem__(self, index: int | slice) -> Article | Sequence[Article]:
        if not self._full:
            self._items = self._filled(self._items)
            self._full = True
        return self._items[index]

    def _filled(self, articles: list[Article]) -> list[Article]:
        wanted = [a.path for a in articles if a.content_html is _UNREAD.content_html]
        found = self._fetch(wanted) if wanted else {}
        return [a if a.content_html is not _UNREAD.content_html else
                replace(a, content_html=found[a.path].content_html,
                        summary=found[a.path].summary) for a in articles]

    def fill(self, channels: tuple[Channel, ...]) -> tuple[Channel, ...]:
        """The channels with every listed article's content (one fetch for all)."""
        listed = {a.id: a for c in channels for a in c.articles}
        full = {a.id: a for a in self._filled(list(listed.values()))}
        self._items = [full.get(a.id, a) for a in self._items]
        return tuple(replace(c, articles=tuple(full[a.id] for a in c.articles))
                     for c in channels)


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


def render_channel(site: Site, channel: Channel, check: Check = validate,
                   cache: ItemCache | None = None) -> Output:
    """One channel in every format, kept only if every format passes the gate."""
    cache = cache if cache is not None else ItemCache()
    out = Output()
    rendered: list[Rendered] = []
    for fmt in FORMATS.values():
        body = render(channel, fmt, site.context, cache)
        out.problems += check(channel, fmt.name, body)
        rendered.append(Rendered(channel_file(channel, fmt.filename), body, fmt.media_type,
                                 channel.updated, channel.slug))
    if out.problems:
        out.failed.add(channel.slug)
    else:
        out.files = rendered
    return out


def render_channels(site: Site, channels: Iterable[Channel], check: Check = validate,
                    cache: ItemCache | None = None) -> Output:
    """Render each stale channel in each format and keep only what passes the gate.

    A channel that fails in any format is left out in every format (so its
    three files never disagree) and is named in ``failed``: the shell keeps
    its previous version.  Fresh channels (see :class:`Site`) are not
    rendered: their published files are listed in ``kept``.
    """
    channels = list(channels)
    out = Output(kept={channel_file(c, fmt.filename) for c in channels
                       if c.slug in site.fresh for fmt in FORMATS.values()})
    stale = site.stale(channels)
    if site.executor is not None and check is validate:
        out.merge(site.executor(site, stale))
        return out
    cache = cache if cache is not None else ItemCache()
    for channel in stale:
        out.merge(render_channel(site, channel, check, cache))
    return out
