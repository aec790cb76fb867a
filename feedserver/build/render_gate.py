"""Stale channels -> rendered files that passed the gate (pure).

Each channel is rendered in every format and parsed back (:mod:`feedserver.validate`);
a channel that fails is not published, and when single items are at fault the channel
is rendered again without them, so one bad item never holds back a channel.  Rendering
over worker processes is the shell passing a :data:`Renderer` that maps
:func:`render_channel`'s work over them; the default renders here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from feedserver.core import layout
from feedserver.core.records import Channel, Problem, Rendered
from feedserver.render.feeds import Context, ItemCache, render
from feedserver.render.formats import FORMATS, Format
from feedserver.render.site import Site
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


def channel_file(channel: Channel, filename: str) -> str:
    """Output path of one of a channel's files ('feed.rss', 'topics/x/feed.rss')."""
    return layout.channel_file(channel.path, filename)


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
    if check is validate:  # the gate reuses what its parser read from the same items
        return body, validate(channel, fmt.name, body, cache.readings,
                              spliced(channel, fmt, ctx, cache))
    return body, check(channel, fmt.name, body)


def spliced(channel: Channel, fmt: Format, ctx: Context, cache: ItemCache) -> list[bytes]:
    """The item fragments :func:`render` spliced into ``channel``'s document (the cache's,
    just drawn): the gate's hint, checked against the bytes, so a document of items read
    before is not read whole by expat again (:func:`feedserver.validate.findings`)."""
    return [cache.get(fmt, a, ctx) for a in channel.articles]


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
                                 channel.updated, channel.slug, fmt.name, fmt.cors,
                                 channel.max_age, channel.sealed))
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
        faults = item_faults(trial, fmt.name, body, cache.readings,
                             spliced(trial, fmt, ctx, cache))
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
        # Every item left out: dated by its listing, not 1970 (an implausible date).
        mended[channel.slug] = replace(channel, articles=listed, updated=max(
            (a.updated for a in listed), default=channel.updated))
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
