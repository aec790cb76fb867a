"""The pure core, end to end: parsed articles + identities + now -> validated files.

Nothing here touches the disk, the clock or the database; the shell
(:mod:`feedserver.job`) hands in what it read and the ``now`` it chose, and
gets back rendered files and problems.  That is what makes a build
deterministic (same input, same bytes) and testable without a disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from . import articles as article_parser
from . import topics as topic_rules
from .config import Settings
from .errors import ArticleError
from .feeds import FORMATS, Context, ItemCache, render, ttl_minutes
from .models import Article, Channel, Identity, Parsed, Problem, Rendered, SourceFile, Topic
from .validate import validate

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Site:
    """Everything the renderers need: articles newest first, topics, channels."""

    articles: tuple[Article, ...]
    topics: dict[str, Topic]
    channels: tuple[Channel, ...]
    context: Context
    next_due: datetime | None = None


@dataclass
class Output:
    """What a build produced: files that passed the gate, and every problem."""

    files: list[Rendered] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)


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


def make_article(parsed: Parsed, identity: Identity, slugs: tuple[str, ...],
                 settings: Settings) -> Article:
    """Combine content and identity; explicit dates win over the ledger's."""
    published = _second(parsed.date or identity.first_seen)
    updated = _second(parsed.updated or max(identity.changed, published))
    return Article(
        id=identity.id, slug=identity.slug, path=parsed.path, title=parsed.title,
        link=f"{settings.base_url}articles/{identity.slug}/",
        content_html=parsed.content_html, summary=parsed.summary,
        published=published, updated=max(updated, published), topics=slugs,
        author=parsed.author or (settings.author or None),
        lang=parsed.lang or settings.language,
    )


def _newest_first(article: Article) -> tuple[float, str]:
    return (-article.published.timestamp(), article.id)


def assemble(parsed: dict[str, Parsed], identities: dict[str, Identity], settings: Settings,
             now: datetime) -> tuple[Site, list[Problem]]:
    """Articles that are due and not drafts, their topics and the channels."""
    problems: list[Problem] = []
    names: dict[str, str] = {}
    by_id: dict[str, Article] = {}
    next_due: datetime | None = None
    for path in sorted(parsed):
        item, identity = parsed[path], identities[path]
        if item.draft:
            continue
        slugs, found_names = topic_rules.assign(item, settings)
        article = make_article(item, identity, slugs, settings)
        if article.published > now:
            next_due = min(next_due or article.published, article.published)
            continue
        if article.id in by_id:
            problems.append(Problem(path, f"id {article.id} is already used by "
                                          f"{by_id[article.id].path}; skipped"))
            continue
        for slug, name in found_names.items():
            names.setdefault(slug, name)
        by_id[article.id] = article
    ordered = tuple(sorted(by_id.values(), key=_newest_first))
    catalog = topic_rules.catalog(settings, names)
    context = Context(site_title=settings.site_title, base_url=settings.base_url,
                      language=settings.language, author=settings.author,
                      ttl_minutes=ttl_minutes(settings.refresh_interval),
                      topic_names={slug: t.name for slug, t in catalog.items()})
    channels = build_channels(ordered, catalog, settings)
    used = {c.slug for c in channels}
    topics = {slug: topic for slug, topic in catalog.items() if slug in used}
    return Site(ordered, topics, channels, context, next_due), problems


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


def render_channels(site: Site, channels: Iterable[Channel],
                    check: Callable[[Channel, str, bytes], list[Problem]] = validate,
                    cache: ItemCache | None = None) -> Output:
    """Render each channel in each format and keep only what passes the gate.

    A channel that fails in any format is left out in every format (so its
    three files never disagree) and is named in ``failed``: the shell keeps
    its previous version.
    """
    cache = cache or ItemCache()
    out = Output()
    for channel in channels:
        rendered: list[Rendered] = []
        problems: list[Problem] = []
        for fmt in FORMATS.values():
            body = render(channel, fmt, site.context, cache)
            problems += check(channel, fmt.name, body)
            rendered.append(Rendered(channel_file(channel, fmt.filename), body, fmt.media_type,
                                     channel.updated, channel.slug))
        if problems:
            out.problems += problems
            out.failed.add(channel.slug)
        else:
            out.files += rendered
    return out
