"""RFC 3229 feed deltas (``A-IM: feed``), made by the build at publish time.

A poller that sends ``A-IM: feed`` with the ETag it holds may get ``226 IM Used``
and only the items that are new or changed since that version.  The web workers
never render or parse a feed, so the build makes every such answer beforehand:
for each feed whose bytes change, and each older version of it that
:class:`~feedserver.build.delta_history.History` remembers, the feed drawn with
only the items that version did not have as they are now, by the same renderer
and through the same gate (:func:`feedserver.validate.validate`: a delta is never
published broken).  The deltas go into the publish beside the feeds, under
:data:`~feedserver.publish.manifest.DELTAS`, compressed like every other file and
listed in the manifest with the ETags they start from and the one they lead to
(:func:`~feedserver.publish.manifest.delta_of`); the web app finds them there
(:mod:`feedserver.web.deltas`).

A delta names the feed's new version as its base, so when the feed changes again
its deltas are made anew and the old ones leave with that publish; the deltas of
a feed that did not change are kept as they are.  No delta is made where it would
not be smaller than the feed itself: the poller then gets the full feed (200).
Deleted items are not in a delta: RFC 3229's feed instance-manipulation carries
only new and updated entries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from feedserver.build.delta_history import History, Version
from feedserver.build.render_gate import Output, channel_file, spliced
from feedserver.config import Settings
from feedserver.core.errors import PublishError
from feedserver.core.packed import Packed
from feedserver.core.records import Article, Channel, Rendered
from feedserver.publish.manifest import DELTAS, DELTAS_PREFIX, delta_of, etag_of
from feedserver.publish.output import Prepared, discard, prepare
from feedserver.render.feeds import ItemCache, render
from feedserver.render.formats import FORMATS, Format
from feedserver.render.site import Site
from feedserver.validate import validate

# How render_gate names an article it left out of every feed of this build.
LEFT_OUT = "left out of the feeds this build"
_SHOWN = tuple(f.name for f in fields(Article) if f.name != "path")


def stamp(article: Article) -> str:
    """What an item shows, hashed: a changed stamp makes the item 'updated' for a delta.

    The whole article (content, title, dates, topics, links), not just its
    ``updated`` date: a change that shows in the item is sent whatever moved it.  Its
    file's path is left out: a renamed file is the same item (and the same bytes, so
    its channels are not even rendered again).
    """
    digest = hashlib.sha256()
    for name in _SHOWN:  # long texts as they are: repr() of them costs more than the hash
        value = getattr(article, name)
        if isinstance(value, Packed):  # packed content stamps as its text: a later build's
            value = str(value)  # string of it is the same item (core.packed)
        digest.update((value if isinstance(value, str) else repr(value)).encode())
        digest.update(b"\x1f")
    return digest.hexdigest()[:16]


def delta_path(feed: str, base_etag: str) -> str:
    """Where the delta of ``feed`` from the version with ETag ``base_etag`` is published."""
    name = hashlib.sha256(base_etag.encode()).hexdigest()[:20]
    return f"{DELTAS}/{feed}-{name}.{feed.rpartition('.')[2]}"  # never named like a feed


@dataclass
class Plan:
    """What a publish must tell the history once it is live: feed -> (ETag, items)."""

    history: History | None
    published: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def remember(self, manifest: dict[str, Any] | None) -> None:
        """Record each rendered feed's live version (every ETag a client may hold for it,
        from the manifest now live) as the newest of its history."""
        if self.history is None:
            return
        with self.history as history:
            files = (manifest or {}).get("files", {})
            for feed, (etag, items) in self.published.items():
                entry = files.get(feed)
                if not isinstance(entry, dict) or entry.get("etag") != etag \
                        or history.newest(feed) == etag:
                    continue
                encoded = tuple(str(info.get("etag")) for _, info
                                in sorted((entry.get("encodings") or {}).items()))
                history.record(feed, (etag, *encoded), items)


class _Now:
    """(ETag, size) of each feed as this build renders it, looked up by path.

    One index of the build's files, made once: a lookup per feed that walked every
    rendered and staged file cost 1,728 feeds x 26,000 files in a cold 10,000-article
    build (5 s in the parent), and grew with the square of the site.
    """

    def __init__(self, output: Output) -> None:
        # The first of a path wins, and a rendered file before a staged one, as before.
        self._staged = {prepared.path: prepared for prepared in reversed(output.staged)}
        self._files = {item.path: item for item in reversed(output.files)}

    def __call__(self, feed: str) -> tuple[str, int] | None:
        """None when ``feed`` was not rendered by this build."""
        item = self._files.get(feed)
        if item is not None:
            return etag_of(item.body), len(item.body)
        prepared = self._staged.get(feed)
        if prepared is not None:
            return prepared.entry["etag"], prepared.entry["size"]
        return None


def add_deltas(site: Site, output: Output, manifest: dict[str, Any], settings: Settings,
               out_dir: Path, cache: ItemCache | None = None) -> Plan:
    """Stage the deltas of every feed this build changes into ``output`` and keep those of
    the feeds it does not; returns what to record once the publish is live
    (:meth:`Plan.remember`).  ``delta_history = 0`` makes none and removes the old ones."""
    keep = settings.delta_history
    plan = Plan(History(settings.state_dir, keep) if keep > 0 else None)
    if plan.history is None:
        return plan
    cache = cache if cache is not None else ItemCache()
    published: dict[str, Any] = manifest["files"]
    left_out = {p.where for p in output.problems if p.reason.startswith(LEFT_OUT)}
    changed: set[str] = set()
    feeds: set[str] = set()
    made: list[Prepared] = []
    rendered = _Now(output)
    try:
        for channel in site.channels:
            paths = {fmt.name: channel_file(channel, fmt.filename) for fmt in FORMATS.values()}
            feeds.update(paths.values())
            if channel.slug in site.fresh or channel.slug in output.failed:
                continue
            listed = tuple(a for a in channel.articles if a.path not in left_out)
            items = {a.id: stamp(a) for a in listed}
            for fmt in FORMATS.values():
                feed = paths[fmt.name]
                now = rendered(feed)
                if now is None:
                    continue
                plan.published[feed] = (now[0], items)
                if (published.get(feed) or {}).get("etag") == now[0]:
                    continue  # unchanged: its deltas stay as they are
                changed.add(feed)
                for version in plan.history.versions(feed):
                    delta = _delta(site, replace(channel, articles=listed), items, fmt, feed,
                                   now, version, cache)
                    if delta is not None:
                        made.append(_staged(out_dir, delta, published, feed, now[0],
                                            version.variants))
    except PublishError:
        discard(made)
        raise
    output.staged += made
    output.kept |= {path for path, entry in published.items()
                    if path.startswith(DELTAS_PREFIX) and (found := delta_of(entry)) is not None
                    and found[0] in feeds and found[0] not in changed}
    return plan


def _delta(site: Site, channel: Channel, items: dict[str, str], fmt: Format, feed: str,
           now: tuple[str, int], base: Version, cache: ItemCache) -> Rendered | None:
    """The delta of ``channel``'s feed from the version ``base`` remembered, or None when
    there is none to make: the same version, not smaller, or not through the gate."""
    if base.etag == now[0]:
        return None
    fresh = tuple(a for a in channel.articles if base.items.get(a.id) != items[a.id])
    if len(fresh) >= len(channel.articles):
        return None  # every item is new to it: the full feed is the answer
    partial = replace(channel, articles=fresh)
    try:
        body = render(partial, fmt, site.context, cache)
    except Exception:  # the full feed passed: a delta that cannot be drawn is just not made
        return None
    if len(body) >= now[1] or validate(partial, fmt.name, body, cache.readings,
                                       spliced(partial, fmt, site.context, cache)):
        return None
    return Rendered(delta_path(feed, base.etag), body, fmt.media_type, channel.updated)


def _staged(out_dir: Path, delta: Rendered, published: dict[str, Any], feed: str,
            target: str, bases: tuple[str, ...]) -> Prepared:
    """Stage one delta file and give its manifest entry what the web app looks it up by."""
    ready = prepare(out_dir, delta, published.get(delta.path))
    return replace(ready, entry={**ready.entry,
                                 "delta": {"feed": feed, "to": target, "from": list(bases)}})
