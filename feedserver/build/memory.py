"""Everything a build may reuse from the builds before it: one :class:`BuildMemory`.

The build shell (:mod:`feedserver.build.run`) owns one and is the only code
that reads or changes it; the pure stages get read-only values from it
(:class:`~feedserver.build.articles.Known`) and return what they made, which
the shell puts back.  A cold build (``feedserver build``, ``check``) starts
from :meth:`BuildMemory.empty`; a long-lived scheduler keeps one between its
builds, which then follow the very same path, reusing more.

A scheduler runs a build every few seconds; re-deriving 10,000 articles' worth
of state each time would be most of a one-file build.  The memory keeps: the
parse cache's stubs (trusted while the ledger's *generation*, bumped by every
write to the cache by any process, is the one it saw, so a manual ``feedserver
build`` next to the scheduler is noticed) and the content the channels listed
(keyed by content digest); the last scan, patched with the paths the watcher's
events name (:class:`~feedserver.build.scan.Listing`); the identities book
(:class:`~feedserver.identify.rules.Kept`, same generation rule); articles,
their content-filled copies and the channel and page signatures made from
unchanged inputs; rendered items; and the manifest it made live.  Each is
checked before it is used, so a stale one is never used.  It is explicit
state, owned by whoever runs the builds, never a global.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from feedserver.build import forkcost
from feedserver.build.articles import TRIMS, ChannelMemo, Known, Memo, PageMemo, trimmed_key
from feedserver.build.assemble import Assembled
from feedserver.build.helper import Helper
from feedserver.build.media import MediaScan, discover
from feedserver.build.page_signatures import PageSignatures
from feedserver.build.parallel import Executor, warm_cache
from feedserver.build.reassemble import Assembly
from feedserver.build.scan import Listing, ScannedFile
from feedserver.config import Settings
from feedserver.core.records import Article, Body, Problem, Stub
from feedserver.identify.ledger import CachedFile, Ledger
from feedserver.identify.rules import Kept
from feedserver.publish.manifest import Stamp, stamp_of
from feedserver.publish.output import MANIFEST, load_manifest
from feedserver.publish.readings_store import ReadingsStore
from feedserver.render.feeds import ItemCache

KEEP_BODIES = 12_000  # about 60 MB of content at most
Filled = dict[int, tuple[Article, Article]]  # id(light article) -> (it, with content)


@dataclass
class BuildMemory:
    """Everything kept between builds (see the module); :meth:`empty` for a cold build."""

    generation: str | None = None
    files: dict[str, CachedFile] = field(default_factory=dict)
    bodies: dict[str, tuple[str, Body]] = field(default_factory=dict)
    shaping: str = ""
    articles: Memo = field(default_factory=dict)
    channels: ChannelMemo = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    pages: PageMemo = field(default_factory=dict)
    pages_context: tuple[object, ...] = ()
    filled: Filled = field(default_factory=dict)
    earlier: Filled = field(default_factory=dict)
    listing: Listing | None = None
    manifest: tuple[Stamp, dict[str, Any]] | None = None
    identities: Kept = field(default_factory=Kept)
    items: ItemCache = field(default_factory=warm_cache)  # rendered items (one build at a time)
    media: MediaScan | None = None  # the last full build's media files (build/media.py)
    assembly: Assembly | None = None  # the last assembly, with its inputs (reassemble.py)
    helpers: dict[str, Helper] = field(default_factory=dict)  # build/helper.py, by kind
    readings: ReadingsStore | None = None  # the gate's readings kept between processes
    lasting: bool = True  # kept for builds to come (a caller's); False: run_build's own

    @classmethod
    def empty(cls) -> BuildMemory:
        """A memory that knows nothing: what a cold build starts from."""
        return cls()

    # What the pure stages read, and what they made.

    def known(self, settings: Settings) -> Known:
        """What the last build made, for the same settings (read-only for the stages)."""
        if settings.fingerprint() != self.shaping:
            self.articles, self.channels, self.names = {}, {}, {}
            self.pages, self.pages_context = {}, ()
            self.filled, self.earlier = {}, {}
            self.shaping = settings.fingerprint()
            self.items = warm_cache()  # it would empty itself anyway: this frees it now
            self.assembly = None
        return Known(self.articles, self.channels, self.names, self.pages, self.pages_context)

    def readings_store(self, settings: Settings) -> ReadingsStore:
        """The state folder's readings store, behind the item cache's readings (whatever
        feedparser read in an earlier process is not read again)."""
        if self.readings is None or self.readings.path.parent != Path(settings.state_dir):
            self.readings = ReadingsStore(settings.state_dir)
        self.items.readings.back(self.readings)
        return self.readings

    def remember_site(self, made: Assembled, assembly: Assembly | None = None) -> None:
        """Keep the articles and channel signatures a build just made, and the assembly
        with its inputs (the next build may swap a few articles into it)."""
        self.articles.update(made.articles)
        self.channels, self.names = made.channels, made.names
        self.assembly = assembly

    def remember_pages(self, made: PageSignatures) -> None:
        """Keep the page signatures a build just made."""
        self.pages, self.pages_context = made.pages, made.context

    # Content: filled copies, kept bodies.

    def full_copies(self, light: Iterable[Article]) -> dict[str, Article]:
        """The content-filled copies of these articles made in the last two builds (by id);
        what the last build filled and this one does not is forgotten next time."""
        self.earlier, self.filled = self.filled, {}
        found: dict[str, Article] = {}
        for article in light:
            kept = self.earlier.get(id(article))
            if kept is not None and kept[0] is article:
                self.filled[id(article)] = kept
                found[article.id] = kept[1]
        return found

    def keep_full(self, pairs: Iterable[tuple[Article, Article]]) -> None:
        """Remember (light, full) copies a build made."""
        for light, full in pairs:
            self.filled[id(light)] = (light, full)

    def bodies_of(self, paths: Iterable[str], stubs: Mapping[str, Stub]) -> dict[str, Body]:
        """Kept content of these paths, where it is of the same digest as now."""
        found: dict[str, Body] = {}
        for path in paths:
            kept = self.bodies.get(path)
            if kept is not None and path in stubs and kept[0] == stubs[path].digest:
                found[path] = kept[1]
        return found

    def keep_bodies(self, found: Mapping[str, Body], stubs: Mapping[str, Stub]) -> None:
        """Keep the content a build fetched; past :data:`KEEP_BODIES`, only the latest."""
        fetched = {path: (stubs[path].digest, body) for path, body in found.items()
                   if path in stubs}
        if len(self.bodies) + len(fetched) > KEEP_BODIES:
            self.bodies = {}
        self.bodies.update(fetched)

    # The output folder's manifest, the seeds folder's listing, the render workers.

    def manifest_of(self, out_dir: Path) -> dict[str, Any]:
        """The live manifest: the one this process last published while the file is
        still that one (a site with pages has megabytes of it to parse), else read."""
        key = stamp_of(str(out_dir / MANIFEST))
        if key is not None and self.manifest is not None and self.manifest[0] == key:
            return self.manifest[1]
        data = load_manifest(out_dir)
        self.manifest = (key, data) if key is not None else None
        return data

    def keep_manifest(self, out_dir: Path, data: dict[str, Any] | None) -> None:
        """Remember the manifest a publish just made live (never changed in place); a
        publish renames a new file into place, so its stamp is new."""
        key = stamp_of(str(out_dir / MANIFEST))
        self.manifest = (key, data) if key is not None and data is not None else None

    def scan(self, seeds_dir: str | Path,
             changed: Collection[str] | None) -> tuple[list[ScannedFile], list[Problem]]:
        """The folder's files: the kept listing patched with ``changed`` (the paths the
        watcher's events named), or a full scan when there is none or ``changed`` is None."""
        if changed is None or self.listing is None \
                or self.listing.root != os.path.realpath(seeds_dir):
            self.listing = Listing.full(seeds_dir)
        else:
            self.listing.patch(changed)
        return self.listing.scanned()

    def media_scan(self, settings: Settings, changed: Collection[str] | None,
                   store: bool) -> MediaScan:
        """The media files: walked and measured again on a full scan; between full scans
        (the watcher named only article paths) the last walk holds, since a media file's
        event asks for a full scan (:mod:`feedserver.schedule.watcher`)."""
        if changed is None or self.media is None or self.media.root != \
                os.path.realpath(settings.seeds_dir):
            self.media = discover(settings, store=store)
        return self.media

    def renderer(self, out_dir: Path, published: dict[str, Any], processes: int) -> Executor:
        """The worker processes that render, validate and stage stale channels, sharing
        this memory's rendered items."""
        return Executor(out_dir, published, processes, self.items, self.lasting)

    # The parse cache.

    def helper(self, kind: str) -> Helper | None:
        """The helper program of ``kind`` (:mod:`feedserver.build.helper`) when this
        process is too big to fork for a small job (:mod:`feedserver.build.forkcost`)
        and this memory is kept for later builds, else None: the build forks as it always
        did (a program started for one build would cost more).  Made on first use, then
        kept; its program starts with its first request (for the parse helper, the one
        :func:`feedserver.build.sources.ready` sends when a build is done)."""
        if kind not in self.helpers and not (self.lasting and forkcost.costly()):
            return None
        return self.helpers.setdefault(kind, Helper(kind))

    def load(self, ledger: Ledger) -> dict[str, CachedFile]:
        """The cache: from memory if nothing changed it since, else from the ledger."""
        current = ledger.generation()
        if current != self.generation:
            self.files = ledger.cached_files()
            self.generation = current
        return self.files

    def update(self, generation: str, fresh: Mapping[str, CachedFile],
               removed: Iterable[str], touched: Mapping[str, tuple[int, int]]) -> None:
        """Apply what a build just stored; ``generation`` is what the store returned."""
        for path in removed:
            self.files.pop(path, None)
            self.articles.pop(path, None)
            for stage in TRIMS:
                self.articles.pop(trimmed_key(path, stage), None)
        for path, (size, mtime) in touched.items():
            if path in self.files:
                self.files[path] = replace(self.files[path], size=size, mtime_ns=mtime)
        self.files.update(fresh)
        self.generation = generation
